"""``augcli run`` as a library call: load -> clean -> split -> augment -> write -> report."""

from __future__ import annotations

import ctypes
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from augcli import __version__
from augcli.backend import active_backend
from augcli.budget import check_plan
from augcli.clean import stage
from augcli.config.strategy import Strategy
from augcli.datasets import Dataset
from augcli.engine.executors import Engine, execute
from augcli.engine.shards import (ProgressLog, ShardSpec, finish_output, outputs_per_split, plan_shards, plan_shuffled,
                                  relist)
from augcli.engine.stages import build_pipeline, clean_dataset, open_source, split_clean, train_copies, write_findings
from augcli.errors import SchemaError
from augcli.io import scratch
from augcli.io.atomic import AtomicFolder, check_target, target_problem
from augcli.io.formats import output_format
from augcli.io.guard import check_separate, strategy_inputs
from augcli.pipeline import Pipeline
from augcli.reporting import run_report as reporting
from augcli.reporting.preview import pick_rows


@dataclass(frozen=True)
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
    progress: Callable[[str, int], Callable[[int], None]] | None = None  # (label, total) -> tick
    stage: Callable[[str], None] | None = None  # says a stage's result as the stage ends (loaded, cleaning, split)


@dataclass(frozen=True)
class Execution:
    """How a run executed, for its report: the options as resolved and what it found on disk."""

    batch_size: int
    workers: int
    engine: str
    resumed: int = 0                  # shards reused from an earlier partial output
    discarded_partial: bool = False   # an earlier partial output was made from something else


@dataclass(frozen=True)
class Prepared:
    """The input after the shared stages: what planning and writing start from."""

    source: object             # ``datasets.source.Source``: full-resolution pixels by row
    loaded: Dataset            # the clean view as loaded
    cleaned: Dataset
    removed: list              # cleaning and leakage findings
    splits: dict               # name -> Dataset
    pipeline: Pipeline


def output_dir(strategy: Strategy, options: RunOptions) -> Path:
    configured = options.out or strategy.section("output")["dir"]
    return Path(configured) if configured else Path("data") / "out" / strategy.name


# Memory bounds: a split whose output exceeds SINGLE_FILE_LIMIT is written in shards of about
# SHARD_BYTES; batches hold about BATCH_BYTES of pixels (small enough to stay in cache, the
# temporaries of batched kernels are several times larger than the batch itself).
SINGLE_FILE_LIMIT = 256 << 20
SHARD_BYTES = 32 << 20
BATCH_BYTES = 4 << 20
# A PNG tree's files do not show the shards, so its splits always run in shards of about
# PNG_SHARD_BYTES of pixels, at most PNG_SHARD_OUTPUTS images: shard jobs, encoding and writes
# included, then run in parallel in the workers. Independent of --workers, so a resume finds the same shards.
PNG_SHARD_BYTES = 16 << 20
PNG_SHARD_OUTPUTS = 256


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


def plan_run(strategy: Strategy, source, splits: dict[str, Dataset], shard_size: int | None,
             shuffle: bool | None = None) -> list[ShardSpec]:
    """Shards of every split: the training split gets its copies, held-out splits only originals.
    ``shuffle`` None: as ``shuffled_output`` resolves it for ``shard_size``."""
    aug = strategy.section("augment")
    parts = {}  # split -> (source rows, copies, keep_originals)
    for name, part in splits.items():
        rows = source.rows_of(part.ids)
        if name == "train":
            parts[name] = (rows, train_copies(aug, part), aug["keep_originals"])
        else:  # held-out splits are never augmented
            parts[name] = (rows, 0, True)
    specs = [s for name, p in parts.items() for s in plan_shards(name, *p, shard_size)]
    if shuffle is None:
        shuffle = shuffled_output(strategy.section("output"), shard_size)
    if not shuffle:
        return specs
    # the shuffled plan holds every (row, copy) pair: refuse one beyond memory before building it (its
    # per-sample cost only; pixels are checked by run() once the shard size is final)
    check_plan(specs, 0, 1, strategy.path)
    return [s for name, (rows, copies, keep) in parts.items()
            for s in plan_shuffled(name, rows, splits[name].ids, copies, keep, shard_size, strategy.seed)]


