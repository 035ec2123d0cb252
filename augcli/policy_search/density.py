"""density: Fast AutoAugment's density matching (Lim et al. 2019) with a sequential model-based search.

On each fold a model trained on the real fold-train images (no augmentation) is the density
estimate. A candidate sub-policy - two steps (op, probability, level) - is applied to real images
and judged by that model, with accuracy and log-loss:

- label/realism test (FAA's criterion): the model must still recognise augmented copies of the
  real held-out images - their accuracy may fall at most ``tolerance`` below that of the real
  held-out images;
- density match: augmented copies of the training images should look new to the model - their
  accuracy and log-loss should move from the training level (memorised) towards the held-out level
  (unseen). FAA's criterion alone is maximised by doing nothing (an unchanged image is recognised
  best); the match target gives the search a point between "memorised" and "unrecognisable":
  target = heldout + lam * (train - heldout), for accuracy and log-loss alike.

score(lam) = -(|acc_aug_train - target_acc| + 0.25 * |loss_aug_train - target_loss|)
             - 2 * max(0, acc_heldout - acc_aug_heldout - tolerance), averaged over the folds.

The search is random for its first third, then a tree-structured Parzen estimator (TPE) over the
six discrete dimensions, guided by score(0.5). Every evaluated sub-policy is then ranked under
lam = 0.25, 0.5 and 0.75, and the top 5 of each ranking become a candidate policy that picks one
of its sub-policies per sample (AutoAugment's form); the final K-fold choice settles the strength.
"""

from __future__ import annotations

import numpy as np

from augcli.policy_search import scoring as S
from augcli.policy_search.policy import sub_policy_policy
from augcli.policy_search.space import MAX_LEVEL

DEFAULT_BUDGET = 160
TOLERANCE = 0.05
LOSS_WEIGHT = 0.25
TOP = 5
LAMBDAS = (0.25, 0.5, 0.75)
GUIDE = 0.5
_GOOD = 0.25      # TPE: share of trials that model the good region
_PROPOSALS = 32   # TPE: draws from the good density per step
_ORDINAL = (1, 2, 4, 5)  # probability and level dimensions are smoothed across neighbours


def _fold_models(task: S.Task) -> list[dict]:
    out = []
    for fold in task.folds:
        model = S.fit_on(task, fold.train, [])
        acc, loss = S.recognition(model, fold.val.images, fold.val.labels)
        train_acc, train_loss = S.recognition(model, fold.train.images, fold.train.labels)
        out.append({"model": model, "acc": acc, "loss": loss, "train_acc": train_acc, "train_loss": train_loss})
    return out


def decode(task: S.Task, x) -> tuple:
    """Dimension indices (op1, p1, level1, op2, p2, level2) -> a sub-policy of two steps."""
    names = task.space.names
    steps = []
    for op_i, p_i, level_i in ((x[0], x[1], x[2]), (x[3], x[4], x[5])):
        op = names[int(op_i)]
        steps.append((op, (int(p_i) + 1) / 10.0, task.space.clamp(op, int(level_i) + 1)))
    return tuple(steps)


def evaluate(task: S.Task, folds: list[dict], sub: tuple, copy: int = 1) -> dict:
    """The density scores of sub-policy ``sub`` (higher is better, one per lam) and their parts,
    averaged over folds."""
    entries = sub_policy_policy([sub], "candidate").entries(task.space)
    tolerance = task.options.get("tolerance", TOLERANCE)
    parts = []
    for fold, ref in zip(task.folds, folds):
        held_acc, _ = S.recognition(ref["model"], S.apply_entries(task, fold.val, entries, copy), fold.val.labels)
        tr_acc, tr_loss = S.recognition(ref["model"], S.apply_entries(task, fold.train, entries, copy), fold.train.labels)
        penalty = 2.0 * max(0.0, ref["acc"] - held_acc - tolerance)
        scores = [-(abs(tr_acc - (ref["acc"] + lam * (ref["train_acc"] - ref["acc"])))
                    + LOSS_WEIGHT * abs(tr_loss - (ref["loss"] + lam * (ref["train_loss"] - ref["loss"])))) - penalty
                  for lam in LAMBDAS]
        parts.append(scores + [ref["acc"] - held_acc, held_acc, tr_acc])
    mean = np.mean(parts, axis=0)
    out = {f"score_{lam:g}": float(v) for lam, v in zip(LAMBDAS, mean)}
    out.update(score=out[f"score_{GUIDE:g}"], drop=float(mean[-3]), heldout_accuracy=float(mean[-2]),
               train_accuracy=float(mean[-1]))
    return out


