"""``Pipeline``: the augmentation chain of a strategy, and the public Python API.

The CLI and a training loop use the same object::

    pipe = Pipeline.from_strategy("configs/digits.yaml")
    batch = pipe(images, ids=sample_ids, copy=epoch)   # uint8 (N, H, W, C) in, same out

Randomness depends only on (seed, sample id, copy, step), so the same call gives the same bytes
whatever the batch composition.
"""

from __future__ import annotations

from typing import Any, Sequence as Seq

import numpy as np

from augcli.rng import Streams, hash_ids, sample_keys
from augcli.transforms.base import Params, Transform
from augcli.transforms.containers import Sequence
from augcli.transforms.registry import build


class Pipeline:
    """An ordered chain of transforms plus the root seed."""

    def __init__(self, transforms: Seq[Transform], seed: int = 0):
        self.root = Sequence(list(transforms))
        self.seed = int(seed)

    @property
    def transforms(self) -> list[Transform]:
        return self.root.transforms

    @classmethod
    def from_config(cls, entries: list[Any], seed: int = 0) -> "Pipeline":
        """Build from the ``augment.pipeline`` list of a strategy (YAML-shaped entries)."""
        return cls([build(entry, ("pipeline", i)) for i, entry in enumerate(entries)], seed=seed)

    @classmethod
    def from_strategy(cls, strategy, overrides: Seq[str] = ()) -> "Pipeline":
        """Build from a strategy file path or a loaded ``Strategy``."""
        from augcli.strategy import Strategy, load_strategy

        if not isinstance(strategy, Strategy):
            strategy = load_strategy(strategy, overrides)
        return cls(strategy.transforms, seed=strategy.seed)

    def keys(self, ids: Seq[str], copy=0) -> np.ndarray:
        """Per-sample stream keys for sample ``ids`` and copy index (scalar or per sample)."""
        return sample_keys(self.seed, hash_ids(list(ids)), copy)

    def sample(self, keys: np.ndarray, shape: tuple) -> Params:
        """Draw the parameters of every transform for samples with the given stream keys."""
        return self.root.sample(Streams(keys), shape)

    def run(self, images: np.ndarray, keys: np.ndarray) -> tuple[np.ndarray, Params]:
        """Augment ``images`` (uint8 N×H×W×C); returns the images and the parameters drawn."""
        _check_images(images)
        params = self.sample(keys, images.shape)
        return self.root.apply(images, params), params

    def replay(self, images: np.ndarray, params: Params) -> np.ndarray:
        """Apply previously drawn parameters again (exact replay)."""
        return self.root.apply(images, params)

    def __call__(self, images: np.ndarray, ids: Seq[str] | None = None, copy=0) -> np.ndarray:
        """Augment a batch; ``ids`` default to the row numbers, ``copy`` (e.g. the epoch) varies draws."""
        if ids is None:
            ids = [str(i) for i in range(images.shape[0])]
        return self.run(images, self.keys(ids, copy))[0]

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
            values = {k: v for k, v in leaf.items() if k != "gate" and isinstance(v, np.ndarray)}
            for i in fired:
                op = {"op": name}
                op.update({k: _json_value(v[i]) for k, v in values.items()})
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


def _json_value(value):
    arr = np.asarray(value)
    if arr.ndim == 0:
        item = arr.item()
        return round(item, 6) if isinstance(item, float) else item
    return np.round(arr, 6).tolist() if arr.dtype.kind == "f" else arr.tolist()


def _check_images(images: np.ndarray) -> None:
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] not in (1, 3):
        got = f"{images.dtype} {images.shape}" if isinstance(images, np.ndarray) else type(images).__name__
        raise ValueError(f"expected uint8 images of shape (N, H, W, C) with C in {{1, 3}}, got {got}")
