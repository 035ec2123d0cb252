"""The search methods by name: each is ``run(task, tick) -> MethodResult`` with a default budget."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from augcli.policy_search import adaptive
from augcli.policy_search import adversarial
from augcli.policy_search import density
from augcli.policy_search import grid


@dataclass(frozen=True)
class Method:
    run: Callable
    default_budget: int
    budget_unit: str
    summary: str


METHODS = {
    "grid": Method(grid.run, grid.DEFAULT_BUDGET, "grid points",
                   "RandAugment's (N, M) grid over three op sets, scored by K-fold CV accuracy with successive halving"),
    "density": Method(density.run, density.DEFAULT_BUDGET, "sub-policies",
                      "Fast AutoAugment's density matching: fold models judge augmented copies; random then TPE search"),
    "adversarial": Method(adversarial.run, adversarial.DEFAULT_BUDGET, "model/policy update rounds",
                          "a distribution over (op, level) moved towards hard yet realistic samples (cross-entropy method)"),
    "adaptive": Method(adaptive.run, adaptive.DEFAULT_BUDGET, "epochs per fold",
                       "ADA's bounded sign step on the strength p (and level) from the train/val accuracy gap"),
}
