"""Every section of the strategy file, as schema: what each key means, its type, range and default.

``SCHEMA`` is the whole file; validation (config/strategy.py), the generated reference
(docs/strategy.md) and ``augcli validate`` all read it. Specs only describe values: the stages that
use them (clean/, transforms/rules.py, adaptive.py) import them from here, never the other way round.
"""

from __future__ import annotations

from dataclasses import dataclass

from augcli.config.schema import (Bool, Choice, Either, Float, Int, ListOf, Mapping, Name, NumberMap, Param, Size,
                                  Text, did_you_mean)
from augcli.errors import SchemaError

# --- clean: --------------------------------------------------------------------------------------

_ACTION = ("drop", "flag", "off")


def _section(doc: str, action: str, actions=_ACTION, **fields) -> Mapping:
    return Mapping(doc=doc, fields={"action": Choice(action, actions, doc="drop the samples, only flag them, or skip the check"), **fields})


CLEAN_SPEC = Mapping(doc="what to find and remove before splitting (and leakage after it)", fields={
    "exact_duplicates": Choice("drop", _ACTION, doc="identical decoded pixels: keep the first, drop or flag the rest"),
    "blank": _section("constant (blank) images", "drop",
                      min_std=Float(2.0, 0.0, 255.0, doc="pixel standard deviation (grey levels) below which an image is blank")),
    "noise": _section("pure-noise images (no spatial structure)", "flag"),
    "near_duplicates": _section("perceptual-hash near duplicates (pHash, 64 bits)", "flag",
                                max_distance=Int(4, 0, 16, doc="largest Hamming distance between hashes that counts as a near duplicate")),
    "outliers": _section("unusual images by pixel statistics and a PCA embedding", "off",
                         method=Choice("isolation_forest", ("isolation_forest", "lof"), doc="scikit-learn detector"),
                         contamination=Float(0.01, 0.0001, 0.5, doc="expected share of outliers")),
    "label_errors": _section("likely wrong labels (confident learning on out-of-fold probabilities)", "off",
                             actions=("flag", "drop", "off"),
                             folds=Int(5, 2, 20, doc="cross-validation folds for the out-of-fold probabilities")),
    "leakage": _section("near duplicates across train and val/test: removed from the training side", "drop",
                        max_distance=Int(4, 0, 16, doc="largest Hamming distance that counts as leakage")),
})


# --- augment.rules: ------------------------------------------------------------------------------

RULES_SPEC = ListOf([], item=Mapping(fields={
    "classes": ListOf(item=Name(), doc="class names the rule applies to"),
    "forbid": ListOf([], item=Name(), doc="transforms that never fire on these classes"),
    "max_abs": NumberMap({}, low=0.0, doc="sampled parameter -> largest allowed absolute value (e.g. angle: 20)"),
}), doc="per-class rules: forbid transforms or cap sampled parameters for some classes")


def check_rule_names(rules: list[dict], registry: dict) -> None:
    """Strategy-time check: every forbidden transform exists (did-you-mean otherwise)."""
    for i, rule in enumerate(rules):
        if not rule["classes"]:
            raise SchemaError(("augment", "rules", i, "classes"), "expected at least one class name")
        for j, name in enumerate(rule["forbid"]):
            if name not in registry:
                raise SchemaError(("augment", "rules", i, "forbid", j),
                                  f"unknown transform {name!r}{did_you_mean(name, list(registry))}")


# --- adaptive: -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Section(Mapping):
    """The ``adaptive:`` mapping plus its one cross-field rule, so a bad pair fails at load time
    with file:line rather than in ``AdaptiveController`` mid-evaluation."""

    def validate(self, value, path):
        out = super().validate(value, path)
        if out["p_init"] > out["p_max"]:
            raise SchemaError(path + ("p_init",), f"must not exceed p_max ({out['p_max']:g}), got {out['p_init']:g}")
        return out