def check_image_size(strategy: Strategy, pipeline: Pipeline, image_shape: tuple, train: Dataset | None) -> None:
    """Refuse (exit 2, at the strategy line) a pipeline that changes the image size while
    ``augment.keep_originals`` keeps the originals: a split's outputs share one array per file, so
    the originals and their copies must share one size. Only the training split is augmented."""
    aug = strategy.section("augment")
    if not aug["keep_originals"] or train is None or not len(train):
        return
    image_shape = tuple(image_shape)
    shape = tuple(pipeline.output_shape((1,) + image_shape)[1:])
    if shape == image_shape or not np.any(np.asarray(train_copies(aug, train)) > 0):
        return
    where, name = _first_resize(strategy.transforms, image_shape)
    raise strategy.error(SchemaError(where, (
        f"{name} changes the image size {image_shape[0]}x{image_shape[1]} -> {shape[0]}x{shape[1]}, but "
        "augment.keep_originals is true and the originals keep theirs (one output file holds both); set "
        "augment.keep_originals: false or keep the size")))


def _first_resize(transforms: list, image_shape: tuple) -> tuple[tuple, str]:
    """(path, name) of the first top-level pipeline entry after which the size differs from the input's."""
    shape = (1,) + image_shape
    for i, transform in enumerate(transforms):
        shape = tuple(transform.output_shape(shape))
        if shape[1:] != image_shape:
            return ("augment", "pipeline", i), transform.name
    return ("augment", "pipeline"), "augment.pipeline"


def _prepare(strategy: Strategy, options: RunOptions, timer, engine: Engine, cache_dir=None) -> Prepared:
    """The shared stages, timed; the pipeline checked against the images before any output work. A
    folder's first pass runs on ``engine``, like the shards, and fills the source cache in ``cache_dir``."""
    with timer("load"):
        source, loaded, keys = open_source(strategy, options.strict, options.limit, cache_dir=cache_dir,
                                           mapper=lambda function, chunks, job: engine.map(function, chunks, job, "scan"),
                                           progress=options.progress)
    with timer("clean"):
        cleaned, removed = clean_dataset(strategy, loaded, keys)
    with timer("split"):
        splits, leaks = split_clean(strategy, cleaned)
    if options.stage:  # before the augmentation, which is most of a run's time
        for line in reporting.stage_lines(loaded, removed + leaks, splits, strategy.section("dataset")["source"]):
            options.stage(line)
    release_free_memory()  # the scan and cleaning temporaries are gone; give their pages back
    pipeline = build_pipeline(strategy, cleaned.class_names)
    check_image_size(strategy, pipeline, source.image_shape, splits.get("train"))
    return Prepared(source, loaded, cleaned, removed + leaks, splits, pipeline)


