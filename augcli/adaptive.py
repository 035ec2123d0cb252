"""Adaptive augmentation strength for training loops (the StyleGAN2-ADA rule, for classifiers).

ADA (Karras et al. 2020) watches an overfitting measure and moves the augmentation probability p
by a fixed, bounded step in the direction of its sign: up while the measure is above a target,
down while below. For a classifier the measure is the gap between training and validation
accuracy (``metric: gap``) or the mean confidence on training samples (``metric: confidence``)::

    from augcli import AdaptiveController, AdaptivePipeline, Pipeline

    control = AdaptiveController(target=0.05, step=0.05)
    augment = AdaptivePipeline(Pipeline.from_strategy("configs/digits.yaml"), control)
    for epoch in range(epochs):
        x = augment(images, ids=ids, copy=epoch + 1)          # each sample augmented with prob p
        model.partial_fit(x.reshape(len(x), -1) / 255, labels, classes=classes)
        control.update(train_accuracy, val_accuracy)          # -> the new p

A strategy can carry the settings in an ``adaptive:`` section (``config.sections.ADAPTIVE_SPEC``);
``AdaptivePipeline.from_strategy`` honours it. The epoch loop that drives the controller while a
model trains is ``evaluation.online.adaptive_epochs``. docs/training-loops.md has full examples.
"""

from __future__ import annotations


import numpy as np

from augcli.config.sections import ADAPTIVE_SPEC
from augcli.config.strategy import Strategy, load_strategy
from augcli.pipeline import Pipeline
from augcli.rng import Streams, hash_ids, sample_keys
from augcli.transforms.mixing import one_hot


_GATE_STEP = 0xADA  # sub-stream of the per-sample strength gate: independent of the pipeline's draws


class AdaptiveController:
    """Holds the strength ``p`` (and optionally a magnitude ``level``) and moves it by ADA's rule.

    ``update(train_metric, val_metric)`` takes accuracies in [0, 1] (``metric="gap"``) or the mean
    training confidence in [0, 1] (``metric="confidence"``, ``val_metric`` ignored). Every
    ``interval`` calls the measures are averaged into r and ``p += step * sign(r - target)``,
    clipped to [p_min, p_max]. With ``level_step > 0`` the level moves the same way, by
    ``level_step`` per update within [level_min, level_max].
    """

    def __init__(self, target: float = 0.05, step: float = 0.05, p_init: float = 0.0, p_max: float = 1.0,
                 p_min: float = 0.0, interval: int = 1, metric: str = "gap", level_init: float = 0.0,
                 level_step: float = 0.0, level_min: float = 0.0, level_max: float = 10.0):
        if metric not in ("gap", "confidence"):
            raise ValueError(f"metric must be 'gap' or 'confidence', got {metric!r}")
        if not 0.0 <= p_min <= p_max <= 1.0 or not p_min <= p_init <= p_max:
            raise ValueError(f"need 0 <= p_min <= p_init <= p_max <= 1, got {p_min}, {p_init}, {p_max}")
        self.target, self.step, self.metric = float(target), float(step), metric
        self.p_min, self.p_max, self.interval = float(p_min), float(p_max), int(interval)
        self.level_step, self.level_min, self.level_max = float(level_step), float(level_min), float(level_max)
        self.p = float(p_init)
        self.level = float(level_init)
        self.history: list[dict] = []
        self._pending: list[float] = []

    @classmethod
    def from_config(cls, config: dict) -> "AdaptiveController":
        """From a validated ``adaptive:`` section (``ADAPTIVE_SPEC``)."""
        return cls(target=config["target"], step=config["step"], p_init=config["p_init"], p_max=config["p_max"],
                   interval=config["interval"], metric=config["metric"])

    def measure(self, train_metric: float, val_metric: float | None) -> float:
        """The overfitting measure of one epoch."""
        if self.metric == "confidence":
            return float(train_metric)
        if val_metric is None:
            raise ValueError("metric 'gap' needs a validation metric")
        return float(train_metric) - float(val_metric)

    def update(self, train_metric: float, val_metric: float | None = None) -> float:
        """Record one epoch's metrics; every ``interval`` epochs take one sign step. Returns p."""
        self._pending.append(self.measure(train_metric, val_metric))
        if len(self._pending) >= self.interval:
            r = float(np.mean(self._pending))
            self._pending.clear()
            direction = float(np.sign(r - self.target))
            self.p = float(np.clip(self.p + direction * self.step, self.p_min, self.p_max))
            if self.level_step > 0:
                self.level = float(np.clip(self.level + direction * self.level_step, self.level_min, self.level_max))
            self.history.append({"measure": r, "p": self.p, "level": self.level,
                                 "train": float(train_metric), "val": None if val_metric is None else float(val_metric)})
        return self.p


