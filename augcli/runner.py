"""``augcli run`` as a library call: load -> clean -> split -> augment -> write -> report."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from augcli import report as reporting
from augcli.clean import stage
from augcli.datasets import Dataset, load_source
from augcli.engine import Augmented, augment_dataset, balance_copies, plan
from augcli.errors import DataError, UsageError
from augcli.io.atomic import AtomicFolder, check_target
from augcli.io.writers import encode_png, manifest_line, pixel_sha256, png_relpath, write_npz
from augcli.pipeline import Pipeline
from augcli.split import split_dataset
from augcli.strategy import Strategy


@dataclass
class RunOptions:
    out: str | None = None
    batch_size: int = 256
    workers: int = 1
    strict: bool = False
    dry_run: bool = False
    overwrite: bool = False
    limit: int | None = None
    progress: Callable[[str, int], Callable[[int], None]] | None = None  # (label, total) -> tick


def output_dir(strategy: Strategy, options: RunOptions) -> Path:
    configured = options.out or strategy.section("output")["dir"]
    return Path(configured) if configured else Path("data") / "out" / strategy.name


def load_dataset(strategy: Strategy, strict: bool = False, limit: int | None = None) -> Dataset:
    """The strategy's source as a ``Dataset`` (first ``limit`` samples if given)."""
    ds = strategy.section("dataset")
    keys = ds["npz_keys"]
    dataset = load_source(
        ds["source"], kind=ds["kind"], image_size=ds["image_size"],
        color_mode=None if ds["color_mode"] == "auto" else ds["color_mode"],
        strict=strict, max_pixels=ds["max_pixels"], images_key=keys["images"], labels_key=keys["labels"],
        ids_key=keys["ids"], class_names_key=keys["class_names"],
    )
    limit = limit or ds["limit"]
    if limit is not None and limit < len(dataset):
        skipped, warned = dataset.skipped, dataset.warnings
        dataset = dataset.subset(np.arange(limit))
        dataset.skipped, dataset.warnings = skipped, warned
    if len(dataset) == 0:
        raise DataError(f"{ds['source']}: no usable samples")
    return dataset


def clean_dataset(strategy: Strategy, dataset: Dataset) -> tuple[Dataset, list[dict]]:
    """Apply the ``clean`` section; returns the kept samples and one record per finding."""
    return stage.clean(dataset, strategy.section("clean"), strategy.seed)


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


def run(strategy: Strategy, options: RunOptions) -> dict:
    """Execute a strategy; returns the report dict (also written as report.json unless dry-run)."""
    timer = reporting.Timer()
    target = output_dir(strategy, options)
    if not options.dry_run:
        check_target(target, options.overwrite)  # before any work: exit 2, nothing touched

    with timer("load"):
        loaded = load_dataset(strategy, options.strict, options.limit)
    with timer("clean"):
        cleaned, removed = clean_dataset(strategy, loaded)
    with timer("split"):
        splits, leaks = split_clean(strategy, cleaned)
        removed = removed + leaks

    aug = strategy.section("augment")
    pipeline = build_pipeline(strategy, cleaned.class_names)
    copies_per_split = {name: train_copies(aug, part) if name == "train" else 0 for name, part in splits.items()}
    if options.dry_run:
        return reporting.build_plan(strategy, loaded, cleaned, removed, splits, copies_per_split, target)

    outputs: dict[str, Augmented] = {}
    with timer("augment"):
        for name, part in splits.items():
            # only the training split is augmented; held-out splits keep their originals (copy 0)
            copies = copies_per_split[name]
            keep = aug["keep_originals"] if name == "train" else True
            n_items = len(plan(len(part), copies, keep)[0])
            tick = options.progress(f"augment {name}", n_items) if options.progress else None
            try:
                outputs[name] = augment_dataset(part, pipeline, copies, keep, options.batch_size, options.workers, tick)
            except ValueError as err:
                raise UsageError(f"{strategy.path}: augment: {err}") from None

    with AtomicFolder(target, options.overwrite) as tmp:
        with timer("write"):
            files = write_outputs(tmp, strategy, outputs, cleaned.class_names, pipeline)
            if strategy.section("report")["preview"] and "train" in outputs:
                reporting.write_preview(tmp / "preview.png", splits["train"], pipeline, strategy.section("report"))
                files.append("preview.png")
            files += write_findings(tmp, stage.load_findings(loaded) + removed, [loaded])
        report = reporting.build_report(
            strategy, loaded, cleaned, removed, splits, outputs, files, timer, target, options
        )
        reporting.write_report(tmp, report)
    return report


def write_findings(folder: Path, records: list[dict], datasets: list[Dataset]) -> list[str]:
    """quarantine.csv (always, so pipelines can rely on it) and clean.png when something was found."""
    from augcli.clean import outputs

    outputs.write_quarantine(folder / "quarantine.csv", records)
    picture = outputs.clean_picture(records, datasets)
    if picture is None:
        return ["quarantine.csv"]
    picture.save(folder / "clean.png", format="PNG")
    return ["quarantine.csv", "clean.png"]


def write_outputs(folder: Path, strategy: Strategy, outputs: dict[str, Augmented], class_names, pipeline) -> list[str]:
    """Write every split in the configured format plus manifest.jsonl; returns relative file names."""
    fmt = strategy.section("output")["format"]
    files: list[str] = []
    manifest = []
    for split, out in outputs.items():
        sha = pixel_sha256(out.images)
        hard = out.classes
        if fmt == "npz":
            name = f"{split}.npz"
            write_npz(folder / name, {
                "images": out.images, "labels": out.labels, "ids": out.ids.astype(str),
                "source_index": out.source_index, "copy_index": out.copy_index,
                "class_names": np.asarray(class_names, dtype=str),
            })
            files.append(name)
            locations = [f"{name}#{i}" for i in range(len(out))]
        else:
            locations = [png_relpath(split, class_names[c], i, k) for c, i, k in zip(hard, out.ids, out.copy_index)]
            for rel, image in zip(locations, out.images):
                path = folder / rel
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(encode_png(image))
            files.extend(sorted({rel.split("/", 1)[0] + "/" for rel in locations}))
        for i in range(len(out)):
            manifest.append({
                "file": locations[i], "split": split, "source": str(out.ids[i]), "class": class_names[hard[i]],
                "label": int(hard[i]), "copy": int(out.copy_index[i]),
                "ops": out.ops[i] if out.ops else [], "sha256": sha[i],
            })
            if out.labels.ndim == 2:
                manifest[-1]["soft_label"] = [round(float(v), 6) for v in out.labels[i]]
    if strategy.section("output")["manifest"]:
        with open(folder / "manifest.jsonl", "w", encoding="utf-8") as fh:
            fh.writelines(manifest_line(rec) + "\n" for rec in manifest)
        files.append("manifest.jsonl")
    return files
