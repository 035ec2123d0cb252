"""Sentences about a run report that people must not miss: ``report.md`` shows them, and
``augcli run`` repeats them on stderr."""

from __future__ import annotations

# Above this share of identical copies the run says so on stderr: they are wasted epochs of the same
# image, and cleaning this output again removes them as exact duplicates.
IDENTICAL_WARN_SHARE = 0.10


def missing_class_notes(report: dict) -> list[str]:
    """One sentence per output split that holds no sample of some class."""
    return [f"split '{split}' has no sample of class{'es' if len(names) > 1 else ''} "
            f"{', '.join(repr(n) for n in names)}; class indices stay those of classes.txt"
            + (" (its folder is empty)" if report["output"]["format"] == "png" else "")
            for split, names in report.get("output", {}).get("missing_classes", {}).items()]


# Below this many repeats evaluate and search say their intervals are too wide to decide on.
FEW_REPEATS = 5


def few_repeats_note(repeats: int) -> str | None:
    """A warning for ``evaluate``/``search --repeats`` below FEW_REPEATS, else None."""
    if repeats >= FEW_REPEATS:
        return None
    return (f"with {repeats} repeat{'s' if repeats > 1 else ''} the 95 % intervals are wide and the verdicts weak "
            f"(the t factor of a 95 % interval is 12.7 for 2 repeats, 2.26 for 10); use --repeats "
            f"{FEW_REPEATS * 2} or more to decide")


def setup_notes(report: dict) -> list[str]:
    """Sentences about a strategy that runs but cannot be what was meant: one class, or copies made
    by an empty pipeline."""
    notes = []
    classes = report.get("dataset", {}).get("classes", [])
    if len(classes) == 1:
        notes.append(f"the dataset has one class ({classes[0]!r}): a classifier needs two or more (a folder source "
                     "needs one sub-folder per class)")
    resized = [w for w in report.get("warnings", []) if w["reason"] == "resized"]
    if resized:
        size = report.get("dataset", {}).get("image_shape", ["?", "?"])
        mode = resized[0]["detail"].rsplit("(", 1)[-1].rstrip(")")
        loaded = sum(report.get("counts", {}).get("loaded", {}).values())
        done = {"stretch": "stretched", "crop": "cropped", "pad": "padded"}.get(mode, mode)
        notes.append(f"{len(resized):,} of {loaded:,} images differ in size from the first and were {done} to "
                     f"{size[0]}x{size[1]} (e.g. {resized[0]['id']}: {resized[0]['detail'].split(' (')[0]}); set "
                     "dataset.image_size, and dataset.resize: stretch, crop or pad, to choose")
    transforms = report.get("transforms", {})
    if not transforms.get("pipeline") and transforms.get("augmented_samples"):
        notes.append(f"augment.pipeline is empty, so the {transforms['augmented_samples']:,} augmented copies are their "
                     "originals again; add transforms or set augment.copies: 0")
    return notes


def identical_notes(report: dict, threshold: float = 0.0) -> list[str]:
    """One sentence per split whose share of copies identical to their original exceeds ``threshold``
    (none for an empty pipeline: ``setup_notes`` says why)."""
    if not report.get("transforms", {}).get("pipeline"):
        return []
    return [f"{split}: {v['count']:,} of {v['augmented']:,} augmented copies ({v['share']:.1%}) came out identical to "
            "their original (with p < 1 every step can be skipped); re-running cleaning on this output removes them "
            "as exact duplicates"
            for split, v in report.get("transforms", {}).get("identical_copies", {}).items() if v["share"] > threshold]
