"""The evaluation protocol: paired train/test runs with and without the strategy's augmentation.

One *task* is (model, train fraction, repeat). Repeat r uses the seed S + r (S = the strategy's
seed) for everything random in it: the stratified split, the augmentation draws (so arm B's copies
are exactly what ``augcli run --seed S+r`` would write for that training split) and the model's
``random_state``. Every arm of a task shares the split and the model seed, so per-repeat
differences between arms are paired. A task is a pure function of its inputs, which is why the
results cannot depend on ``--jobs``.
"""

from __future__ import annotations

import copy as _copy
import warnings
from dataclasses import dataclass
from typing import Callable

import numpy as np

from augcli.adaptive import AdaptiveController, AdaptivePipeline
from augcli.clean.exact import duplicates_of
from augcli.datasets.base import Dataset, hard_labels
from augcli.engine.augment import Augmented, augment_dataset
from augcli.evaluation import models as M
from augcli.pipeline import Pipeline
from augcli.errors import DataError
from augcli.datasets.split import held_out_counts, holdout, split_indices
from augcli.evaluation.online import adaptive_epochs, fresh_draws

OFFLINE_ARMS = ("original", "augmented")
ONLINE_ARMS = ("original", "offline", "online")


@dataclass(frozen=True)
class Settings:
    """What to evaluate. Fractions are shares of each class used for training, in (0, 1)."""

    models: tuple = M.DEFAULT_MODELS
    fractions: tuple = (0.05, 0.1, 0.25)
    repeats: int = 10
    online: bool = False
    epochs: int | None = None  # --online: partial_fit passes per arm (of len(train) samples); cnn: its epochs
    pca: int | None = None     # PCA components before the model (off by default)
    jobs: int = 1
    device: str = "cpu"        # where the cnn trains

    def model_options(self, model: str) -> dict:
        """What ``models.make_model`` passes on to the models that take it (the CNN)."""
        return M.model_options(model, self.epochs, self.device)

    def epochs_for(self, model: str) -> int:
        """``epochs``, or the model's default (``models.default_epochs``)."""
        return self.model_options(model)["epochs"]

    @property
    def arms(self) -> tuple:
        return ONLINE_ARMS if self.online else OFFLINE_ARMS

    @property
    def comparisons(self) -> list[tuple[str, str]]:
        """(treatment, baseline) pairs; the difference is treatment - baseline."""
        if self.online:
            return [("offline", "original"), ("online", "original"), ("online", "offline")]
        return [("augmented", "original")]


@dataclass
class Context:
    """The inputs every task shares: the cleaned dataset and the strategy's augmentation."""

    dataset: Dataset
    pipeline: Pipeline
    copies: Callable[[Dataset], object]  # training split -> copies per source (stages.train_copies)
    keep_originals: bool
    seed: int
    settings: Settings
    near_distance: int | None = None  # pHash leakage radius (bits) when augcli.clean.leakage is there
    label_folds: int | None = None    # drop label errors found on the training side (clean.label_errors)
    adaptive: dict | None = None      # the strategy's adaptive: section when enabled (--online arm only)


def repeat_seed(seed: int, repeat: int) -> int:
    """The seed of repeat ``repeat`` (split, augmentation draws): S + r, kept in [0, 2**63)."""
    return (int(seed) + int(repeat)) % (2**63)


def model_state(seed: int, repeat: int) -> int:
    """The scikit-learn ``random_state`` of repeat ``repeat`` (same for every arm and model)."""
    return repeat_seed(seed, repeat) % (2**32)