def _plan(strategy: Strategy, options: RunOptions, data: Prepared) -> tuple[int | None, list[ShardSpec], list[ShardSpec]]:
    """(shard size, shard specs to run, shard specs whose order the output lists). The size is the
    configured one, or one that keeps a large split out of one file; a PNG tree runs its outputs in
    source order instead, in shards of the configured size or small enough to run in parallel (see
    ``_invisible_shards``)."""
    shard_size = configured = options.shard_size or strategy.section("output")["shard_size"]
    specs = plan_run(strategy, data.source, data.splits, shard_size)
    if shard_size is None and _largest_split_bytes(data.source, specs) > SINGLE_FILE_LIMIT:
        shard_size = max(1, SHARD_BYTES // _image_bytes(data.source))  # too big for one file in memory
        specs = plan_run(strategy, data.source, data.splits, shard_size)
    if not _invisible_shards(strategy, data.pipeline):
        return shard_size, specs, specs
    run_size = configured or int(np.clip(PNG_SHARD_BYTES // _image_bytes(data.source), 1, PNG_SHARD_OUTPUTS))
    return run_size, plan_run(strategy, data.source, data.splits, run_size, shuffle=False), specs


def _invisible_shards(strategy: Strategy, pipeline: Pipeline) -> bool:
    """Whether the output's bytes do not depend on how its outputs are cut into shard jobs, only its
    lists' order: true of a PNG tree (no shard in any file name) without mixing (mixing partners come
    from the shard). Its shards then run in source order, so that each source is decoded once (a
    shuffled order would read a source once per shard its copies land in), and ``shards.relist``
    puts metadata.jsonl and manifest.jsonl in the listed order."""
    return strategy.section("output")["format"] == "png" and not pipeline.mixes_labels


def run(strategy: Strategy, options: RunOptions) -> dict:
    """Execute a strategy; returns the report dict (also written as report.json unless dry-run)."""
    timer = reporting.Timer()
    target = output_dir(strategy, options)
    if not options.dry_run:
        check_target(target, options.overwrite, strategy_inputs(strategy))  # before any work: exit 2, nothing touched
    else:
        check_separate(target, strategy_inputs(strategy))  # an output over an input: refused by a dry run too
    # The source cache lives in the system's temporary folder (TMPDIR), beside the pool's job files:
    # only this machine's processes read it, so a Dask cluster decodes again instead.
    cached = options.engine == "local" and not options.dry_run
    with Engine(options.engine, options.workers, options.scheduler, options.scheduler_file) as engine, \
            (scratch.folder("sources") if cached else nullcontext()) as cache_dir:
        data = _prepare(strategy, options, timer, engine, cache_dir)
        shard_size, specs, listed = _plan(strategy, options, data)
        check_plan(specs, _image_bytes(data.source), options.workers, strategy.path)  # before the work plan is built
        if options.dry_run:
            plan = reporting.build_plan(strategy, data.loaded, data.cleaned, data.removed, data.splits,
                                        outputs_per_split(specs), target, data.source.image_shape)
            plan["plan"]["output_problem"] = target_problem(target, options.overwrite)  # what the real run would hit
            return plan
        return _write_output(strategy, options, data, (specs, listed), shard_size, target, timer, engine)


def _write_output(strategy: Strategy, options: RunOptions, data: Prepared, plan: tuple[list, list],
                  shard_size: int | None, target: Path, timer, engine: Engine) -> dict:
    """Augment and write every shard, then the files of the whole output and the report, atomically.
    ``plan``: (the shard specs to run, those whose order the output's lists follow)."""
    specs, listed = plan
    fmt = strategy.section("output")["format"]
    # what the output is made from: a partial output from another input or kernel backend is discarded
    state = {"strategy": strategy.sha256, "format": fmt, "shard_size": shard_size, "augcli": __version__,
             "limit": options.limit, "backend": active_backend(), "input": data.source.fingerprint()}
    batch_size = options.batch_size or auto_batch_size(data.source.image_shape)
    writer = output_format(fmt, data.source, data.pipeline.mixes_labels, strategy.section("output"))
    folder = AtomicFolder(target, options.overwrite, state=state, keep_partial=options.resume,
                          inputs=strategy_inputs(strategy))
    with folder as tmp:
        preview = _start_preview(strategy, data, engine)  # rendered by a worker while the shards run
        with timer("augment"):
            total = sum(outputs_per_split(specs).values())
            tick = options.progress("augment", total, "writing") if options.progress else None
            results, resumed = execute(specs, data.source, data.pipeline, writer, tmp, batch_size=batch_size,
                                       engine=engine, progress=tick)
            if listed is not specs:
                relist(results, specs, listed)
            data.source.verify()  # with the source cache: no input file changed since the scan
        with timer("write"):
            files = sorted({f.split("/", 1)[0] + ("/" if "/" in f else "") for r in results for f in r.files})
            files += finish_output(tmp, writer, results)  # classes.txt, metadata.jsonl
            files += _write_extras(tmp, strategy, data, results, preview)
            ProgressLog(tmp).close()
        execution = Execution(batch_size, options.workers, options.engine, resumed, folder.discarded)
        report = reporting.build_report(strategy, data.loaded, data.cleaned, data.removed, data.splits, results, files,
                                        timer, target, execution, data.pipeline.mixes_labels, data.source.image_shape)
        reporting.write_report(tmp, report)
    return report


def _write_extras(folder: Path, strategy: Strategy, data: Prepared, results: list, preview) -> list[str]:
    """manifest.jsonl, preview.png (``preview``: a handle on its bytes, or None) and the cleaning
    findings, as the strategy asks; returns their names."""
    files = []
    if strategy.section("output")["manifest"]:
        with open(folder / "manifest.jsonl", "w", encoding="utf-8") as fh:
            for r in results:  # shard order = output order; written last, from the shard parts
                fh.writelines(line + "\n" for line in r.manifest)
        files.append("manifest.jsonl")
    if preview is not None:
        (folder / "preview.png").write_bytes(preview.result())
        files.append("preview.png")
    return files + write_findings(folder, stage.load_findings(data.loaded) + data.removed, [data.loaded])


def _start_preview(strategy: Strategy, data: Prepared, engine: Engine):
    """preview.png's rendering, started on ``engine`` (see ``Engine.submit``), or None when the
    strategy asks for no preview or there is no training split."""
    report = strategy.section("report")
    if not report["preview"] or "train" not in data.splits:
        return None
    train = data.splits["train"]
    rows = data.source.rows_of(train.ids[pick_rows(train, report["preview_samples"])])
    return engine.submit(render_preview, rows, {"source": data.source, "pipeline": data.pipeline, "report": report},
                         "preview")


def render_preview(rows, job: dict) -> bytes:
    """preview.png's bytes for the source ``rows`` (full-resolution originals; the split may hold
    only thumbnails): a task, so that a worker renders it beside the shards."""
    return reporting.preview_png(job["source"].dataset(rows), job["pipeline"], job["report"])
