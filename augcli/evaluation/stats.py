"""Summary statistics over repeats: means with t-based 95% confidence intervals and paired tests.

All inputs are per-repeat values (e.g. test accuracies, fractions in [0, 1]). With fewer than two
repeats an interval cannot be estimated and its bounds are NaN (``null`` in JSON).
"""

from __future__ import annotations

import math

import numpy as np

LEVEL = 0.95


def mean_ci(values, level: float = LEVEL) -> dict:
    """{"mean", "ci": [low, high], "n"}: the mean and its Student-t interval at ``level``."""
    from scipy import stats

    x = np.asarray(values, dtype=np.float64)
    x = x[np.isfinite(x)]
    n = x.shape[0]
    if n == 0:
        return {"mean": math.nan, "ci": [math.nan, math.nan], "n": 0}
    mean = float(x.mean())
    if n < 2:
        return {"mean": mean, "ci": [math.nan, math.nan], "n": n}
    half = float(stats.t.ppf(0.5 + level / 2, n - 1) * x.std(ddof=1) / math.sqrt(n))
    return {"mean": mean, "ci": [mean - half, mean + half], "n": n}


def paired(treatment, baseline, level: float = LEVEL) -> dict:
    """The paired difference treatment - baseline over repeats.

    Returns the mean difference with its t interval, the two-sided paired t-test p-value, and
    wins / losses / ties (repeats where the treatment scored higher / lower / the same). When every
    difference is equal the t statistic is undefined: the interval collapses to that value and p is
    1 if it is zero, else 0.
    """
    from scipy import stats

    b = np.asarray(treatment, dtype=np.float64)
    a = np.asarray(baseline, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"paired samples differ in length: {b.shape[0]} vs {a.shape[0]}")
    d = b - a
    out = mean_ci(d, level)
    out.update(wins=int((d > 0).sum()), losses=int((d < 0).sum()), ties=int((d == 0).sum()), p_value=math.nan)
    if d.shape[0] >= 2:
        if np.all(d == d[0]):
            out["ci"] = [float(d[0]), float(d[0])]
            out["p_value"] = 1.0 if d[0] == 0 else 0.0
        else:
            out["p_value"] = float(stats.ttest_rel(b, a).pvalue)
    return out


def below(diff: dict, threshold: float) -> bool:
    """True when the whole interval of a difference lies below ``threshold`` (False if unknown)."""
    high = diff["ci"][1]
    return bool(np.isfinite(high) and high < threshold)


def above(diff: dict, threshold: float) -> bool:
    """True when the whole interval of a difference lies above ``threshold`` (False if unknown)."""
    low = diff["ci"][0]
    return bool(np.isfinite(low) and low > threshold)
