"""``augcli run`` as a library call: load -> clean -> split -> augment -> write -> report."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from augcli import __version__
from augcli.reporting import run_report as reporting
from augcli.engine.budget import check_plan
from augcli.clean import stage
from augcli.datasets import Dataset
from augcli.engine.augment import balance_copies
from augcli.errors import UsageError
from augcli.engine.executors import execute
from augcli.io.atomic import AtomicFolder, check_target
from augcli.io.guard import strategy_inputs
from augcli.pipeline import Pipeline
from augcli.engine.shards import ProgressLog, ShardSpec, outputs_per_split, plan_shards, plan_shuffled
from augcli.engine.shards import write_split_files
from augcli.datasets.source import load_dataset, open_source  # noqa: F401  (load_dataset: used by other commands)
from augcli.datasets.split import split_dataset
from augcli.config.strategy import Strategy
from augcli.backend import active_backend


@dataclass
class RunOptions:
    out: str | None = None
    batch_size: int | None = None     # images per batch; None = sized to the images (``auto_batch_size``)
    workers: int = 1
    strict: bool = False
    dry_run: bool = False
    overwrite: bool = False
    limit: int | None = None
    shard_size: int | None = None     # output samples per shard; None = one file per split
    engine: str = "local"             # local | dask
    scheduler: str | None = None
    scheduler_file: str | None = None
    resume: bool = False              # keep the partial output on an interrupt, to resume it later
    resumed: int = 0                  # set by run(): shards reused from an earlier partial output
    discarded_partial: bool = False   # set by run(): an earlier partial output was made from something else
    progress: Callable[[str, int], Callable[[int], None]] | None = None  # (label, total) -> tick


def output_dir(strategy: Strategy, options: RunOptions) -> Path:
    configured = options.out or strategy.section("output")["dir"]
    return Path(configured) if configured else Path("data") / "out" / strategy.name


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


# Memory bounds: a split whose output exceeds SINGLE_FILE_LIMIT is written in shards of about
# SHARD_BYTES; batches hold about BATCH_BYTES of pixels (small enough to stay in cache, the
# temporaries of batched kernels are several times larger than the batch itself).
SINGLE_FILE_LIMIT = 256 << 20
SHARD_BYTES = 32 << 20
BATCH_BYTES = 4 << 20


def _image_bytes(source) -> int:
    return int(np.prod(source.image_shape))


def _largest_split_bytes(source, specs: list[ShardSpec]) -> int:
    """Pixels of the largest split's output, from the shard specs (balancing included; no work plan built)."""
    per_split: dict[str, int] = {}
    for s in specs:
        per_split[s.split] = per_split.get(s.split, 0) + int(s.copies.sum()) + (len(s.rows) if s.keep_originals else 0)
    return max(per_split.values(), default=0) * _image_bytes(source)