ADAPTIVE_SPEC = _Section(doc="adapt the augmentation strength p during on-line training (StyleGAN2-ADA's sign rule)", fields={
    "enabled": Bool(False, doc="adapt p on-line (evaluate --online, AdaptivePipeline.from_strategy); off: p = 1"),
    "metric": Choice("gap", ("gap", "confidence"),
                     doc="overfitting measure: train - val accuracy (gap) or mean top-class probability on training samples"),
    "target": Float(0.05, 0.0, 1.0, doc="p rises while the measure is above the target and falls while below"),
    "step": Float(0.05, 0.0001, 1.0, doc="change of p per update (ADA's bounded sign step)"),
    "p_init": Float(0.0, 0.0, 1.0, doc="strength at the start of training"),
    "p_max": Float(1.0, 0.0, 1.0, doc="largest strength"),
    "interval": Int(1, 1, 10_000, doc="epochs per update (the measure is averaged over them)"),
    "val_fraction": Float(0.2, 0.05, 0.5, doc="metric gap: share of each class of the training split held out to measure val accuracy (confidence needs none)"),
})


# --- the whole file ------------------------------------------------------------------------------

SCHEMA_VERSION = 1
# A per-class output count far beyond any machine; the run's memory budget (augcli.budget) refuses
# much less, this bound only keeps the counts inside int64.
MAX_BALANCE_TARGET = 10**9


@dataclass(frozen=True)
class AutoBool(Param):
    """``auto``, ``true`` or ``false`` (``auto`` is resolved where the value is used)."""

    def validate(self, value, path):
        if value == "auto" or isinstance(value, bool):
            return value
        shown = repr(value) if isinstance(value, str) else str(value)
        raise SchemaError(path, f"expected auto, true or false, got {shown[:100]}")

    def type_name(self):
        return "auto or bool"

    def range_text(self):
        return "{auto, true, false}"


# --- output: ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Output(Mapping):
    """The ``output:`` mapping plus its one cross-field rule: npz stores pixels, not encoded files,
    so asking for JPEG or WebP with it is refused (file:line) rather than silently ignored."""

    def validate(self, value, path):
        out = super().validate(value, path)
        if out["format"] == "npz" and out["image_format"] != "png":
            raise SchemaError(path + ("image_format",),
                              f"{out['image_format']} applies to format png or tar; npz stores raw pixels")
        return out


OUTPUT_SPEC = _Output(doc="where and how results are written", fields={
    "dir": Text(None, nullable=True, doc="output folder (default: data/out/<strategy name>)"),
    "format": Choice("npz", ("npz", "png", "tar"),
                     doc="npz: one file per split (or shard); png: <split>/<class>/<id>__<copy>.png; tar: WebDataset shards"),
    "image_format": Choice("png", ("png", "jpg", "webp"),
                           doc="how format png and tar store each image (file or member extension alike): png "
                               "lossless; jpg (baseline JPEG, what WebDataset ImageNet shards hold) or webp lossy, at "
                               "`quality`; gray images stay gray except in webp (stored as RGB); npz refuses jpg/webp"),
    "png_compression": Int(1, 0, 9,
                           doc="PNG effort; on 224x224 photos against cv2.imwrite's PNGs: 0 stored, ~0.1x the time, 2x "
                               "the size; 1 Up filter + zlib-ng run-length deflate, ~0.6x the time, the same size (smaller on flat images); "
                               "2 ~5 % smaller, ~1.2x the time; 3 ~12 % smaller, ~1.6x; 4-9 full deflate, ~3.5x to ~35x "
                               "the time, about as small as 3 on photos, smaller on flat or synthetic images"),
    "quality": Int(None, 1, 100, nullable=True,
                   doc="jpg/webp quality; null: jpg 95 (on 224x224 photos ~1/4 of the PNG's bytes, off by 1.7 grey "
                       "levels on average), webp 90 (~1/8, off by 2.0, ~3x cv2.imwrite's PNG time); ignored for png"),
    "shard_size": Int(None, 1, nullable=True, doc="output samples per shard file (<split>-00000.npz, ...); null = one file per split"),
    "manifest": Bool(True, doc="write manifest.jsonl (one line per output sample)"),
    "shuffle": AutoBool("auto",
                        doc="write each split in a seeded random order, copies of one image spread out; "
                            "auto = on for tar and sharded output, off for one npz/PNG file per split "
                            "(read whole, shuffled by the loader)"),
})