def split_for(dataset: Dataset, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) index arrays: ``fraction`` of each class trains, the rest tests.

    Uses the project's hash-ranked stratified split, so training sets of one seed are nested:
    the training set of a smaller fraction is contained in that of a larger one.
    """
    parts = split_indices(dataset.labels, dataset.ids, seed, test=1.0 - float(fraction))
    return parts["train"], parts["test"]


def train_count(n: int, fraction: float) -> int:
    """Samples a class of ``n`` gives to the training side of ``split_for``."""
    return n - held_out_counts(n, 0.0, 1.0 - float(fraction))[1]


def require_samples(dataset: Dataset, fraction: float, per_class: int, total: int, command: str, why: str) -> None:
    """Refuse (DataError) before any work when the training side of ``split_for`` cannot hold
    ``per_class`` samples in at least two classes and ``total`` samples in all: scikit-learn would
    fail deep inside the protocol instead. Says how many images per class would do."""
    sizes = np.bincount(hard_labels(dataset.labels),
                        minlength=len(dataset.class_names))
    trains = np.array([train_count(int(n), fraction) for n in sizes])
    if (trains >= per_class).sum() >= 2 and trains.sum() >= total and trains.sum() < sizes.sum():
        return
    classes = max(int((sizes > 0).sum()), 2)
    goal = max(per_class, -(-total // classes))
    need = next(n for n in range(2, 10**7) if train_count(n, fraction) >= goal)  # n >= 2: one is tested
    have = f"{sizes.min()}-{sizes.max()}" if sizes.min() != sizes.max() else f"{sizes.max()}"
    raise DataError(f"{dataset.source}: too few samples for {command}: --train-fraction {fraction:g} trains on at most "
                    f"{trains.max()} image(s) per class ({trains.sum()} in all; the {len(sizes)} classes hold {have} "
                    f"images), but {why}; that needs at least {need} images in each of {classes} classes: add "
                    f"images or raise --train-fraction")


@dataclass
class TaskData:
    """One (fraction, repeat): the splits and the augmented training set every model of it uses."""

    seed: int
    train: Dataset           # originals, after removing label errors and test duplicates
    test: Dataset            # originals, never augmented
    augmented: Augmented     # the offline training set (originals + copies), minus test duplicates
    pipeline: Pipeline       # the strategy's pipeline with this repeat's seed
    label_errors: int
    leaked: int
    leaked_augmented: int


def _offline_set(ctx: Context, train: Dataset, pipe: Pipeline, test_images: np.ndarray) -> tuple[Augmented, int]:
    """Originals plus copies exactly as ``augcli run`` writes them (copies, keep_originals, balance),
    minus any image equal to a test image."""
    out = augment_dataset(train, pipe, ctx.copies(train), ctx.keep_originals)
    keep = np.flatnonzero(~duplicates_of(out.images, test_images))
    dropped = len(out) - keep.shape[0]
    subset = Augmented(out.images[keep], out.labels[keep], out.ids[keep], out.source_index[keep], out.copy_index[keep],
                       source_labels=out.classes[keep])
    return subset, dropped


def prepare(ctx: Context, fraction: float, repeat: int) -> TaskData:
    """Split, clean the training side and augment it for one (fraction, repeat); model-independent."""
    seed = repeat_seed(ctx.seed, repeat)
    train_idx, test_idx = split_for(ctx.dataset, fraction, seed)
    test = ctx.dataset.subset(test_idx)
    train, label_errors, leaked = _train_split(ctx, ctx.dataset.subset(train_idx), test, seed)
    pipe = _copy.copy(ctx.pipeline)
    pipe.seed = seed
    augmented, dropped = _offline_set(ctx, train, pipe, test.images)
    return TaskData(seed, train, test, augmented, pipe, label_errors, leaked, dropped)


def _cycle(images: np.ndarray, labels: np.ndarray, order: np.ndarray, size: int, epochs: int):
    """Epoch e: the e-th window of ``size`` rows, cycling through the rows in ``order``."""
    images, labels = images[order], labels[order]
    for epoch in range(epochs):
        rows = (epoch * size + np.arange(size)) % max(images.shape[0], 1)
        yield images[rows], labels[rows]


def _adaptive_arm(ctx: Context, data: TaskData, model: str, state: int, k: int, dropped: list) -> tuple[dict, dict]:
    """The online arm under the strategy's ``adaptive:`` section -> (test scores, p trajectory).

    With ``metric: gap``, ``val_fraction`` of each class of the training split is held out
    (hash-ranked with the repeat's seed) to measure val accuracy and is not trained on; ``metric:
    confidence`` needs no held-out part and trains on the whole split."""
    config = ctx.adaptive
    if config["metric"] == "gap":
        fit, val = holdout(data.train, config["val_fraction"], data.seed)
    else:
        fit, val = data.train, data.train.subset(np.zeros(0, dtype=np.int64))
    control = AdaptiveController.from_config(config)
    fitted = M.make_model(model, state, **ctx.settings.model_options(model))
    # ADA's overfitting signal concerns the real training images, not the draws: measure_real
    M.fit_epochs(fitted, adaptive_epochs(AdaptivePipeline(data.pipeline, control), fit, val,
                                         ctx.settings.epochs_for(model),
                                         lambda: fitted, exclude=data.test.images, measure_real=True,
                                         dropped=dropped), k)
    trace = {"n_fit": len(fit), "n_val": len(val), "p_init": float(config["p_init"]),
             **{key: [h[key] for h in control.history] for key in ("p", "measure", "train", "val")}}
    return M.scores(fitted, data.test.images, data.test.labels, k), trace


def near_duplicate_mask(train: Dataset, test: Dataset, max_distance: int) -> np.ndarray:
    """Training samples within ``max_distance`` pHash bits of a test sample (``clean.leakage``)."""
    from augcli.clean.leakage import find_leakage  # function-level: scipy.fft, needed only with leakage on

    mask = np.zeros(len(train), dtype=bool)
    mask[[rec["index"] for rec in find_leakage({"train": train, "test": test}, max_distance)]] = True
    return mask


def label_error_mask(train: Dataset, seed: int, folds: int) -> np.ndarray:
    """Likely mislabelled training samples, judged on the training side only (test labels unseen)."""
    from augcli.clean.label_errors import find_label_errors  # function-level: as above

    return np.isin(np.arange(len(train)), [rec["index"] for rec in find_label_errors(train, seed, folds=folds)])


def _train_split(ctx: Context, train: Dataset, test: Dataset, seed: int) -> tuple[Dataset, int, int]:
    """The training split without likely label errors (if configured) and without any image that
    duplicates a test image (exact pixels, or near by pHash) -> (train, label errors, leaks)."""
    labels = np.zeros(len(train), dtype=bool)
    if ctx.label_folds:
        labels = label_error_mask(train, seed, ctx.label_folds)
    leaks = duplicates_of(train.images, test.images)
    if ctx.near_distance is not None:
        leaks |= near_duplicate_mask(train, test, ctx.near_distance)
    leaks &= ~labels
    return train.subset(np.flatnonzero(~(labels | leaks))), int(labels.sum()), int(leaks.sum())


def run_task(ctx: Context, model: str, fraction: float, repeat: int) -> dict:
    """Train every arm of one (model, fraction, repeat) and score it on the same test split."""
    from threadpoolctl import threadpool_limits

    state = model_state(ctx.seed, repeat)
    k = len(ctx.dataset.class_names)
    # one BLAS thread: the same arithmetic whatever --jobs is, and no oversubscription
    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence warnings would flood stderr once per task
        data = prepare(ctx, fraction, repeat)
        train, test, aug = data.train, data.test, data.augmented
        result = {"model": model, "fraction": float(fraction), "repeat": int(repeat), "seed": data.seed,
                  "n_train": len(train), "n_test": len(test), "n_augmented": len(aug), "leak_removed": data.leaked,
                  "label_errors_removed": data.label_errors, "arms": {}}
        dropped = [data.leaked_augmented]
        options = ctx.settings.model_options(model)
        if ctx.settings.online or M.MODELS[model].torch:
            epochs = options["epochs"]
            # every arm sees len(train) samples per epoch, so they differ in data, not in training budget
            # (generators: only the arms trained here run)
            passes = {
                "original": _cycle(train.images, train.labels, np.arange(len(train)), len(train), epochs),
                "offline": _cycle(aug.images, aug.labels, np.lexsort((aug.source_index, aug.copy_index)),
                                  len(train), epochs),
                "online": fresh_draws(train, data.pipeline, epochs, test.images, dropped),
            }
            passes["augmented"] = passes["offline"]  # the offline form's name for it
            for arm in ctx.settings.arms:
                if arm == "online" and ctx.adaptive:
                    result["arms"][arm], result["adaptive"] = _adaptive_arm(ctx, data, model, state, k, dropped)
                    continue
                fitted = M.fit_epochs(M.make_model(model, state, **options), passes[arm], k)
                result["arms"][arm] = M.scores(fitted, test.images, test.labels, k)
        else:
            pca = _pca_size(ctx.settings.pca, train)
            for arm, (x, y) in (("original", (train.images, train.labels)), ("augmented", (aug.images, aug.labels))):
                fitted = M.fit(M.make_model(model, state, pca, **options), x, y)
                result["arms"][arm] = M.scores(fitted, test.images, test.labels, k)
    result["leak_removed_augmented"] = sum(dropped)
    return result


def _pca_size(pca: int | None, train: Dataset) -> int | None:
    # PCA cannot keep more components than the smaller arm has samples or features
    if not pca:
        return None
    return max(1, min(int(pca), len(train), int(np.prod(train.image_shape))))


def task_list(settings: Settings) -> list[tuple[str, float, int]]:
    """Every (model, fraction, repeat), in the fixed order results are reported in."""
    return [(m, f, r) for m in settings.models for f in settings.fractions for r in range(settings.repeats)]


def run_all(ctx: Context, progress: Callable[[int], None] | None = None) -> list[dict]:
    """Run every task, over ``ctx.settings.jobs`` processes; results come back in ``task_list`` order."""
    tasks = task_list(ctx.settings)
    if ctx.settings.jobs <= 1 or len(tasks) <= 1:
        results = []
        for task in tasks:
            results.append(run_task(ctx, *task))
            if progress:
                progress(1)
        return results
    # function-level: joblib and the worker module cost ~60 ms of import, needed only with --jobs > 1
    from joblib import delayed

    from augcli.engine.workers import joblib_parallel

    results = []
    parallel = joblib_parallel(ctx.settings.jobs)
    for res in parallel(delayed(run_task)(ctx, *task) for task in tasks):
        results.append(res)
        if progress:
            progress(1)
    return results
