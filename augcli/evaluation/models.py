"""Classifiers for ``augcli evaluate`` and ``search`` by name: small scikit-learn models fed
flattened pixels, and a small CNN (``cnn``, torch) fed the images.

Features are the pixels of every channel divided by 255, so they lie in [0, 1]: flattened for the
scikit-learn models, (N, H, W, C) for the CNN. This fixed scaling (by the pixel range, not fitted)
is identical for every arm, so the arms differ only in their training images. Every model runs
single-threaded (``n_jobs=1``, one torch thread) so that parallelism comes only from ``--jobs`` and
results cannot depend on it.
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
    build: Callable[..., object]  # (random_state, epochs=, device=) -> unfitted estimator
    online: bool = False          # has partial_fit (usable with --online)
    torch: bool = False           # needs the extra augcli[torch]


def _logreg(random_state: int, **_):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=1.0, max_iter=1000, random_state=random_state)


def _svm(random_state: int, **_):
    from sklearn.svm import SVC

    return SVC(kernel="rbf", C=10.0, gamma="scale", random_state=random_state)


def _mlp(random_state: int, **_):
    from sklearn.neural_network import MLPClassifier

    return MLPClassifier(hidden_layer_sizes=(128,), alpha=1e-3, batch_size=64, learning_rate_init=1e-3,
                         max_iter=200, random_state=random_state)


def _knn(random_state: int, **_):
    from sklearn.neighbors import KNeighborsClassifier

    return KNeighborsClassifier(n_neighbors=3, n_jobs=1)


def _forest(random_state: int, **_):
    from sklearn.ensemble import RandomForestClassifier

    return RandomForestClassifier(n_estimators=200, n_jobs=1, random_state=random_state)


CNN_EPOCHS = 150      # digits at 10 %: no augmentation 94.0 % at 60 epochs, 94.8 % at 150 (6 repeats)
ONLINE_EPOCHS = 100   # partial_fit passes of the other on-line model (mlp)


def _cnn(random_state: int, epochs: int = CNN_EPOCHS, device: str = "cpu", **_):
    from augcli.evaluation.cnn import CNNClassifier  # function-level: torch loads only for this model

    return CNNClassifier(random_state=random_state, epochs=epochs, device=device)


def check_available(names, device: str = "cpu") -> None:
    """Refuse (UsageError, exit 2) before any work a model whose library is missing, or a device torch lacks."""
    if not any(MODELS[n].torch for n in names):
        return
    from augcli.errors import UsageError

    try:
        import torch
    except ImportError as exc:
        raise UsageError(f"--model cnn needs PyTorch ({exc}); install the extra: pip install 'augcli[torch]' "
                         "(see the README for the CPU build)") from None
    try:
        torch.empty(1, device=device)
    except (RuntimeError, AssertionError) as exc:
        raise UsageError(f"--device {device}: {str(exc).splitlines()[0]}") from None


MODELS: dict[str, ModelSpec] = {
    "logreg": ModelSpec("LogisticRegression(C=1, lbfgs, max_iter=1000)", _logreg),
    "svm": ModelSpec("SVC(kernel='rbf', C=10, gamma='scale')", _svm),
    "mlp": ModelSpec("MLPClassifier(hidden=(128,), relu, adam lr=1e-3, alpha=1e-3, batch 64, max_iter=200)", _mlp,
                     online=True),
    "knn": ModelSpec("KNeighborsClassifier(n_neighbors=3)", _knn),
    "random_forest": ModelSpec("RandomForestClassifier(n_estimators=200)", _forest),
    "cnn": ModelSpec("CNN(LeNet-style up to 32x32, else 3 residual stages; Adam lr=1e-3, batch 32, --epochs)", _cnn,
                     online=True, torch=True),
}

DEFAULT_MODELS = ("logreg", "svm", "mlp", "knn")


def default_epochs(name: str) -> int:
    return CNN_EPOCHS if MODELS[name].torch else ONLINE_EPOCHS


def model_options(name: str, epochs: int | None, device: str) -> dict:
    """``make_model``'s options for ``name``: ``epochs`` (or the model's default) and ``device``."""
    return {"epochs": int(epochs) if epochs else default_epochs(name), "device": device}
DEFAULT_ONLINE_MODELS = ("mlp",)


def describe(name: str, pca: int | None) -> str:
    """One line for reports: the preprocessing and the estimator with its defaults."""
    steps = ["pixels/255"] + ([f"PCA({pca})"] if pca else []) + [MODELS[name].summary]
    return " -> ".join(steps)


def features(images: np.ndarray, model=None) -> np.ndarray:
    """uint8 (N, H, W, C) -> float32 in [0, 1]: (N, H*W*C), or (N, H, W, C) for a model that takes images."""
    x = images.astype(np.float32) * np.float32(1.0 / 255.0)
    return x if getattr(_final(model), "takes_images", False) else x.reshape(images.shape[0], -1)


def make_model(name: str, random_state: int, pca: int | None = None, **options):
    """An unfitted estimator (a scikit-learn Pipeline when ``pca`` components are asked for).
    ``options`` (``epochs``, ``device``) reach the models that have them (the CNN)."""
    estimator = MODELS[name].build(int(random_state), **options)
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
    if getattr(model, "soft_labels", False):
        return model.fit(features(images, model), labels)
    rows, y, w = targets(labels, accepts_weights(model))
    return model.fit(features(images)[rows], y, **_fit_kwargs(model, w))


def fit_epochs(model, epochs: Iterable[tuple[np.ndarray, np.ndarray]], num_classes: int):
    """One ``partial_fit`` pass per (images, labels) epoch, in order; returns the model."""
    classes = np.arange(num_classes)
    use_weights = "sample_weight" in inspect.signature(model.partial_fit).parameters
    for images, labels in epochs:
        if getattr(model, "soft_labels", False):
            model.partial_fit(features(images, model), labels, classes=classes)
            continue
        rows, y, w = targets(labels, use_weights)
        kwargs = {"sample_weight": w} if w is not None else {}
        model.partial_fit(features(images)[rows], y, classes=classes, **kwargs)
    return model


def scores(model, images: np.ndarray, labels: np.ndarray, num_classes: int) -> dict:
    """Test accuracy and macro-F1 (fractions in [0, 1]) and per-class accuracy (recall; NaN if absent)."""
    from sklearn.metrics import f1_score

    pred = model.predict(features(images, model))
    correct = pred == labels
    support = np.bincount(labels, minlength=num_classes)
    hits = np.bincount(labels[correct], minlength=num_classes)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_class = np.where(support > 0, hits / np.maximum(support, 1), np.nan)
    f1 = f1_score(labels, pred, labels=np.arange(num_classes)[support > 0], average="macro", zero_division=0)
    return {"accuracy": float(correct.mean()), "macro_f1": float(f1), "per_class": per_class.tolist()}
