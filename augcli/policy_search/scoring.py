"""What every search method shares: the folds of the training portion, candidate pipelines, K-fold
cross-validated accuracy, recognition of augmented copies, and the augmented-vs-real discriminator.

Everything here sees one ``Task``: the training portion of one repeat and nothing else (the
repeat's test split never reaches this module). Every candidate is augmented with the same seed
(common random numbers), so differences between candidates are not differences between draws.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np

from augcli.evaluation.online import without_matches, class_probabilities, fresh_draws
from augcli.datasets.base import Dataset, hard_labels
from augcli.engine.augment import augment_dataset
from augcli.evaluation import models as M
from augcli.pipeline import Pipeline
from augcli.rng import Streams, hash_id, hash_ids, sample_keys
from augcli.policy_search.policy import Policy
from augcli.policy_search.space import Space
from augcli.transforms.registry import build

_FOLD_STEP = 0xF01D  # sub-stream that ranks samples into folds (independent of augmentation draws)
_PASS_OFFSET = 7919  # seed offset between CV passes: new folds and new augmentation draws
PASSES = 3           # K-fold passes behind every final choice
FINAL_PASS = 1000    # the final choice's passes start here: partitions and draws no method searched on
FINAL_FOLDS = 5      # folds of the final choice: training on 4/5 of the portion is closer to training on all of it
SWITCH_T = 2.0      # a candidate replaces the incumbent when it wins by more than this many standard errors


@dataclass
class Fold:
    train: Dataset
    val: Dataset


@dataclass
class Candidate:
    """A pipeline to score: ``entries`` (``augment.pipeline``), with its ``policy`` when it has one."""

    name: str
    entries: list
    policy: Policy | None = None


@dataclass
class Task:
    """One repeat's search problem: the training portion and how candidates are trained on it."""

    train: Dataset
    space: Space
    model: str
    state: int                   # scikit-learn random_state
    seed: int                    # augmentation seed of every candidate
    copies: Callable             # Dataset -> copies per source (stages.train_copies)
    keep_originals: bool
    rules: object | None         # augcli.transforms.rules.ClassRules or None
    budget: int
    k: int                       # folds per partition
    input_entries: list
    options: dict = field(default_factory=dict)
    copies_tag: object = None    # names ``copies`` in the score cache when candidates are scored at other copies
    model_options: dict = field(default_factory=dict)  # make_model's epochs/device (the CNN)
    online: bool = False         # train as the CNN is trained: a fresh draw of the images every epoch
    cache: dict = field(default_factory=dict)
    _partitions: dict = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.train.class_names)

    @property
    def folds(self) -> list[Fold]:
        """The first partition into K folds (the one methods search on)."""
        return self.partition(0)

    def partition(self, j: int) -> list[Fold]:
        """Partition ``j`` of the training portion into stratified folds (a different ranking per j):
        K folds for the methods' passes, ``FINAL_FOLDS`` for the final choice's."""
        if j not in self._partitions:
            k = max(self.k, FINAL_FOLDS) if j >= FINAL_PASS else self.k
            self._partitions[j] = make_folds(self.train, self.seed + j * _PASS_OFFSET, k)
        return self._partitions[j]


def make_folds(train: Dataset, seed: int, k: int) -> list[Fold]:
    """K stratified folds: inside each class, samples ranked by a hash of (seed, id), fold = rank mod K."""
    labels = hard_labels(train.labels)
    keys = Streams(sample_keys(seed, hash_ids(list(train.ids)), 0)).child(_FOLD_STEP).bits()
    order = np.lexsort((keys, labels))
    counts = np.bincount(labels, minlength=int(labels.max()) + 1 if labels.size else 0)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.empty(len(train), dtype=np.int64)
    rank[order] = np.arange(len(train)) - np.repeat(starts, counts)
    fold = rank % k
    return [Fold(train.subset(np.flatnonzero(fold != i)), train.subset(np.flatnonzero(fold == i))) for i in range(k)]


def pipeline(task: Task, entries: list, seed: int | None = None) -> Pipeline:
    """A ``Pipeline`` of ``entries`` with the strategy's rules, seeded with the task's seed."""
    transforms = [build(e, ("augment", "pipeline", i)) for i, e in enumerate(entries)]
    return Pipeline(transforms, seed=task.seed if seed is None else seed, rules=task.rules, num_classes=task.num_classes)