def auto_batch_size(image_shape: tuple) -> int:
    """Images per batch for images of ``image_shape``: about BATCH_BYTES of pixels, 8 to 1024."""
    return int(np.clip(BATCH_BYTES // max(int(np.prod(image_shape)), 1), 8, 1024))


def release_free_memory() -> None:
    """Return freed heap pages to the OS (glibc keeps them otherwise, inflating peak RSS later)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to do
        pass


def shuffled_output(output: dict, shard_size: int | None) -> bool:
    """``output.shuffle`` resolved: ``auto`` shuffles tar and sharded output, whose readers stream
    and shuffle only within a buffer; one npz/PNG file per split is read whole and shuffled by the
    loader, and keeps its source order."""
    if output["shuffle"] == "auto":
        return output["format"] == "tar" or shard_size is not None
    return output["shuffle"]


def plan_run(strategy: Strategy, source, splits: dict[str, Dataset], shard_size: int | None) -> list[ShardSpec]:
    """Shards of every split: the training split gets its copies, held-out splits only originals."""
    aug = strategy.section("augment")
    parts = {}  # split -> (source rows, copies, keep_originals)
    for name, part in splits.items():
        rows = source.rows_of(part.ids)
        if name == "train":
            parts[name] = (rows, train_copies(aug, part), aug["keep_originals"])
        else:  # held-out splits are never augmented
            parts[name] = (rows, 0, True)
    specs = [s for name, p in parts.items() for s in plan_shards(name, *p, shard_size)]
    if not shuffled_output(strategy.section("output"), shard_size):
        return specs
    # the shuffled plan holds every (row, copy) pair: refuse one beyond memory before building it (its
    # per-sample cost only; pixels are checked by run() once the shard size is final)
    check_plan(specs, 0, 1, strategy.path)
    return [s for name, (rows, copies, keep) in parts.items()
            for s in plan_shuffled(name, rows, splits[name].ids, copies, keep, shard_size, strategy.seed)]


def run(strategy: Strategy, options: RunOptions) -> dict:
    """Execute a strategy; returns the report dict (also written as report.json unless dry-run)."""
    timer = reporting.Timer()
    target = output_dir(strategy, options)
    if not options.dry_run:
        check_target(target, options.overwrite, strategy_inputs(strategy))  # before any work: exit 2, nothing touched

    with timer("load"):
        source, loaded, keys = open_source(strategy, options.strict, options.limit)
    with timer("clean"):
        cleaned, removed = stage.clean(loaded, strategy.section("clean"), strategy.seed, keys)
    with timer("split"):
        splits, leaks = split_clean(strategy, cleaned)
        removed = removed + leaks
    release_free_memory()  # the scan and cleaning temporaries are gone; give their pages back
    pipeline = build_pipeline(strategy, cleaned.class_names)
    shard_size = options.shard_size or strategy.section("output")["shard_size"]
    specs = plan_run(strategy, source, splits, shard_size)
    if shard_size is None and _largest_split_bytes(source, specs) > SINGLE_FILE_LIMIT:
        shard_size = max(1, SHARD_BYTES // _image_bytes(source))  # too big for one file in memory
        specs = plan_run(strategy, source, splits, shard_size)
    options.batch_size = options.batch_size or auto_batch_size(source.image_shape)
    check_plan(specs, _image_bytes(source), options.workers, strategy.path)  # before the work plan is built
    if options.dry_run:
        return reporting.build_plan(strategy, loaded, cleaned, removed, splits, outputs_per_split(specs), target,
                                    source.image_shape)

    fmt = strategy.section("output")["format"]
    # what the output is made from: a partial output from another input or kernel backend is discarded
    state = {"strategy": strategy.sha256, "format": fmt, "shard_size": shard_size, "augcli": __version__,
             "limit": options.limit, "backend": active_backend(), "input": source.fingerprint()}
    folder = AtomicFolder(target, options.overwrite, state=state, keep_partial=options.resume,
                          inputs=strategy_inputs(strategy))
    with folder as tmp:
        options.discarded_partial = folder.discarded
        with timer("augment"):
            total = sum(outputs_per_split(specs).values())
            tick = options.progress("augment", total) if options.progress else None
            try:
                results, options.resumed = execute(
                    specs, source, pipeline, fmt, tmp, batch_size=options.batch_size, workers=options.workers,
                    engine=options.engine, scheduler=options.scheduler, scheduler_file=options.scheduler_file,
                    progress=tick)
            except ValueError as err:
                raise UsageError(f"{strategy.path}: augment: {err}") from None
        with timer("write"):
            files = sorted({f.split("/", 1)[0] + ("/" if "/" in f else "") for r in results for f in r.files})
            files += write_split_files(tmp, fmt, results, source.class_names)  # classes.txt, metadata.jsonl
            if strategy.section("output")["manifest"]:
                with open(tmp / "manifest.jsonl", "w", encoding="utf-8") as fh:
                    for r in results:  # shard order = output order; written last, from the shard parts
                        fh.writelines(line + "\n" for line in r.manifest)
                files.append("manifest.jsonl")
            if strategy.section("report")["preview"] and "train" in splits:
                reporting.write_preview(tmp / "preview.png", preview_dataset(source, splits["train"], strategy),
                                        pipeline, strategy.section("report"))
                files.append("preview.png")
            files += write_findings(tmp, stage.load_findings(loaded) + removed, [loaded])
            ProgressLog(tmp).close()
        soft = pipeline.mixes_labels
        report = reporting.build_report(strategy, loaded, cleaned, removed, splits, results, files, timer, target,
                                        options, soft, source.image_shape)
        reporting.write_report(tmp, report)
    return report


def preview_dataset(source, train: Dataset, strategy: Strategy) -> Dataset:
    """Full-resolution originals for the preview rows (the split may hold only thumbnails)."""
    from augcli.reporting.preview import pick_rows

    picked = pick_rows(train, strategy.section("report")["preview_samples"])
    return source.dataset(source.rows_of(train.ids[picked]))


def write_findings(folder: Path, records: list[dict], datasets: list[Dataset]) -> list[str]:
    """quarantine.csv (always, so pipelines can rely on it) and clean.png when something was found."""
    from augcli.clean import outputs

    outputs.write_quarantine(folder / "quarantine.csv", records)
    picture = outputs.clean_picture(records, datasets)
    if picture is None:
        return ["quarantine.csv"]
    picture.save(folder / "clean.png", format="PNG")
    return ["quarantine.csv", "clean.png"]