def _density(values: np.ndarray, card: int, ordinal: bool) -> np.ndarray:
    counts = np.bincount(values, minlength=card).astype(np.float64)
    if ordinal and card > 2:
        counts = np.convolve(counts, [0.25, 0.5, 0.25], mode="same")
    return (counts + 1.0) / (counts.sum() + card)  # Laplace prior: every value stays possible


def propose(xs: np.ndarray, scores: np.ndarray, cards: list[int], draws: S.Draws, seen: set) -> np.ndarray:
    """TPE: draw from the good trials' density, return the unseen draw with the best good/bad ratio."""
    order = np.argsort(-scores, kind="stable")
    n_good = max(1, int(np.ceil(_GOOD * len(scores))))
    good, bad = xs[order[:n_good]], xs[order[n_good:]]
    samples = np.zeros((_PROPOSALS, len(cards)), dtype=np.int64)
    ratio = np.zeros(_PROPOSALS)
    for d, card in enumerate(cards):
        lg = _density(good[:, d], card, d in _ORDINAL)
        lb = _density(bad[:, d], card, d in _ORDINAL)
        samples[:, d] = draws.choice(lg, _PROPOSALS)
        ratio += np.log(lg[samples[:, d]]) - np.log(lb[samples[:, d]])
    for i in np.argsort(-ratio, kind="stable"):
        if tuple(samples[i]) not in seen:
            return samples[i]
    return _random(cards, draws)


def _random(cards: list[int], draws: S.Draws) -> np.ndarray:
    return np.array([draws.choice(np.ones(card), 1)[0] for card in cards], dtype=np.int64)


def run(task: S.Task, tick=None) -> S.MethodResult:
    """Search ``task.budget`` sub-policies; propose the top 3, 5 and 10 as policies."""
    folds = _fold_models(task)
    cards = [len(task.space.names), 10, MAX_LEVEL] * 2
    draws = S.Draws(task.seed, "density")
    xs, scores, trials, seen, subs = [], [], [], set(), {}
    n_random = max(8, task.budget // 3)
    for i in range(task.budget):
        x = _random(cards, draws) if i < n_random else propose(np.array(xs), np.array(scores), cards, draws, seen)
        seen.add(tuple(x))
        sub = decode(task, x)
        result = subs.get(sub) or evaluate(task, folds, sub)
        subs[sub] = result
        xs.append(x)
        scores.append(result["score"])
        trials.append({"trial": i, "score": result["score"], "label": _label(sub), "phase": "random" if i < n_random else "tpe",
                       **{k: v for k, v in result.items() if k != "score"}})
        if tick:
            tick()
    candidates, tops = [], {}
    for lam in LAMBDAS:
        ranked = sorted(subs, key=lambda s: -subs[s][f"score_{lam:g}"])[:TOP]
        tops[f"{lam:g}"] = [{"sub_policy": _label(s), **subs[s]} for s in ranked]
        policy = sub_policy_policy(ranked, f"density lam={lam:g} top {len(ranked)}")
        if all(c.entries != policy.entries(task.space) for c in candidates):
            candidates.append(S.Candidate(policy.label, policy.entries(task.space), policy))
    reference = [{"fold": i, "heldout_accuracy": f["acc"], "heldout_loss": f["loss"], "train_accuracy": f["train_acc"],
                  "train_loss": f["train_loss"]} for i, f in enumerate(folds)]
    return S.MethodResult(trials, candidates, {"score": f"density match at lam={GUIDE:g} (higher is better)",
                                               "reference": reference, "top": tops})


def _label(sub: tuple) -> str:
    return " -> ".join(f"{op} p={p:.1f} L{level}" for op, p, level in sub)