class AdaptivePipeline:
    """Augmentation at the controller's current strength.

    ``source`` is either a ``Pipeline`` - then each sample is augmented by it with probability p
    and passes through unchanged otherwise - or a factory ``(p, level) -> Pipeline`` that builds
    the pipeline at that strength (ADA's form, where p is every op's own probability). The
    per-sample gate is drawn from the sample's own stream, so results do not depend on batching.
    """

    def __init__(self, source, controller: AdaptiveController):
        self.source = source
        self.controller = controller
        self._built: dict = {}

    @classmethod
    def from_strategy(cls, strategy, class_names=None, overrides=()) -> "AdaptivePipeline":
        """The strategy's pipeline under its ``adaptive:`` section (p fixed at 1 when not enabled)."""
        if not isinstance(strategy, Strategy):
            strategy = load_strategy(strategy, overrides)
        config = ADAPTIVE_SPEC.validate(strategy.config.get("adaptive"), ("adaptive",))
        pipe = Pipeline.from_strategy(strategy, class_names=class_names)
        if not config["enabled"]:
            return cls(pipe, AdaptiveController(p_init=1.0, step=0.0))
        return cls(pipe, AdaptiveController.from_config(config))

    @property
    def p(self) -> float:
        return self.controller.p

    def pipeline(self):
        """The pipeline in force: ``source`` itself, or the factory's pipeline at (p, level)."""
        if not callable(self.source) or hasattr(self.source, "run"):
            return self.source
        key = (round(self.controller.p, 6), round(self.controller.level, 6))
        if key not in self._built:
            self._built = {key: self.source(*key)}  # strength moves slowly: keep only the current build
        return self._built[key]

    def __call__(self, images: np.ndarray, ids=None, copy=0, labels=None, num_classes: int | None = None):
        """Augment a batch at strength p; returns images, or (images, labels) when labels are given
        (soft labels of width ``num_classes``, else the pipeline's own K, when it mixes)."""
        if ids is None:
            ids = [str(i) for i in range(images.shape[0])]
        pipe = self.pipeline()
        keys = sample_keys(pipe.seed, hash_ids(ids), copy)
        if pipe is not self.source:
            out, out_labels, _ = pipe.run(images, keys, labels, num_classes=num_classes)
            return out if labels is None else (out, out_labels)
        gate = Streams(keys).child(_GATE_STEP).uniform() < self.controller.p
        idx = np.flatnonzero(gate)
        out = images.copy()
        out_labels = labels
        if idx.size:
            sub_labels = None if labels is None else labels[idx]
            result, new_labels, _ = pipe.run(images[idx], keys[idx], sub_labels, num_classes=num_classes)
            out[idx] = result
            if labels is not None and new_labels is not None:
                out_labels = _merge_labels(labels, idx, new_labels)
        return out if labels is None else (out, out_labels)


def _merge_labels(labels: np.ndarray, idx: np.ndarray, new: np.ndarray) -> np.ndarray:
    if new.ndim == labels.ndim:
        merged = labels.copy()
        merged[idx] = new
        return merged
    merged = one_hot(labels, new.shape[1])  # mixing made the augmented rows soft: make all rows soft
    merged[idx] = new
    return merged