def augmented_set(task: Task, data: Dataset, entries: list, seed: int | None = None):
    """Originals plus copies of ``data`` exactly as ``augcli run`` writes them for this pipeline."""
    return augment_dataset(data, pipeline(task, entries, seed), task.copies(data), task.keep_originals)


def new_model(task: Task):
    """The task's model, unfitted."""
    return M.make_model(task.model, task.state, **task.model_options)


def fit_on(task: Task, data: Dataset, entries: list, seed: int | None = None, exclude: np.ndarray | None = None,
           dropped: list | None = None):
    """The task's model trained on ``data`` augmented by ``entries`` (none when empty): on the
    originals plus copies as ``augcli run`` writes them, or on-line (``task.online``) on a fresh
    draw every epoch. Augmented images equal to one of ``exclude`` are left out, their count
    appended to ``dropped``."""
    model = new_model(task)
    if task.online:
        pipe = pipeline(task, entries, seed) if entries else None
        epochs = fresh_draws(data, pipe, task.model_options["epochs"], exclude, dropped)
        return M.fit_epochs(model, epochs, task.num_classes)
    if not entries:
        return M.fit(model, data.images, data.labels)
    aug = augmented_set(task, data, entries, seed)
    images, labels = without_matches(aug.images, aug.labels, exclude, dropped)
    return M.fit(model, images, labels)


def accuracy(model, data: Dataset) -> float:
    return float(np.mean(model.predict(M.features(data.images, model)) == data.labels)) if len(data) else float("nan")


def cv_score(task: Task, entries: list, passes: int = 1, first: int = 0) -> dict:
    """Accuracy of training with ``entries``, over K-fold passes ``first .. first + passes - 1``
    (each with its own fold partition and augmentation draws): {"accuracy": mean, "folds": per fold
    of every pass}. Cached per pass, so asking for more passes later only adds the missing ones."""
    key = json.dumps([entries, task.copies_tag], sort_keys=True)
    folds = []
    for j in range(first, first + passes):
        if (key, j) not in task.cache:
            seed = task.seed + j * _PASS_OFFSET
            task.cache[key, j] = [accuracy(fit_on(task, f.train, entries, seed), f.val) for f in task.partition(j)]
        folds += task.cache[key, j]
    return {"accuracy": float(np.mean(folds)), "folds": folds, "passes": passes}


