"""``Pipeline``: the augmentation chain of a strategy, and the public Python API.

The CLI and a training loop use the same object::

    pipe = Pipeline.from_strategy("configs/digits.yaml", class_names=names)
    batch = pipe(images, ids=sample_ids, copy=epoch)   # uint8 (N, H, W, C) in, same out
    batch, soft = pipe(images, ids=sample_ids, copy=epoch, labels=y)   # with mixup: soft (N, K)

Randomness depends only on (seed, sample id, copy, step), so the same call gives the same bytes
whatever the batch composition.
"""

from __future__ import annotations

from typing import Any, Sequence as Seq

import numpy as np

from augcli.config.strategy import Strategy, load_strategy
from augcli.datasets.base import hard_labels
from augcli.errors import SchemaError
from augcli.rng import Streams, hash_ids, sample_keys
from augcli.transforms.base import Params, Transform, apply_gated
from augcli.transforms.mixing import MixPool, one_hot
from augcli.transforms.containers import Sequence
from augcli.transforms.registry import build
from augcli.transforms.rules import ClassRules


class Pipeline:
    """An ordered chain of transforms plus the root seed."""

    def __init__(self, transforms: Seq[Transform], seed: int = 0, rules=None, num_classes: int | None = None):
        self.root = _Root(list(transforms))
        self.seed = int(seed)
        self.rules = rules  # augcli.transforms.rules.ClassRules or None
        # K, the width of soft labels: a batch's own labels cannot tell it (a batch of class 0 would give (N, 1))
        self.num_classes = None if num_classes is None else _class_count(num_classes)

    @property
    def transforms(self) -> list[Transform]:
        return self.root.transforms

    @classmethod
    def from_config(cls, entries: list[Any], seed: int = 0, num_classes: int | None = None) -> "Pipeline":
        """Build from the ``augment.pipeline`` list of a strategy (YAML-shaped entries); ``num_classes``
        sizes the soft labels of mixing transforms."""
        return cls([build(entry, ("pipeline", i)) for i, entry in enumerate(entries)], seed=seed,
                   num_classes=num_classes)

    @classmethod
    def from_strategy(cls, strategy, overrides: Seq[str] = (), class_names: Seq[str] | None = None,
                      num_classes: int | None = None) -> "Pipeline":
        """Build from a strategy file path or a loaded ``Strategy``.

        ``class_names`` (label k is ``class_names[k]``) are needed by per-class ``augment.rules`` and
        set ``num_classes`` (K, the width of soft labels under mixup/cutmix) unless it is given.
        """
        if not isinstance(strategy, Strategy):
            strategy = load_strategy(strategy, overrides)
        rules = None
        if strategy.section("augment")["rules"]:
            if class_names is None:
                raise ValueError("this strategy has augment.rules: pass class_names")
            try:
                rules = ClassRules(strategy.section("augment")["rules"], list(class_names))
            except SchemaError as err:
                raise strategy.error(err) from None
        if num_classes is None and class_names is not None:
            num_classes = len(class_names)
        return cls(strategy.transforms, seed=strategy.seed, rules=rules, num_classes=num_classes)

    def keys(self, ids: Seq[str], copy=0) -> np.ndarray:
        """Per-sample stream keys (uint64 (N,)) for sample ``ids`` and copy index (scalar or per sample).

        A key depends only on (seed, id, copy), never on the batch: ``run(images, keys(ids, epoch), ...)``
        draws the same parameters for a sample in any batch, order or worker."""
        return sample_keys(self.seed, hash_ids(list(ids)), copy)

    def sample(self, keys: np.ndarray, shape: tuple) -> Params:
        """Draw the parameters of every transform for samples with the given stream keys."""
        return self.root.sample(Streams(keys), shape)

    @property
    def mixes_labels(self) -> bool:
        """True when a transform (mixup, cutmix) makes labels soft."""
        return any(getattr(t, "uses_labels", False) for t in self.transforms)

    def run(self, images: np.ndarray, keys: np.ndarray, labels: np.ndarray | None = None,
            pool: MixPool | None = None, num_classes: int | None = None) -> tuple[np.ndarray, np.ndarray | None, Params]:
        """Augment ``images`` (uint8 N×H×W×C) with stream ``keys`` (``keys()``) -> (images, labels, params drawn).

        ``labels`` (hard (N,) or soft (N, K)) are needed by label rules and mixing transforms; with
        mixing, the returned labels are soft float32 (N, K), K = ``num_classes`` (default: the
        pipeline's own), and partners come from ``pool`` (default: this batch's own images - fine
        on-line, but then pairing depends on the batch). Without mixing, ``labels`` come back as given.
        """
        _check_images(images)
        params = self.sample(keys, images.shape)
        if self.rules is not None:
            if labels is None:
                raise ValueError("this pipeline has per-class rules: pass labels")
            self.rules.restrict(self.root, params, hard_labels(labels))
        return (*self.replay(images, params, labels, pool, num_classes), params)

    def replay(self, images: np.ndarray, params: Params, labels: np.ndarray | None = None,
               pool: MixPool | None = None, num_classes: int | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        """Apply parameters drawn by ``run`` (its third value) again -> (images, labels): the same bytes,
        e.g. to re-create a manifest's sample or to apply one draw to a second, aligned image."""
        if not self.mixes_labels:
            return self.root.apply(images, params), labels
        if labels is None:
            raise ValueError("mixup/cutmix need labels: pass labels")
        soft = one_hot(labels, self._width(labels, num_classes))
        pool = pool or MixPool(images, soft)
        for t, child in zip(self.transforms, params["children"]):
            if getattr(t, "uses_labels", False):
                images, soft = t.mix(images, soft, child, pool)
            else:
                images = apply_gated(t, images, child)
        return images, soft

    def __call__(self, images: np.ndarray, ids: Seq[str] | None = None, copy=0, labels=None,
                 num_classes: int | None = None):
        """Augment a batch; ``ids`` default to the row numbers, ``copy`` (e.g. the epoch) varies draws.

        Returns the images, or (images, labels) when ``labels`` are given; with mixing transforms the
        labels are soft float32 (N, K), K = ``num_classes`` (default: the pipeline's own).
        """
        if ids is None:
            ids = [str(i) for i in range(images.shape[0])]
        out, out_labels, _ = self.run(images, self.keys(ids, copy), labels, num_classes=num_classes)
        return out if labels is None else (out, out_labels)

    def _width(self, labels: np.ndarray, num_classes: int | None) -> int:
        """K for soft labels: the argument, else the pipeline's, else the width of soft ``labels``."""
        k = num_classes if num_classes is not None else self.num_classes
        if k is None and labels.ndim == 2:
            k = labels.shape[1]
        if k is None:
            raise ValueError("mixup/cutmix need the class count to size soft labels: pass num_classes, "
                             "or class_names to Pipeline.from_strategy")
        k = _class_count(k)
        if labels.ndim == 2 and labels.shape[1] != k:
            raise ValueError(f"soft labels have {labels.shape[1]} columns but num_classes is {k}")
        if labels.ndim == 1 and labels.size and (labels.min() < 0 or labels.max() >= k):
            raise ValueError(f"labels must be class indices in 0..{k - 1}, got {labels.min()}..{labels.max()}")
        return k

    def output_shape(self, shape: tuple) -> tuple:
        return self.root.output_shape(shape)

    def records(self, params: Params) -> list[list[dict]]:
        """Per sample, the transforms that fired with their sampled parameters (JSON-ready)."""
        n = params["gate"].shape[0]
        per_sample: list[list[dict]] = [[] for _ in range(n)]
        for name, leaf in self.root.leaves(params):
            fired = np.flatnonzero(leaf["gate"])
            if fired.size == 0:
                continue
            # per-pixel fields (noise, displacement) would bloat the manifest; they are replayed
            # from (seed, id, copy) instead, so only per-sample scalars and short vectors are listed
            values = {k: v for k, v in leaf.items()
                      if k != "gate" and isinstance(v, np.ndarray) and v[0:1].size <= _MAX_RECORDED}
            columns = {k: _json_column(v[fired]) for k, v in values.items()}
            for j, i in enumerate(fired.tolist()):
                op = {"op": name}
                op.update({k: column[j] for k, column in columns.items()})
                per_sample[i].append(op)
        return per_sample

    def fire_counts(self, params: Params) -> dict[str, int]:
        """How many samples each transform (by pipeline position and name) fired on."""
        counts: dict[str, int] = {}
        for name, leaf in self.root.leaves(params):
            counts[name] = counts.get(name, 0) + int(leaf["gate"].sum())
        return counts

    def to_config(self) -> list[dict]:
        return [t.to_config() for t in self.transforms]


def _json_column(values: np.ndarray) -> list:
    """One parameter of several samples as JSON-ready Python values, floats rounded to 6 places
    (converted per column: per-sample NumPy scalars made the manifest the augment stage's main cost)."""
    if values.ndim == 1:
        items = values.tolist()
        return [round(x, 6) for x in items] if values.dtype.kind == "f" else items
    return (np.round(values, 6) if values.dtype.kind == "f" else values).tolist()


_MAX_RECORDED = 16  # values per sample above which a parameter is not written to the manifest


class _Root(Sequence):
    """The pipeline's top-level sequence: the one place mixing transforms may stand."""

    allows_mixing = True


def _class_count(k) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"num_classes must be a positive integer, got {k!r}")
    return int(k)


def _check_images(images: np.ndarray) -> None:
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] not in (1, 3):
        got = f"{images.dtype} {images.shape}" if isinstance(images, np.ndarray) else type(images).__name__
        raise ValueError(f"expected uint8 images of shape (N, H, W, C) with C in {{1, 3}}, got {got}")
