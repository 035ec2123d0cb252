"""Per-class label-safety rules: some augmentations change what a sample *is* (a vertically
flipped 6 is a 9), so a strategy can forbid transforms, or cap sampled parameters, for chosen
classes. Suppressed draws are turned off (the sample keeps the other transforms) and counted."""

from __future__ import annotations

import numpy as np

from augcli.errors import SchemaError
from augcli.config.schema import did_you_mean

class ClassRules:
    """Rules bound to a dataset's class names; ``restrict`` edits sampled gates in place."""

    def __init__(self, rules: list[dict], class_names: list[str]):
        self.rules = []
        names = [str(c) for c in class_names]
        for i, rule in enumerate(rules):
            mask = np.zeros(len(names), dtype=bool)
            for j, cls in enumerate(rule["classes"]):
                if cls not in names:
                    raise SchemaError(("augment", "rules", i, "classes", j),
                                      f"unknown class {cls!r}{did_you_mean(cls, names)}; the dataset has {', '.join(names[:20])}")
                mask[names.index(cls)] = True
            self.rules.append((mask, set(rule["forbid"]), dict(rule["max_abs"])))

    def restrict(self, root, params: dict, labels: np.ndarray) -> dict[str, int]:
        """Turn off forbidden or out-of-bound draws for the affected samples; returns counts per transform."""
        suppressed: dict[str, int] = {}
        for name, leaf in root.leaves(params):
            for mask, forbid, caps in self.rules:
                hit = leaf["gate"] & mask[labels]
                if name not in forbid:
                    over = np.zeros_like(hit)
                    for key, cap in caps.items():
                        if key in leaf:
                            values = np.abs(np.asarray(leaf[key], dtype=np.float64)).reshape(len(hit), -1)
                            over |= (values > cap).any(axis=1)
                    hit &= over
                if hit.any():
                    leaf["gate"] = leaf["gate"] & ~hit
                    suppressed[name] = suppressed.get(name, 0) + int(hit.sum())
        params["suppressed"] = suppressed
        return suppressed
