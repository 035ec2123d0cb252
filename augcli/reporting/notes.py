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


def identical_notes(report: dict, threshold: float = 0.0) -> list[str]:
    """One sentence per split whose share of copies identical to their original exceeds ``threshold``."""
    return [f"{split}: {v['count']:,} of {v['augmented']:,} augmented copies ({v['share']:.1%}) came out identical to "
            "their original (with p < 1 every step can be skipped); re-running cleaning on this output removes them "
            "as exact duplicates"
            for split, v in report.get("transforms", {}).get("identical_copies", {}).items() if v["share"] > threshold]
