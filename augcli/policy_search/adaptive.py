"""adaptive: StyleGAN2-ADA's strength control (Karras et al. 2020), for classifiers.

On each fold the model trains for ``budget`` epochs, each on a fresh draw of the fold-train images
augmented ADA-style: every smooth geometric op of the space (translate, rotate, shear, scale,
affine, elastic; not the whole-pixel shift) fires independently with the shared probability p, at
a shared level. After each epoch the controller
(``augcli.adaptive.AdaptiveController``) compares train accuracy (on that epoch's draw) with
validation accuracy (the fold's held-out images) and moves p by the bounded sign step: up while the
gap exceeds the target (the model overfits), down otherwise; the level moves with it (by a quarter
level per epoch) unless the ``magnitude`` option is off. On-line models (partial_fit) continue
training across epochs; the others are refitted each epoch on the real images plus that epoch's draw.

The p (and level) trajectory of every fold is recorded; the strength settled at the end (mean over
the last quarter of epochs, averaged over folds) gives the candidate policy.
"""

from __future__ import annotations

import numpy as np

from augcli.adaptive import AdaptiveController, AdaptivePipeline
from augcli.evaluation.online import adaptive_epochs
from augcli.evaluation import models as M
from augcli.policy_search import scoring as S
from augcli.policy_search.policy import ada_policy

DEFAULT_BUDGET = 60   # epochs per fold
TARGET = 0.05         # train - val accuracy gap
STEP = 0.05           # p can go from 0 to 1 in 20 epochs
LEVEL_INIT = 3.0
LEVEL_STEP = 0.25


def controller(task: S.Task) -> AdaptiveController:
    """The controller of one fold, from the method options (target, step, magnitude)."""
    magnitude = task.options.get("magnitude", True)
    return AdaptiveController(target=task.options.get("target", TARGET), step=task.options.get("step", STEP),
                              p_init=0.0, p_max=1.0, metric="gap", level_init=LEVEL_INIT,
                              level_step=LEVEL_STEP if magnitude else 0.0, level_min=1.0, level_max=10.0)


def _train_fold(task: S.Task, fold: S.Fold, ops: list[str]) -> list[dict]:
    control = controller(task)

    def factory(p: float, level: float):
        return S.pipeline(task, ada_policy(task.space, ops, p, int(round(level))).entries(task.space))

    augment = AdaptivePipeline(factory, control)
    if M.MODELS[task.model].online:
        model = S.new_model(task)
        M.fit_epochs(model, adaptive_epochs(augment, fold.train, fold.val, task.budget, lambda: model), task.num_classes)
    else:
        current = {}
        for images, labels in adaptive_epochs(augment, fold.train, fold.val, task.budget, lambda: current["model"]):
            both = np.concatenate([fold.train.images, images]), np.concatenate([fold.train.labels, labels])
            current["model"] = M.fit(S.new_model(task), *both)
    return control.history


def run(task: S.Task, tick=None) -> S.MethodResult:
    """Run the controller on every fold; propose the settled strength's policy."""
    ops = [op for op in task.space.family("geometric") if op != "shift"]
    if not ops:
        return S.MethodResult([], [], {"score": "p per epoch", "trajectory": []})
    trajectories, settled = [], []
    for fold in task.folds:
        history = _train_fold(task, fold, ops)
        trajectories.append(history)
        tail = history[-max(1, len(history) // 4):]
        settled.append((np.mean([h["p"] for h in tail]), np.mean([h["level"] for h in tail])))
        if tick:
            tick()
    p = float(np.round(np.mean([s[0] for s in settled]), 3))
    level = int(round(float(np.mean([s[1] for s in settled]))))
    trials = [{"trial": i, "fold": k, "epoch": i, "score": h["p"], "level": h["level"], "gap": h["measure"],
               "label": f"fold {k} epoch {i}"} for k, history in enumerate(trajectories) for i, h in enumerate(history)]
    policy = ada_policy(task.space, ops, p, level)
    extra = {"score": "strength p after each epoch", "p": p, "level": level, "target": task.options.get("target", TARGET),
             "step": task.options.get("step", STEP), "trajectory": trajectories}
    candidates = [S.Candidate(policy.label, policy.entries(task.space), policy)] if p > 0 else []
    return S.MethodResult(trials, candidates, extra)
