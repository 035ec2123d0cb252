"""grid: RandAugment's (N, M) grid (Cubuk et al. 2020), every point scored by K-fold CV accuracy.

Each point is N layers that each apply one op of the op set, picked uniformly per sample, at the
shared level M (clamped to the op's largest allowed level). Three op sets are scanned: the smooth
geometric warps (translate, rotate, shear, scale, affine, elastic), those plus the whole-pixel
shift (it helps nearest neighbours and costs linear models on small images, so it gets its own
axis), and the smooth warps plus the photometric ops without invert (RandAugment's own set leaves
Invert out). With a budget below the full grid, points are taken evenly along the grid's order.

Scoring is successive halving over K-fold passes (Jamieson & Talwalkar 2016): every point gets
one K-fold pass, the best third two more passes (new fold partitions and augmentation draws), and
the best ``PROPOSE`` of those by their mean over the three passes go to the final choice. One pass
on a small training portion is noisy (about 1 pp between partitions); averaging passes where it
matters keeps the budget near one pass per point.
"""

from __future__ import annotations

import numpy as np

from augcli.policy_search import scoring as S
from augcli.policy_search.policy import randaugment_policy

N_VALUES = (1, 2)
M_VALUES = (2, 4, 7)
OPSETS = (("warps", ("geometric",), ("shift",)), ("warps+shift", ("geometric",), ()),
          ("warps+photometric", ("geometric", "photometric"), ("shift", "invert")))
DEFAULT_BUDGET = len(N_VALUES) * len(M_VALUES) * len(OPSETS)
KEEP = 1 / 3
PROPOSE = 3


def grid_points(space, budget: int) -> list[tuple[str, list[str], int, int]]:
    """(op set name, ops, N, M) in grid order, thinned evenly to ``budget`` points."""
    points = []
    for name, families, without in OPSETS:
        ops = [op for op in space.family(*families) if op not in without]
        if ops:
            points += [(name, ops, n, m) for n in N_VALUES for m in M_VALUES]
    if budget < len(points):
        keep = np.unique(np.linspace(0, len(points) - 1, max(1, budget)).round().astype(int))
        points = [points[i] for i in keep]
    return points


def run(task: S.Task, tick=None) -> S.MethodResult:
    """Score the grid by successive halving; the best points go to the final choice."""
    trials, candidates = [], []
    for i, (opset, ops, n, m) in enumerate(grid_points(task.space, task.budget)):
        policy = randaugment_policy(task.space, ops, n, m)
        policy = type(policy)(policy.layers, f"{policy.label} ops={opset}")
        candidates.append(S.Candidate(policy.label, policy.entries(task.space), policy))
        score = S.cv_score(task, candidates[-1].entries, 1)
        trials.append({"trial": i, "score": score["accuracy"], "label": policy.label, "n": n, "m": m, "ops": opset,
                       "passes": 1})
        if tick:
            tick()
    order = np.argsort([-t["score"] for t in trials], kind="stable")
    kept = order[: max(1, int(np.ceil(KEEP * len(order))))]
    for i in kept:
        trials[i]["score"] = S.cv_score(task, candidates[i].entries, S.PASSES)["accuracy"]
        trials[i]["passes"] = S.PASSES
    best = sorted(kept, key=lambda i: (-trials[i]["score"], i))[:PROPOSE]
    return S.MethodResult(trials, [candidates[i] for i in best],
                          {"score": f"K-fold CV accuracy (1 pass; {S.PASSES} passes for the best third)"})
