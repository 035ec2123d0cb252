"""Can cross-validation on the training portion see a policy that is better on the test split?

    python benchmarks/search_resolution.py [--model svm] [--passes 12] [--copies 20] [--repeats 5]

The README's search section says that for the SVM on digits at 10 %, configs/digits.yaml's affine
alone (p = 1) at 20 copies beats digits.yaml's pipeline on the test splits, yet the search cannot
find it. This prints, per repeat (the same splits as `augcli search` / `augcli evaluate`), the test
accuracy difference of the two and their difference in K-fold CV on the repeat's training portion
(``--passes`` fresh 5-fold passes, paired by fold), with its t statistic: the search switches only
when t > 2.
"""

from __future__ import annotations

import argparse
import warnings
from functools import partial

import numpy as np

from augcli.engine.augment import augment_dataset
from augcli.engine.stages import train_copies
from augcli.evaluation import models as M
from augcli.evaluation.api import prepare
from augcli.evaluation import protocol as P
from augcli.policy_search import scoring as S
from augcli.policy_search.space import build_space
from augcli.config.strategy import load_strategy


def _test_accuracy(task: S.Task, data: P.TaskData, entries: list) -> float:
    out = augment_dataset(data.train, S.pipeline(task, entries), task.copies(data.train), True)
    return S.accuracy(M.fit(M.make_model(task.model, task.state), out.images, out.labels), data.test)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="svm")
    ap.add_argument("--passes", type=int, default=12)
    ap.add_argument("--copies", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    strategy = load_strategy("configs/digits.yaml")
    _, cleaned, _, pipeline, near, label_folds = prepare(strategy, None, "search")
    aug = strategy.section("augment")
    ctx = P.Context(cleaned, pipeline, partial(train_copies, aug), aug["keep_originals"], strategy.seed,
                    P.Settings(), near_distance=near, label_folds=label_folds)
    incumbent = list(aug["pipeline"])
    rival = [{"affine": {**incumbent[0]["affine"], "p": 1.0}}]  # digits.yaml's affine alone, always on
    print(f"{args.model}, {args.copies} copies: digits.yaml's pipeline vs its affine alone (p = 1)")
    print("repeat  test diff (pp)  CV diff (pp)  t")
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for r in range(args.repeats):
            data = P.prepare(ctx, 0.1, r)
            task = S.Task(train=data.train, space=build_space(cleaned.image_shape), model=args.model,
                          state=P.model_state(strategy.seed, r), seed=data.seed, copies=lambda d: args.copies,
                          keep_originals=True, rules=None, budget=1, k=S.FINAL_FOLDS, input_entries=incumbent)
            folds = [np.asarray(S.cv_score(task, e, args.passes, S.FINAL_PASS)["folds"]) for e in (incumbent, rival)]
            diff = folds[1] - folds[0]
            t = diff.mean() / (diff.std(ddof=1) / np.sqrt(diff.size))
            test = _test_accuracy(task, data, rival) - _test_accuracy(task, data, incumbent)
            print(f"{r:>6}  {100 * test:+14.2f}  {100 * diff.mean():+12.2f}  {t:+.1f}")


if __name__ == "__main__":
    main()
