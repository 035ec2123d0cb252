"""The ``clean`` stage: run the configured detectors in a fixed order and apply their actions.

Order: blank and noise images -> exact duplicates -> near duplicates -> outliers -> label errors
(before the split), then leakage across splits (after it). Each detector only *finds*; this module
decides, per the strategy, whether a finding drops the sample or only flags it. Every finding becomes
one record (``id, reason, action, score, group, suggested_label, ...``) in the report and in
``quarantine.csv``.
"""

from __future__ import annotations

import warnings

import numpy as np

from augcli.datasets.base import Dataset
from augcli.errors import DataError


def _apply(dataset: Dataset, records: list[dict], action: str, all_records: list[dict]) -> Dataset:
    for rec in records:
        rec["action"] = "dropped" if action == "drop" else "flagged"
    all_records.extend(records)
    if action != "drop" or not records:
        return dataset
    drop = {rec["id"] for rec in records}
    keep = ~np.isin(dataset.ids, list(drop))
    if not keep.any():  # later stages cannot work on nothing; say why instead of failing obscurely
        raise DataError(f"{dataset.source or 'dataset'}: cleaning dropped every sample ({len(records)} found as "
                        f"{records[0]['reason']}); set that check's action to flag or off")
    kept = dataset.subset(np.flatnonzero(keep))
    kept.skipped = dataset.skipped
    return kept


def clean(dataset: Dataset, config: dict, seed: int, exact_keys: np.ndarray | None = None) -> tuple[Dataset, list[dict]]:
    """Run every enabled pre-split detector; returns the kept samples and all findings.

    ``exact_keys`` (one row per sample) stand in for the pixels in the exact-duplicate check, for
    views whose images are thumbnails of the real ones.
    """
    keys_by_id = None if exact_keys is None else dict(zip(dataset.ids.tolist(), exact_keys))
    # function-level: the checks pull in scipy.fft (pHash) and scikit-learn, ~130 ms of import time
    # that validate, transforms and preview would pay for nothing
    from augcli.clean import exact, label_errors, neardup, outliers, quality

    records: list[dict] = []
    if config["blank"]["action"] != "off":
        dataset = _apply(dataset, quality.find_blank(dataset, config["blank"]["min_std"]), config["blank"]["action"], records)
    if config["noise"]["action"] != "off":
        dataset = _apply(dataset, quality.find_noise_images(dataset), config["noise"]["action"], records)
    if config["exact_duplicates"] != "off":
        keys = None if keys_by_id is None else np.stack([keys_by_id[i] for i in dataset.ids.tolist()])
        _, found = exact.drop_exact_duplicates(dataset, keys)
        dataset = _apply(dataset, found, config["exact_duplicates"], records)
    near = config["near_duplicates"]
    if near["action"] != "off":
        found = neardup.find_near_duplicates(dataset, near["max_distance"])
        exact_ids = {r["id"] for r in records if r["reason"] == "exact_duplicate"}
        found = [r for r in found if r["id"] not in exact_ids]  # flagged exact copies: report once
        dataset = _apply(dataset, found, near["action"], records)
    out = config["outliers"]
    if out["action"] != "off" and len(dataset) > 2:
        found = outliers.find_outliers(dataset, seed, method=out["method"], contamination=out["contamination"])
        dataset = _apply(dataset, found, out["action"], records)
    lab = config["label_errors"]
    if lab["action"] != "off":
        found, summary = label_errors.check_labels(dataset, seed, folds=lab["folds"])
        dataset = _apply(dataset, found, lab["action"], records)
        _note_label_check(dataset, summary)
    return dataset, records


def _note_label_check(dataset: Dataset, summary: dict | None) -> None:
    """The label-error detector's reliability rides on the cleaned dataset to the report
    (``label_check``); an abstention is also one warning line (stderr, silent under -q)."""
    if summary is None:
        return
    dataset.label_check = summary
    if summary["abstained"]:
        warnings.warn(f"{dataset.source or 'dataset'}: label-error check abstained, nothing flagged: "
                      f"{summary['abstained']}", stacklevel=2)


def remove_leakage(splits: dict[str, Dataset], config: dict) -> tuple[dict[str, Dataset], list[dict]]:
    """Drop (or flag) training samples that near-duplicate a val/test sample."""
    from augcli.clean import leakage  # function-level: scipy.fft through pHash, see clean()

    cfg = config["leakage"]
    if cfg["action"] == "off" or len(splits) < 2:
        return splits, []
    found = leakage.find_leakage(splits, cfg["max_distance"])
    records: list[dict] = []
    splits = dict(splits)
    splits["train"] = _apply(splits["train"], found, cfg["action"], records)
    return splits, records


def load_findings(dataset: Dataset) -> list[dict]:
    """Load-time problems as records: unreadable files ("skipped") and odd-but-loaded files ("kept")."""
    out = [{"id": s.id, "reason": s.reason, "action": "skipped", "detail": s.detail} for s in dataset.skipped]
    out += [{"id": w.id, "reason": w.reason, "action": "kept", "detail": w.detail} for w in dataset.warnings]
    return out
