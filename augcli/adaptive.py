"""Adaptive augmentation strength for training loops (the StyleGAN2-ADA rule, for classifiers).

ADA (Karras et al. 2020) watches an overfitting measure and moves the augmentation probability p
by a fixed, bounded step in the direction of its sign: up while the measure is above a target,
down while below. For a classifier the measure is the gap between training and validation
accuracy (``metric: gap``) or the mean confidence on training samples (``metric: confidence``)::

    from augcli import Pipeline
    from augcli.adaptive import AdaptiveController, AdaptivePipeline

    control = AdaptiveController(target=0.05, step=0.05)
    augment = AdaptivePipeline(Pipeline.from_strategy("configs/digits.yaml"), control)
    for epoch in range(epochs):
        x = augment(images, ids=ids, copy=epoch + 1)          # each sample augmented with prob p
        model.partial_fit(x.reshape(len(x), -1) / 255, labels, classes=classes)
        control.update(train_accuracy, val_accuracy)          # -> the new p

A strategy can carry the settings in an ``adaptive:`` section (``ADAPTIVE_SPEC``);
``AdaptivePipeline.from_strategy`` honours it. docs/training-loops.md has full examples.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np

from augcli.errors import SchemaError
from augcli.rng import Streams, hash_ids, sample_keys
from augcli.config.schema import Bool, Choice, Float, Int, Mapping


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
        from augcli.pipeline import Pipeline
        from augcli.config.strategy import Strategy, load_strategy

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

    def __call__(self, images: np.ndarray, ids=None, copy=0, labels=None):
        """Augment a batch at strength p; returns images, or (images, labels) when labels are given."""
        if ids is None:
            ids = [str(i) for i in range(images.shape[0])]
        pipe = self.pipeline()
        keys = sample_keys(pipe.seed, hash_ids(list(ids)), copy)
        if pipe is not self.source:
            out, out_labels, _ = pipe.run(images, keys, labels)
            return out if labels is None else (out, out_labels)
        gate = Streams(keys).child(_GATE_STEP).uniform() < self.controller.p
        idx = np.flatnonzero(gate)
        out = images.copy()
        out_labels = labels
        if idx.size:
            sub_labels = None if labels is None else labels[idx]
            result, new_labels, _ = pipe.run(images[idx], keys[idx], sub_labels)
            out[idx] = result
            if labels is not None and new_labels is not None:
                out_labels = _merge_labels(labels, idx, new_labels)
        return out if labels is None else (out, out_labels)


def _merge_labels(labels: np.ndarray, idx: np.ndarray, new: np.ndarray) -> np.ndarray:
    if new.ndim == labels.ndim:
        merged = labels.copy()
        merged[idx] = new
        return merged
    from augcli.transforms.mixing import one_hot

    merged = one_hot(labels, new.shape[1])  # mixing made the augmented rows soft: make all rows soft
    merged[idx] = new
    return merged


def class_probabilities(model, features: np.ndarray) -> np.ndarray:
    """(N, K) class probabilities: ``predict_proba``, else a softmax of ``decision_function``
    (SVC without probability estimates)."""
    if hasattr(model, "predict_proba"):
        try:
            return model.predict_proba(features)
        except AttributeError:
            pass
    scores = np.asarray(model.decision_function(features), dtype=np.float64)
    scores = scores - scores.max(axis=1, keepdims=True)
    e = np.exp(scores)
    return e / e.sum(axis=1, keepdims=True)


def epoch_metrics(model, images: np.ndarray, labels: np.ndarray, val_images: np.ndarray,
                  val_labels: np.ndarray) -> tuple[float, float, float]:
    """(train accuracy, val accuracy, mean train confidence) of ``model`` on flattened pixels / 255."""
    from augcli.evaluation.models import features

    hard = labels if labels.ndim == 1 else labels.argmax(axis=1)
    proba = class_probabilities(model, features(images))
    classes = np.asarray(getattr(model, "classes_", np.arange(proba.shape[1])))
    train_acc = float(np.mean(classes[proba.argmax(axis=1)] == hard))
    val_acc = float(np.mean(model.predict(features(val_images)) == val_labels)) if len(val_labels) else math.nan
    return train_acc, val_acc, float(proba.max(axis=1).mean())


def adaptive_epochs(augment: AdaptivePipeline, train, val, epochs: int, model: Callable[[], object],
                    exclude: np.ndarray | None = None, measure_real: bool = False,
                    dropped: list | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Epoch e yields a fresh draw ``augment(train, copy=e + 1)``; when the caller asks for the next
    epoch, ``model()`` (the model after training on this one) is measured on that draw - or on the
    real ``train`` images with ``measure_real`` - and on ``val``, and the controller takes its step.
    Fits ``evaluate.models.fit_epochs`` as is::

        model = make_model("mlp", 0)
        fit_epochs(model, adaptive_epochs(augment, train, val, 100, lambda: model), num_classes)

    ``train`` and ``val`` are ``Dataset``s; ``val`` must be disjoint from ``train``. Augmented
    images equal to one of ``exclude`` (e.g. the test images, as ``augcli evaluate`` does) are dropped
    and their count per epoch appended to ``dropped``. With ``metric: gap`` and an empty ``val``
    there is no val accuracy, so p stays where it is.
    """
    ids = list(train.ids)
    control = augment.controller
    for epoch in range(epochs):
        images, labels = augment(train.images, ids=ids, copy=epoch + 1, labels=train.labels)
        if exclude is not None:
            from augcli.evaluation.protocol import duplicates_of

            keep = ~duplicates_of(images, exclude)
            images, labels = images[keep], labels[keep]
            if dropped is not None:
                dropped.append(int((~keep).sum()))
        yield images, labels
        if control.metric == "gap" and not len(val):
            continue
        seen, seen_labels = (train.images, train.labels) if measure_real else (images, labels)
        train_acc, val_acc, confidence = epoch_metrics(model(), seen, seen_labels, val.images, val.labels)
        control.update(confidence if control.metric == "confidence" else train_acc, val_acc)


def holdout(train, fraction: float, seed: int):
    """(fit, val) ``Dataset``s: ``fraction`` of each class of ``train`` held out, hash-ranked by ``seed``."""
    from augcli.datasets.split import split_indices

    parts = split_indices(train.labels, train.ids, seed, val=fraction)
    return train.subset(parts["train"]), train.subset(parts.get("val", np.zeros(0, dtype=np.int64)))