class PipelineSpec(Param):
    """``augment.pipeline``: a list of transform entries, validated by building them."""

    def __init__(self):
        object.__setattr__(self, "default", [])
        object.__setattr__(self, "doc", "the augmentation chain, applied in order (see `augcli transforms`)")

    def validate(self, value, path):
        # Entries are validated by building them (in strategy_from_text), once.
        if value is None:
            return []
        if not isinstance(value, list):
            raise SchemaError(path, f"expected a list of transforms, got {value!r}")
        return value

    def type_name(self):
        return "list of transforms"

    def default_text(self):
        return "[]"


SCHEMA: dict[str, Param] = {
    "version": Int(SCHEMA_VERSION, SCHEMA_VERSION, SCHEMA_VERSION, doc="strategy schema version"),
    "seed": Int(0, 0, 2**63 - 1, doc="root seed of every random draw"),
    "dataset": Mapping(doc="where the images come from", fields={
        "source": Text(doc="'digits', an image folder (one sub-folder per class) or an .npz file"),
        "kind": Choice("auto", ("auto", "digits", "folder", "npz"), doc="source kind; auto infers it"),
        "image_size": Size(None, nullable=True, doc="bring every image to [height, width] (folders: default = first image's size)"),
        "color_mode": Choice("auto", ("auto", "gray", "rgb"), doc="channels of the loaded images (auto: digits gray, folders rgb, npz as stored)"),
        "resize": Choice("stretch", ("stretch", "crop", "pad"), doc="folders: how an image of another size reaches image_size (or the first image's): stretch (aspect ratio lost), crop (scaled to cover, centre kept) or pad (scaled to fit, black borders)"),
        "limit": Int(None, 1, nullable=True, doc="use only the first N samples (quick trials)"),
        "max_pixels": Int(89_478_485, 1, doc="images with more pixels are skipped as too_large (decompression-bomb guard)"),
        "follow_symlinks": Bool(False, doc="read symbolic links that lead outside the source folder"),
        "npz_keys": Mapping(doc="array names inside an .npz source", fields={
            "images": Text("images", doc="images array (N,H,W[,C])"),
            "labels": Text("labels", doc="labels array (N,) or (N,K)"),
            "ids": Text("ids", doc="optional sample ids"),
            "class_names": Text("class_names", doc="optional class names"),
        }),
    }),
    "clean": CLEAN_SPEC,
    "split": Mapping(doc="train/val/test split, stratified by class; only train is augmented", fields={
        "val": Float(0.0, 0.0, 0.9, doc="fraction of each class held out for validation"),
        "test": Float(0.0, 0.0, 0.9, doc="fraction of each class held out for testing"),
        "stratify": Bool(True, doc="keep class proportions in every split"),
    }),
    "augment": Mapping(doc="how the training split is augmented", fields={
        "copies": Int(1, 0, 10_000, doc="augmented copies per training image"),
        "keep_originals": Bool(True, doc="also write each original (as copy 0)"),
        "pipeline": PipelineSpec(),
        "rules": RULES_SPEC,
        "balance": Mapping(doc="extra augmented copies for minority classes", fields={
            "target": Either(None, options=(Choice(choices=("max",)), Int(low=1, high=MAX_BALANCE_TARGET)),
                             doc="per-class output count to reach: 'max' (the largest class) or a number; null = off"),
        }),
    }),
    "output": OUTPUT_SPEC,
    "report": Mapping(doc="the run report", fields={
        "preview": Bool(True, doc="write preview.png (originals beside augmented copies)"),
        "preview_samples": Int(8, 1, 64, doc="rows of the preview grid"),
        "preview_copies": Int(6, 1, 32, doc="augmented copies per preview row"),
    }),
    "adaptive": ADAPTIVE_SPEC,
}

# Sections added after schema version 1: left out of ``Strategy.sha256`` while at their defaults,
# so strategies that do not use them keep the hash they had (reports, run resume state).
LATER_SECTIONS = ("adaptive",)
