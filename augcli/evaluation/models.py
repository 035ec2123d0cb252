"""Classifiers for ``augcli evaluate``: small scikit-learn models by name, fed flattened pixels.

Features are the pixels of every channel, flattened and divided by 255, so they lie in [0, 1]. This
fixed min-max scaling (by the pixel range, not fitted) is identical for every arm, so the arms differ
only in their training images. Every model runs single-threaded (``n_jobs=1``) so that parallelism
comes only from ``--jobs`` and results cannot depend on it.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np


@dataclass(frozen=True)
class ModelSpec:
    """One named model: how to build it and what it supports."""

    summary: str
    build: Callable[[int], object]  # random_state -> unfitted estimator
    online: bool = False            # has partial_fit (usable with --online)


def _logreg(random_state: int):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=1.0, max_iter=1000, random_state=random_state)


def _svm(random_state: int):
    from sklearn.svm import SVC

    return SVC(kernel="rbf", C=10.0, gamma="scale", random_state=random_state)


def _mlp(random_state: int):
    from sklearn.neural_network import MLPClassifier

    return MLPClassifier(hidden_layer_sizes=(128,), alpha=1e-3, batch_size=64, learning_rate_init=1e-3,
                         max_iter=200, random_state=random_state)


def _knn(random_state: int):
    from sklearn.neighbors import KNeighborsClassifier

    return KNeighborsClassifier(n_neighbors=3, n_jobs=1)


def _forest(random_state: int):
    from sklearn.ensemble import RandomForestClassifier

    return RandomForestClassifier(n_estimators=200, n_jobs=1, random_state=random_state)


MODELS: dict[str, ModelSpec] = {
    "logreg": ModelSpec("LogisticRegression(C=1, lbfgs, max_iter=1000)", _logreg),
    "svm": ModelSpec("SVC(kernel='rbf', C=10, gamma='scale')", _svm),
    "mlp": ModelSpec("MLPClassifier(hidden=(128,), relu, adam lr=1e-3, alpha=1e-3, batch 64, max_iter=200)", _mlp,
                     online=True),
    "knn": ModelSpec("KNeighborsClassifier(n_neighbors=3)", _knn),
    "random_forest": ModelSpec("RandomForestClassifier(n_estimators=200)", _forest),
}

DEFAULT_MODELS = ("logreg", "svm", "mlp", "knn")
DEFAULT_ONLINE_MODELS = ("mlp",)


def describe(name: str, pca: int | None) -> str:
    """One line for reports: the preprocessing and the estimator with its defaults."""
    steps = ["pixels/255"] + ([f"PCA({pca})"] if pca else []) + [MODELS[name].summary]
    return " -> ".join(steps)


def features(images: np.ndarray) -> np.ndarray:
    """uint8 (N, H, W, C) -> float32 (N, H*W*C) in [0, 1]."""
    return images.reshape(images.shape[0], -1).astype(np.float32) * np.float32(1.0 / 255.0)


def make_model(name: str, random_state: int, pca: int | None = None):
    """An unfitted estimator (a scikit-learn Pipeline when ``pca`` components are asked for)."""
    estimator = MODELS[name].build(int(random_state))
    if not pca:
        return estimator
    from sklearn.decomposition import PCA
    from sklearn.pipeline import Pipeline

    return Pipeline([("pca", PCA(n_components=int(pca), random_state=int(random_state))), ("model", estimator)])


def _final(model):
    return model.steps[-1][1] if hasattr(model, "steps") else model


def accepts_weights(model) -> bool:
    """True when the (final) estimator's ``fit`` takes ``sample_weight``."""
    return "sample_weight" in inspect.signature(_final(model).fit).parameters


def targets(labels: np.ndarray, use_weights: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(rows, classes, weights) to train on, from hard (N,) or soft (N, K) labels.

    Soft labels (mixup, cutmix) become one weighted row per class with non-zero mass when the model
    takes sample weights - the weighted loss then equals the soft-label loss - and the argmax class
    otherwise. Hard labels pass through with no weights.
    """
    if labels.ndim == 1:
        return np.arange(labels.shape[0]), labels.astype(np.int64), None
    if not use_weights:
        return np.arange(labels.shape[0]), labels.argmax(axis=1).astype(np.int64), None
    rows, classes = np.nonzero(labels > 0)
    return rows, classes.astype(np.int64), labels[rows, classes].astype(np.float64)


def _fit_kwargs(model, weights):
    if weights is None:
        return {}
    if hasattr(model, "steps"):
        return {f"{model.steps[-1][0]}__sample_weight": weights}
    return {"sample_weight": weights}


def fit(model, images: np.ndarray, labels: np.ndarray):
    """Fit ``model`` on uint8 images with hard or soft labels; returns the model."""
    rows, y, w = targets(labels, accepts_weights(model))
    return model.fit(features(images)[rows], y, **_fit_kwargs(model, w))


def fit_epochs(model, epochs: Iterable[tuple[np.ndarray, np.ndarray]], num_classes: int):
    """One ``partial_fit`` pass per (images, labels) epoch, in order; returns the model."""
    classes = np.arange(num_classes)
    use_weights = "sample_weight" in inspect.signature(model.partial_fit).parameters
    for images, labels in epochs:
        rows, y, w = targets(labels, use_weights)
        kwargs = {"sample_weight": w} if w is not None else {}
        model.partial_fit(features(images)[rows], y, classes=classes, **kwargs)
    return model


def scores(model, images: np.ndarray, labels: np.ndarray, num_classes: int) -> dict:
    """Test accuracy and macro-F1 (fractions in [0, 1]) and per-class accuracy (recall; NaN if absent)."""
    from sklearn.metrics import f1_score

    pred = model.predict(features(images))
    correct = pred == labels
    support = np.bincount(labels, minlength=num_classes)
    hits = np.bincount(labels[correct], minlength=num_classes)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_class = np.where(support > 0, hits / np.maximum(support, 1), np.nan)
    f1 = f1_score(labels, pred, labels=np.arange(num_classes)[support > 0], average="macro", zero_division=0)
    return {"accuracy": float(correct.mean()), "macro_f1": float(f1), "per_class": per_class.tolist()}
