"""The search protocol: nested inside ``augcli evaluate``'s repeats.

Repeat r splits the cleaned dataset exactly as ``augcli evaluate --train-fraction F`` does in its
repeat r (seed S + r, hash-ranked and stratified; leaks and label errors removed from the training
side). The search sees only that training portion: its K folds are made inside it. The chosen
policy, no augmentation and the input strategy are then trained on the whole training portion with
the evaluate models and scored on the repeat's test split, which the search never saw. Repeat 0's
policy is the tuned strategy; the other repeats re-run the search on their own training portion,
so the paired test differences estimate what searching and then training gives (nested
validation). A repeat is a pure function of its inputs, which is why ``--jobs`` cannot change it.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from augcli.evaluation.api import Settings as EvalSettings
from augcli.evaluation import models as M
from augcli.evaluation import protocol as P
from augcli.policy_search import scoring as S
from augcli.policy_search.methods import METHODS
from augcli.policy_search.policy import NONE
from augcli.policy_search.space import Space

ARMS = ("original", "input", "tuned")
INPUT_AT_COPIES = "input_copies"  # the input pipeline at the tuned strategy's copies
# Copies per image the tuned strategy may write, as multiples of the input's: more augmented copies
# of a small training set often help as much as a better policy (Fort et al. 2021, "Drawing multiple
# augmentation samples per image"), so the search tunes them too and the report separates the two.
COPY_FACTORS = (1, 2, 4)


@dataclass(frozen=True)
class Settings:
    """What to search. ``budget`` None = the method's default; ``fraction`` is each class's share
    used for training, the rest being the test split."""

    method: str = "grid"
    model: str = "svm"
    budget: int | None = None
    folds: int = 3
    fraction: float = 0.1
    repeats: int = 5
    jobs: int = 1
    copies: int | None = None   # copies per image of the tuned strategy; None = chosen by CV (``COPY_FACTORS``)
    options: dict = field(default_factory=dict)
    epochs: int | None = None   # the CNN's epochs (default models.CNN_EPOCHS)
    device: str = "cpu"         # where the CNN trains

    @property
    def online(self) -> bool:
        """The CNN is judged as it will be trained: on a fresh draw of its images every epoch."""
        return M.MODELS[self.model].torch

    @property
    def model_options(self) -> dict:
        return M.model_options(self.model, self.epochs, self.device)

    @property
    def effective_budget(self) -> int:
        return int(self.budget) if self.budget else METHODS[self.method].default_budget


@dataclass(frozen=True)
class FinalSettings(EvalSettings):
    """``evaluate.report.aggregate`` settings for the arms scored on the test split."""

    copies_arm: bool = False  # also the input pipeline at the tuned strategy's copies

    @property
    def arms(self) -> tuple:
        return ARMS + ((INPUT_AT_COPIES,) if self.copies_arm else ())

    @property
    def comparisons(self) -> list[tuple[str, str]]:
        extra = [("tuned", INPUT_AT_COPIES)] if self.copies_arm else []
        return [("tuned", "original"), ("tuned", "input")] + extra + [("input", "original")]


@dataclass
class Job:
    """Everything every repeat shares."""

    ctx: P.Context             # evaluate's context: dataset, input pipeline, copies, seed, cleaning
    settings: Settings
    space: Space
    input_entries: list
    input_copies: int          # the input strategy's augment.copies
    copies_for: Callable       # n -> (training split -> copies per source), with the input's balance
    copies_arm: bool = False   # score the input pipeline at the tuned copies too

    @property
    def base_copies(self) -> int:
        """Copies per image candidates are compared at: the input's, at least 1."""
        return max(1, self.input_copies)

    def ladder(self) -> list[int]:
        """The copies per image the search may choose: fixed by ``--copies``, else ``COPY_FACTORS``
        (on-line training draws afresh every epoch: copies do not change it, so the input's stay)."""
        if self.settings.copies is not None:
            return [int(self.settings.copies)]
        if self.settings.online:
            return [self.input_copies]
        return [self.base_copies * f for f in COPY_FACTORS]


def _task(job: Job, train, seed: int, state: int) -> S.Task:
    s = job.settings
    return S.Task(train=train, space=job.space, model=s.model, state=state, seed=seed,
                  copies=job.copies_for(job.base_copies), copies_tag=job.base_copies,
                  keep_originals=job.ctx.keep_originals, rules=job.ctx.pipeline.rules, budget=s.effective_budget,
                  k=s.folds, input_entries=job.input_entries, options=dict(s.options), model_options=s.model_options,
                  online=s.online)


def search_train(job: Job, train, seed: int, state: int, tick=None) -> tuple[S.Candidate, int, dict]:
    """Run the method on a training portion, pick the final policy by K-fold CV among its
    candidates, no augmentation and the input pipeline (the incumbent: see ``scoring.choose``),
    then its copies per image -> (policy, copies, trace)."""
    task = _task(job, train, seed, state)
    result = METHODS[job.settings.method].run(task, tick)
    pool = [S.Candidate("none", [], NONE)]
    if job.input_entries:
        pool.insert(0, S.Candidate("input", job.input_entries))
    pool += result.candidates
    best, scored = S.choose(task, pool)
    copies, ladder = choose_copies(job, task, pool[best])
    return pool[best], copies, {"trials": result.trials, "candidates": scored, "chosen": pool[best].name,
                                "copies": ladder, "extra": result.extra}


