"""The stages every command shares, each driven by the strategy: load, clean, split (with leakage
removal), bind the pipeline, count the training copies, write the cleaning findings.

``run`` streams them (``engine.runner``); ``evaluate``, ``search``, ``inspect`` and ``preview`` take
the ones they need from here. Loading itself lives with the sources (``datasets.source``), which
know how to read each kind of input; it is listed here so that every stage has one address.
"""

from __future__ import annotations

from pathlib import Path

from augcli.clean import outputs, stage
from augcli.config.strategy import Strategy
from augcli.datasets import Dataset
from augcli.datasets.source import load_dataset, open_source
from augcli.datasets.split import split_dataset
from augcli.engine.augment import balance_copies
from augcli.errors import UsageError
from augcli.pipeline import Pipeline

__all__ = ["load_dataset", "open_source", "clean_dataset", "split_clean", "build_pipeline", "train_copies",
           "write_findings"]


def clean_dataset(strategy: Strategy, dataset: Dataset, exact_keys=None) -> tuple[Dataset, list[dict]]:
    """Apply the ``clean`` section; returns the kept samples and one record per finding.

    ``exact_keys`` stand in for the pixels in the exact-duplicate check when ``dataset`` holds
    thumbnails (``open_source``'s clean view of a folder)."""
    return stage.clean(dataset, strategy.section("clean"), strategy.seed, exact_keys)


def split_clean(strategy: Strategy, dataset: Dataset, clean_config: dict | None = None) -> tuple[dict[str, Dataset], list[dict]]:
    """Split as the strategy says, then remove training samples that leak into val/test."""
    sp = strategy.section("split")
    try:
        splits = split_dataset(dataset, strategy.seed, val=sp["val"], test=sp["test"], stratify=sp["stratify"])
    except ValueError as err:
        raise UsageError(f"{strategy.path}: split: {err}") from None
    return stage.remove_leakage(splits, clean_config or strategy.section("clean"))


def build_pipeline(strategy: Strategy, class_names: list[str]) -> Pipeline:
    """The strategy's pipeline with its per-class rules bound to the loaded class names."""
    return Pipeline.from_strategy(strategy, class_names=class_names)


def train_copies(aug: dict, train: Dataset):
    """Copies per training source: the configured count, raised for minority classes by ``balance``."""
    target = aug["balance"]["target"]
    if target is None:
        return aug["copies"]
    return balance_copies(train.labels, len(train.class_names), aug["copies"], aug["keep_originals"], target)


def write_findings(folder: Path, records: list[dict], datasets: list[Dataset]) -> list[str]:
    """quarantine.csv (always, so pipelines can rely on it) and clean.png when something was found."""
    outputs.write_quarantine(folder / "quarantine.csv", records)
    picture = outputs.clean_picture(records, datasets)
    if picture is None:
        return ["quarantine.csv"]
    picture.save(folder / "clean.png", format="PNG")
    return ["quarantine.csv", "clean.png"]
