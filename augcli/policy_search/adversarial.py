"""adversarial: a distribution over (op, level) pushed towards samples that are hard for the model
being trained, while they stay realistic (in the spirit of Adversarial AutoAugment, Zhang et al.
2019, with the cross-entropy method instead of an RNN controller).

On the first fold:

1. Realism, once per (op, level): a logistic-regression *discriminator* learns to tell augmented
   copies from the real images (cross-validated over source images; ROC AUC must stay below
   ``auc_max``, 0.5 = chance), and a *reference model* trained on the real fold-train images must
   keep the label of augmented held-out copies (accuracy at most ``label_drop`` below the real
   ones). Pairs failing either test get probability 0.
2. Alternate ``budget`` times: the *model update* trains the model on the real images plus copies
   drawn from the current distribution (partial_fit passes for on-line models, a refit otherwise);
   the *policy update* draws pairs, scores each by the model's log-loss on augmented training
   images (its hardness) and moves the distribution towards the hardest quarter (cross-entropy
   method, smoothing 0.3, with a 5 % floor over the realistic pairs to keep exploring).

The trajectory (hardness, entropy, the leading pairs, validation accuracy) is recorded. The final
distribution's ``TOP_K`` ops (by their total probability, each at its most probable level) make
the candidates: one op per sample, picked with the distribution's weights and applied with
probability 0.5 or 1, or picked uniformly and applied with probability 1.
"""

from __future__ import annotations

import numpy as np

from augcli.evaluation import models as M
from augcli.policy_search import scoring as S
from augcli.policy_search.policy import sub_policy_policy

DEFAULT_BUDGET = 30
AUC_MAX = 0.75
LABEL_DROP = 0.05
SAMPLES = 16        # pairs scored per policy update
ELITE = 0.25
SMOOTHING = 0.3
FLOOR = 0.05
COPIES = 3          # augmented copies per image in each model update
PASSES = 3          # partial_fit passes per model update (on-line models)
TOP_K = 5


def realism(task: S.Task, fold: S.Fold, pairs: list) -> dict:
    """Per pair: the discriminator's AUC and the reference model's accuracy on augmented held-out copies."""
    reference = S.fit_on(task, fold.train, [])
    clean = S.accuracy(reference, fold.val)
    both = type(fold.train)(np.concatenate([fold.train.images, fold.val.images]),
                            np.concatenate([fold.train.labels, fold.val.labels]),
                            np.concatenate([fold.train.ids, fold.val.ids]), fold.train.class_names)
    auc, keep = np.zeros(len(pairs)), np.zeros(len(pairs))
    for j, (op, level) in enumerate(pairs):
        entries = [task.space.entry(op, 1.0, level)]
        keep[j] = S.recognition(reference, S.apply_entries(task, fold.val, entries), fold.val.labels)[0]
        auc[j] = S.discriminator_auc(both.images, S.apply_entries(task, both, entries), task.seed + j)
    auc_max = task.options.get("auc_max", AUC_MAX)
    feasible = (auc <= auc_max) & (keep >= clean - task.options.get("label_drop", LABEL_DROP))
    return {"auc": auc, "keep": keep, "clean": clean, "feasible": feasible}


def _entropy(pi: np.ndarray) -> float:
    nz = pi[pi > 0]
    return float(-(nz * np.log(nz)).sum())


class _Learner:
    """The model being trained: partial_fit passes when it has them, a refit otherwise."""

    def __init__(self, task: S.Task):
        self.task = task
        self.online = M.MODELS[task.model].online
        self.model = S.new_model(task)

    def update(self, images: np.ndarray, labels: np.ndarray):
        if self.online:
            M.fit_epochs(self.model, [(images, labels)] * PASSES, self.task.num_classes)
        else:
            self.model = M.fit(S.new_model(self.task), images, labels)
        return self.model


def run(task: S.Task, tick=None) -> S.MethodResult:
    """Alternate ``task.budget`` model and policy updates; propose the final distribution's top pairs."""
    fold = task.folds[0]
    pairs = task.space.pairs()
    real = realism(task, fold, pairs)
    rejected = [{"op": op, "level": level, "auc": float(real["auc"][j]), "accuracy": float(real["keep"][j])}
                for j, (op, level) in enumerate(pairs) if not real["feasible"][j]]
    extra = {"score": "log-loss of the model on augmented training images (hardness)", "pairs": len(pairs),
             "reference_accuracy": real["clean"], "rejected": rejected, "trajectory": []}
    if not real["feasible"].any():
        return S.MethodResult([], [], extra)
    uniform = real["feasible"] / real["feasible"].sum()
    pi = uniform.copy()
    draws = S.Draws(task.seed, "adversarial")
    learner = _Learner(task)
    n = len(fold.train)
    trials = []
    for t in range(task.budget):
        copies = [S.apply_pairs(task, fold.train, pairs, draws.choice(pi, n), copy=t * COPIES + c + 1) for c in range(COPIES)]
        model = learner.update(np.concatenate([fold.train.images, *copies]), np.tile(fold.train.labels, COPIES + 1))
        sampled = np.unique(draws.choice(pi, SAMPLES))
        hardness = np.array([S.recognition(model, S.apply_pairs(task, fold.train, pairs, np.full(n, j), copy=10_000 + t),
                                           fold.train.labels)[1] for j in sampled])
        elite = sampled[np.argsort(-hardness, kind="stable")[: max(1, int(np.ceil(ELITE * len(sampled))))]]
        target = np.zeros_like(pi)
        target[elite] = 1.0 / len(elite)
        pi = (1.0 - FLOOR) * ((1.0 - SMOOTHING) * pi + SMOOTHING * target) + FLOOR * uniform
        lead = np.argsort(-pi, kind="stable")[:3]
        extra["trajectory"].append({"iteration": t, "hardness": float(hardness.mean()), "elite_hardness": float(
            hardness.max()), "entropy": _entropy(pi), "val_accuracy": S.accuracy(model, fold.val),
            "lead": [{"op": pairs[j][0], "level": pairs[j][1], "prob": float(pi[j])} for j in lead]})
        for j, h in zip(sampled, hardness):
            trials.append({"trial": len(trials), "iteration": t, "score": float(h), "label": f"{pairs[j][0]} L{pairs[j][1]}"})
        if tick:
            tick()
    mass: dict = {}
    for j, (op, _level) in enumerate(pairs):
        total, best = mass.get(op, (0.0, j))
        mass[op] = (total + pi[j], j if pi[j] > pi[best] else best)
    top = sorted((m for m in mass.items() if m[1][0] > 0), key=lambda m: -m[1][0])[:TOP_K]
    subs = [((op, 1.0, pairs[best][1]),) for op, (_, best) in top]
    weights = [float(total) for _, (total, _) in top]
    extra["distribution"] = [{"op": op, "level": pairs[best][1], "prob": float(total)} for op, (total, best) in top]
    candidates = []
    for q, w, tag in ((0.5, weights, "weighted"), (1.0, weights, "weighted"), (1.0, None, "uniform")):
        policy = sub_policy_policy(subs, f"adversarial top {len(subs)} {tag} p={q}", weights=w, p=q)
        candidates.append(S.Candidate(policy.label, policy.entries(task.space), policy))
    return S.MethodResult(trials, candidates, extra)
