"""The Transform contract: configuration validated in ``__init__``, random parameters drawn by
``sample`` (arrays with leading dimension N, including the gate drawn from ``p``), and a pure,
batched ``apply`` that never edits its input and keeps dtype (uint8) and shape.
"""

from __future__ import annotations

from typing import Any, ClassVar, Iterator

import numpy as np

from augcli.config.schema import Float, Param, validate_mapping
from augcli.errors import SchemaError
from augcli.rng import Streams

Params = dict[str, Any]


def take(params: Params, index) -> Params:
    """The parameters of a subset of samples (recurses into containers' child lists)."""
    out = {}
    for key, value in params.items():
        if isinstance(value, np.ndarray):
            out[key] = value[index]
        elif isinstance(value, list):
            out[key] = [take(v, index) for v in value]
        else:
            out[key] = value
    return out


def apply_gated(transform: "Transform", images: np.ndarray, params: Params, owned: bool = False) -> np.ndarray:
    """Run ``transform.apply`` on the samples whose gate is set; the others pass through unchanged.

    Work is done on the gated subset only (one fancy-index gather and scatter per batch), so a
    transform with ``p=0.1`` costs a tenth of one with ``p=1``. ``owned`` says ``images`` is a
    temporary nobody else sees (an earlier step's output): the results are then scattered into it
    instead of into a fresh copy of the whole batch.
    """
    gate = params["gate"]
    if not gate.any():
        return images
    if gate.all():
        return transform.apply(images, params)
    idx = np.flatnonzero(gate)
    out = images if owned else images.copy()
    out[idx] = transform.apply(images[idx], take(params, idx))
    return out


class Transform:
    """Base class; subclasses set ``spec`` and implement ``sample_params`` and ``apply``."""

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    spec: ClassVar[dict[str, Param]] = {}
    default_p: ClassVar[float] = 1.0
    # Output size differs from input, so p must be 1. Subclasses whose size depends on their
    # config (crop/resize with a `size`) set it per instance in `check()` before calling super().
    changes_shape: bool = False
    uses_labels: ClassVar[bool] = False  # mixing transforms: applied through Pipeline with labels

    def __init__(self, p: float | None = None, **config: Any):
        fields = {"p": Float(self.default_p, 0.0, 1.0, "probability that the transform fires per sample")}
        fields.update(self.spec)
        raw = dict(config)
        raw["p"] = self.default_p if p is None else p
        values = validate_mapping(fields, raw, ())
        self.p: float = values.pop("p")
        self.config: dict[str, Any] = values
        for key, value in values.items():
            setattr(self, key, value)
        self.check()

    def check(self) -> None:
        """Cross-field validation; raise ``SchemaError`` with the offending key's path."""
        if self.changes_shape and self.p != 1.0:
            raise SchemaError(("p",), f"{self.name} changes the image size, so p must be 1, got {self.p}")

    # --- sampling -----------------------------------------------------------------------------
    def sample(self, streams: Streams, shape: tuple) -> Params:
        """Per-sample parameters for a batch of ``shape`` (N, H, W, C); the gate is drawn first."""
        params = {"gate": streams.bernoulli(self.p)}
        params.update(self.sample_params(streams, shape))
        return params

    def sample_params(self, streams: Streams, shape: tuple) -> Params:
        return {}

    def output_shape(self, shape: tuple) -> tuple:
        """The (N, H, W, C) shape this transform produces from ``shape``."""
        return shape

    # --- applying -----------------------------------------------------------------------------
    def apply(self, images: np.ndarray, params: Params) -> np.ndarray:  # pragma: no cover
        """Apply to every sample of ``images`` (gating is done by the caller)."""
        raise NotImplementedError

    def __call__(self, images: np.ndarray, streams: Streams | None = None, params: Params | None = None):
        """Sample (unless ``params`` are given, which replays them) and apply with the gate."""
        if params is None:
            if streams is None:
                raise TypeError("give either streams (to sample) or params (to replay)")
            params = self.sample(streams, images.shape)
        return apply_gated(self, images, params)

    # --- description --------------------------------------------------------------------------
    def leaves(self, params: Params) -> Iterator[tuple[str, Params]]:
        """(name, params) for every primitive transform in this one (containers recurse)."""
        yield self.name, params

    def to_config(self) -> dict:
        """The YAML-ready ``{name: {key: value}}`` form; ``build`` of it gives an equal transform."""
        values = {"p": self.p}
        values.update({k: list(v) if isinstance(v, tuple) else v for k, v in self.config.items()})
        return {self.name: values}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in {"p": self.p, **self.config}.items())
        return f"{type(self).__name__}({args})"
