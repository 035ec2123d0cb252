"""On-line training with adaptive strength: the epoch loop ``augcli evaluate --online`` and the
adaptive search run, and the measures the controller steps on.

``adaptive_epochs`` yields one fresh augmented draw per epoch and, between epochs, measures the model
and moves ``AdaptiveController``'s p (augcli/adaptive.py holds the controller and the pipeline).
"""

from __future__ import annotations

import math
from typing import Callable, Iterator

import numpy as np

from augcli.datasets.base import hard_labels
from augcli.adaptive import AdaptivePipeline
from augcli.clean.exact import duplicates_of
from augcli.evaluation.models import features
from augcli.rng import id_list


def without_matches(images: np.ndarray, labels: np.ndarray, exclude: np.ndarray | None, dropped: list | None):
    """(images, labels) minus the images equal to one of ``exclude``; their count appended to ``dropped``."""
    if exclude is None:
        return images, labels
    keep = ~duplicates_of(images, exclude)
    if dropped is not None:
        dropped.append(int((~keep).sum()))
    return images[keep], labels[keep]


def fresh_draws(train, pipe, epochs: int, exclude: np.ndarray | None = None,
                dropped: list | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Epoch e: a fresh draw of the whole training split, ``pipe(images, ids, copy=e + 1)`` - the
    draws ``augcli.torch.BatchAugmenter`` gives epoch e - or the real images every epoch when
    ``pipe`` is None. Draws equal to one of ``exclude`` are dropped, their count appended to ``dropped``."""
    for epoch in range(epochs):
        if pipe is None:
            yield train.images, train.labels
            continue
        images, labels = pipe(train.images, ids=id_list(train.ids), copy=epoch + 1, labels=train.labels)
        yield without_matches(images, labels, exclude, dropped)


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
    """(train accuracy, val accuracy, mean train confidence) of ``model`` on pixels / 255."""
    hard = hard_labels(labels)
    proba = class_probabilities(model, features(images, model))
    classes = np.asarray(getattr(model, "classes_", np.arange(proba.shape[1])))
    train_acc = float(np.mean(classes[proba.argmax(axis=1)] == hard))
    val_acc = float(np.mean(model.predict(features(val_images, model)) == val_labels)) if len(val_labels) else math.nan
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
    ids = id_list(train.ids)
    control = augment.controller
    for epoch in range(epochs):
        images, labels = augment(train.images, ids=ids, copy=epoch + 1, labels=train.labels)
        images, labels = without_matches(images, labels, exclude, dropped)
        yield images, labels
        if control.metric == "gap" and not len(val):
            continue
        seen, seen_labels = (train.images, train.labels) if measure_real else (images, labels)
        train_acc, val_acc, confidence = epoch_metrics(model(), seen, seen_labels, val.images, val.labels)
        control.update(confidence if control.metric == "confidence" else train_acc, val_acc)
