"""Containers: transforms made of transforms. Each child draws from its own sub-stream
(``streams.child(i)``), and a child's gate is ANDed with the container's choice, so one batched
call per child replaces any per-sample branching."""

from __future__ import annotations

from typing import Any

import numpy as np

from augcli.errors import SchemaError
from augcli.rng import Streams
from augcli.config.schema import NumberList, Range
from augcli.transforms.base import Params, Transform, apply_gated
from augcli.transforms.registry import build, register


class Container(Transform):
    """Shared machinery: holds ``transforms``; builds them from config; applies them in order."""

    is_container = True
    allows_mixing = False  # only the pipeline's root threads labels through mixing transforms

    def __init__(self, transforms: list[Transform], p: float | None = None, **config: Any):
        self.transforms = list(transforms)
        super().__init__(p=p, **config)

    @classmethod
    def from_config(cls, config: Any, path: tuple) -> "Container":
        if isinstance(config, list):
            config = {"transforms": config}
        if not isinstance(config, dict):
            raise SchemaError(path, f"expected a list of transforms or a mapping with 'transforms', got {config!r}")
        config = dict(config)
        entries = config.pop("transforms", None)
        if not isinstance(entries, list) or not entries:
            raise SchemaError(path + ("transforms",), "expected a non-empty list of transforms")
        children = [build(entry, path + ("transforms", i)) for i, entry in enumerate(entries)]
        try:
            return cls(children, **config)
        except SchemaError as err:
            raise SchemaError(path + err.path, err.message) from None

    def check(self) -> None:
        super().check()
        if any(t.changes_shape for t in self.transforms) and not isinstance(self, Sequence):  # the root too
            raise SchemaError(("transforms",), f"{self.name} cannot hold size-changing transforms")
        if not self.allows_mixing and any(getattr(t, "uses_labels", False) for t in self.transforms):
            raise SchemaError(("transforms",), "mixup/cutmix mix labels: put them at the top level of augment.pipeline")

    def output_shape(self, shape: tuple) -> tuple:
        for t in self.transforms:
            shape = t.output_shape(shape)
        return shape

    def sample_children(self, streams: Streams, shape: tuple, selected: list[np.ndarray]) -> list[Params]:
        """Sample every child for all samples; child i fires only where ``selected[i]`` holds."""
        out = []
        for i, (t, sel) in enumerate(zip(self.transforms, selected)):
            params = t.sample(streams.child(i), shape)
            _and_gate(params, sel)
            out.append(params)
            shape = t.output_shape(shape)
        return out

    def sample(self, streams: Streams, shape: tuple) -> Params:
        params = super().sample(streams, shape)
        for child in params["children"]:
            _and_gate(child, params["gate"])
        return params

    def apply(self, images: np.ndarray, params: Params) -> np.ndarray:
        given = images
        for t, child in zip(self.transforms, params["children"]):
            # a step's output that shares no memory with the input is this loop's own temporary,
            # so the next gated step may scatter into it (saves a copy of the batch per step)
            owned = images is not given and not np.may_share_memory(images, given)
            images = apply_gated(t, images, child, owned)
        return images

    def leaves(self, params: Params):
        for t, child in zip(self.transforms, params["children"]):
            yield from t.leaves(child)

    def to_config(self) -> dict:
        config = super().to_config()
        config[self.name]["transforms"] = [t.to_config() for t in self.transforms]
        return config


def _and_gate(params: Params, mask: np.ndarray) -> None:
    """Restrict a (possibly nested) parameter set to ``mask``, so leaves report what really fired."""
    params["gate"] = params["gate"] & mask
    for child in params.get("children", []):
        _and_gate(child, params["gate"])


@register("sequence")
class Sequence(Container):
    summary = "Apply every child in order."

    def sample_params(self, streams, shape):
        gate = np.ones(len(streams), dtype=bool)
        return {"children": self.sample_children(streams, shape, [gate] * len(self.transforms))}


@register("one_of")
class OneOf(Container):
    summary = "Apply exactly one child, picked per sample (optionally weighted)."
    spec = {"weights": NumberList(None, low=0.0, nullable=True, doc="relative weight of each child (default: equal)")}

    def check(self):
        super().check()
        if self.weights is not None and (len(self.weights) != len(self.transforms) or sum(self.weights) <= 0):
            raise SchemaError(("weights",), f"expected {len(self.transforms)} non-negative weights with a positive sum, got {list(self.weights)}")

    def sample_params(self, streams, shape):
        choice = streams.choice(len(self.transforms), self.weights)
        selected = [choice == i for i in range(len(self.transforms))]
        return {"choice": choice, "children": self.sample_children(streams, shape, selected)}


@register("some_of")
class SomeOf(Container):
    summary = "Apply a random subset of n children (n fixed or drawn from [a, b]), in listed order."
    spec = {"n": Range((1, 2), 0, 64, around=None, integer=True, doc="how many children fire: [a, b]")}

    def check(self):
        super().check()
        if self.n[1] > len(self.transforms):
            raise SchemaError(("n",), f"expected at most {len(self.transforms)} (the number of children), got {self.n[1]}")

    def sample_params(self, streams, shape):
        k = streams.within(self.n)
        order = streams.uniform(shape=(len(self.transforms),))
        ranks = np.argsort(np.argsort(order, axis=1), axis=1)
        selected = [ranks[:, i] < k for i in range(len(self.transforms))]
        return {"count": k, "children": self.sample_children(streams, shape, selected)}