def choose_copies(job: Job, task: S.Task, chosen: S.Candidate) -> tuple[int, list[dict]]:
    """The chosen policy's copies per image: up the ladder unless a step scores worse than the copies
    kept so far by more than one standard error of the paired per-fold differences. More draws of
    a policy that CV has just chosen rarely hurt and often help a small training set, so the burden
    of proof is on stopping; a policy whose extra copies do hurt stays at fewer."""
    ladder = job.ladder()
    if not chosen.entries or len(ladder) == 1:
        return ladder[0], []
    kept, trace = 0, []
    for i, n in enumerate(ladder):
        trace.append({"copies": n, **S.cv_score(S.at_copies(task, job.copies_for(n), n), chosen.entries, S.PASSES,
                                                S.FINAL_PASS)})
        if i:
            change, se = S.paired_difference(trace[i]["folds"], trace[kept]["folds"])
            kept = kept if change < -se else i
    return ladder[kept], trace


def _arm(job: Job, data: P.TaskData, entries: list, copies: int, state: int, k: int) -> tuple[dict, int]:
    """Test scores of the model trained on the training portion augmented by ``entries`` with
    ``copies`` per image; augmented images equal to a test image are dropped, as in evaluate."""
    task = S.at_copies(_task(job, data.train, data.seed, state), job.copies_for(copies), copies)
    dropped = []
    fitted = S.fit_on(task, data.train, entries, exclude=data.test.images, dropped=dropped)
    return M.scores(fitted, data.test.images, data.test.labels, k), sum(dropped)


def _input_at(job: Job, data: P.TaskData, copies: int, state: int, k: int, arms: dict) -> tuple[dict, int]:
    """The input pipeline at ``copies`` per image -> (test scores, augmented images dropped as test duplicates)."""
    if copies == job.input_copies:  # the input arm itself: its dropped images are counted already
        return arms["input"], 0
    return _arm(job, data, job.input_entries, copies, state, k)


def _tuned_scores(job: Job, data: P.TaskData, chosen: S.Candidate, copies: int, state: int, k: int,
                  arms: dict) -> tuple[dict, int]:
    if chosen.name == "none":
        return arms["original"], 0
    if chosen.name == "input":
        return _input_at(job, data, copies, state, k, arms)
    return _arm(job, data, chosen.entries, copies, state, k)


def run_repeat(job: Job, repeat: int, tick=None) -> dict:
    """Search on repeat ``repeat``'s training portion, then score the arms on its test split."""
    from threadpoolctl import threadpool_limits

    s = job.settings
    started = time.perf_counter()
    k = len(job.ctx.dataset.class_names)
    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence warnings of small fits would flood stderr
        data = P.prepare(job.ctx, s.fraction, repeat)
        state = P.model_state(job.ctx.seed, repeat)
        chosen, copies, found = search_train(job, data.train, data.seed, state, tick)
        searched = time.perf_counter() - started
        task = _task(job, data.train, data.seed, state)
        arms = {"original": M.scores(S.fit_on(task, data.train, []), data.test.images, data.test.labels, k)}
        if s.online:  # the input pipeline drawn afresh every epoch, as the tuned one is
            arms["input"], input_leaks = _arm(job, data, job.input_entries, job.input_copies, state, k)
        else:
            fitted, input_leaks = M.fit(S.new_model(task), data.augmented.images, data.augmented.labels), 0
            arms["input"] = M.scores(fitted, data.test.images, data.test.labels, k)
        arms["tuned"], tuned_leaks = _tuned_scores(job, data, chosen, copies, state, k, arms)
        if job.copies_arm:
            same = chosen.name == "input"  # the tuned arm is the input pipeline at the tuned copies
            arms[INPUT_AT_COPIES] = arms["tuned"] if same else _input_at(job, data, copies, state, k, arms)[0]
    return {"model": s.model, "fraction": float(s.fraction), "repeat": int(repeat), "seed": data.seed,
            "n_train": len(data.train), "n_test": len(data.test), "n_augmented": len(data.augmented),
            "leak_removed": data.leaked, "leak_removed_augmented": data.leaked_augmented + input_leaks + tuned_leaks,
            "label_errors_removed": data.label_errors, "arms": arms, "search": found,
            "chosen": {"name": chosen.name, "entries": chosen.entries, "copies": copies,
                       "policy": None if chosen.policy is None else chosen.policy.to_json()},
            "seconds": {"search": searched, "total": time.perf_counter() - started}}


def run_repeats(job: Job, progress: Callable[[int], None] | None = None) -> list[dict]:
    """Every repeat, over ``settings.jobs`` processes; results in repeat order."""
    repeats = range(job.settings.repeats)
    if job.settings.jobs <= 1 or job.settings.repeats <= 1:
        out = []
        for r in repeats:
            out.append(run_repeat(job, r))
            if progress:
                progress(1)
        return out
    # function-level: joblib and the worker module cost ~60 ms of import, needed only with --jobs > 1
    from joblib import delayed

    from augcli.engine.workers import joblib_parallel

    out = []
    for res in joblib_parallel(job.settings.jobs)(delayed(run_repeat)(job, r) for r in repeats):
        out.append(res)
        if progress:
            progress(1)
    return out


def summary_scores(results: list[dict]) -> dict:
    """Mean K-fold CV accuracy of the chosen candidate over repeats (for the tuned strategy's comment)."""
    cv = [next(c["cv_accuracy"] for c in r["search"]["candidates"] if c["name"] == r["chosen"]["name"]) for r in results]
    return {"cv_accuracy_repeat0": cv[0], "cv_accuracy_mean": float(np.mean(cv))}