def recognition(model, images: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """(accuracy, log-loss in nats) of ``model`` on ``images``; probabilities clipped at 1e-6."""
    proba = class_probabilities(model, M.features(images, model))
    classes = np.asarray(getattr(model, "classes_", np.arange(proba.shape[1])))
    pred = classes[proba.argmax(axis=1)]
    column = np.searchsorted(classes, labels)
    found = (column < classes.shape[0]) & (classes[np.minimum(column, classes.shape[0] - 1)] == labels)
    p_true = np.where(found, proba[np.arange(len(labels)), np.minimum(column, classes.shape[0] - 1)], 0.0)
    return float(np.mean(pred == labels)), float(-np.mean(np.log(np.clip(p_true, 1e-6, 1.0))))


def apply_entries(task: Task, data: Dataset, entries: list, copy: int = 1) -> np.ndarray:
    """One augmented draw of every image of ``data`` (copy index ``copy``), labels only for the rules."""
    pipe = pipeline(task, entries)
    out, _, _ = pipe.run(data.images, pipe.keys(list(data.ids), copy), data.labels)
    return out


def apply_pairs(task: Task, data: Dataset, pairs: list, choice: np.ndarray, copy: int) -> np.ndarray:
    """Sample i of ``data`` augmented by op/level ``pairs[choice[i]]`` (always applied); a batched
    call per distinct pair."""
    out = data.images.copy()
    for j in np.unique(choice):
        rows = np.flatnonzero(choice == j)
        op, level = pairs[j]
        out[rows] = apply_entries(task, data.subset(rows), [task.space.entry(op, 1.0, level)], copy)
    return out


def _disc_features(images: np.ndarray) -> np.ndarray:
    # pixels (where things are) plus sorted intensities (how bright, whatever the position)
    x = M.features(images)
    return np.concatenate([x, np.sort(x, axis=1)[:, :: max(1, x.shape[1] // 16)]], axis=1)


def discriminator_auc(real: np.ndarray, fake: np.ndarray, seed: int) -> float:
    """Cross-validated ROC AUC of a logistic regression telling ``fake`` from ``real`` (0.5 = chance).

    ``real[i]`` and ``fake[i]`` come from the same source image; the two halves of the sources
    train and test in turn, so the discriminator is judged on images it never saw.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    n = real.shape[0]
    half = Streams(sample_keys(seed, np.arange(n, dtype=np.uint64), 0)).uniform() < 0.5
    scores = np.zeros(2 * n)
    x = _disc_features(np.concatenate([real, fake]))
    y = np.concatenate([np.zeros(n), np.ones(n)])
    side = np.concatenate([half, half])
    if half.all() or not half.any():
        return 0.5
    for test_side in (True, False):
        clf = LogisticRegression(C=1.0, max_iter=500, random_state=int(seed) % (2**32))
        clf.fit(x[side != test_side], y[side != test_side])
        scores[side == test_side] = clf.decision_function(x[side == test_side])
    return float(roc_auc_score(y, scores))


class Draws:
    """Deterministic random numbers for a search's own choices (counter-based, like every draw here)."""

    def __init__(self, seed: int, name: str):
        self.streams = Streams(sample_keys(seed, np.array([hash_id(name)], dtype=np.uint64), 0))

    def uniform(self, n: int) -> np.ndarray:
        return self.streams.uniform(0.0, 1.0, (n,))[0]

    def choice(self, weights, n: int) -> np.ndarray:
        """``n`` indices drawn with (unnormalised) ``weights``."""
        return self.streams.choice(len(weights), np.asarray(weights, dtype=np.float64), (n,))[0]


def paired_difference(folds: list, base: list) -> tuple[float, float]:
    """(mean, standard error) of the per-fold differences ``folds - base`` (same folds, paired)."""
    diff = np.asarray(folds) - np.asarray(base)
    return float(diff.mean()), float(diff.std(ddof=1) / np.sqrt(diff.size)) if diff.size > 1 else 0.0


def choose(task: Task, candidates: list[Candidate], passes: int = PASSES) -> tuple[int, list[dict]]:
    """The final choice: ``candidates[0]`` is the incumbent (the input strategy, or no augmentation)
    and keeps its place unless the best candidate by mean accuracy over ``passes`` K-fold passes
    beats it by more than ``SWITCH_T`` standard errors of their paired per-fold differences. On a
    small training portion CV differences of a few tenths of a point are noise; without this rule
    the largest of many noisy scores would replace a sound strategy by chance (with t > 1 the
    switches lost test accuracy on digits as often as they gained it). The passes are fresh
    ones (from ``FINAL_PASS``): re-using the folds a method picked its candidates on would favour
    whichever candidate was luckiest there (the winner's curse).
    Returns the chosen index and every candidate's score."""
    scores = [cv_score(task, c.entries, passes, FINAL_PASS) for c in candidates]
    best = int(np.argmax([s["accuracy"] for s in scores]))  # argmax keeps the first of equal scores
    gain, se = paired_difference(scores[best]["folds"], scores[0]["folds"])
    chosen = best if best == 0 or gain > SWITCH_T * se else 0
    table = [{"name": c.name, "cv_accuracy": s["accuracy"], "folds": s["folds"], "vs_incumbent": float(
        np.mean(np.asarray(s["folds"]) - np.asarray(scores[0]["folds"]))), "policy": None if c.policy is None
        else c.policy.to_json()} for c, s in zip(candidates, scores)]
    table[best]["se_vs_incumbent"] = se
    return chosen, table


def at_copies(task: Task, copies: Callable, tag) -> Task:
    """``task`` with candidates trained on ``copies`` copies per image; folds and score cache shared."""
    return replace(task, copies=copies, copies_tag=tag)


@dataclass
class MethodResult:
    """What a method returns: its trials (for the report and plot), the candidates it proposes for
    the final K-fold choice (beside no augmentation and the input strategy) and method details."""

    trials: list
    candidates: list
    extra: dict = field(default_factory=dict)
