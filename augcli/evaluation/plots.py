"""``evaluate.png``: per model, test accuracy against train fraction for every arm (95% CI bands)
and, below it, the per-class accuracy change of each comparison. Matplotlib's Agg canvas only, so
no display or global backend is touched."""

from __future__ import annotations

import numpy as np

_COLORS = {"original": "#555555", "augmented": "#1f77b4", "offline": "#1f77b4", "online": "#d62728"}


def _values(rows: list[dict], arm: str, key: str) -> np.ndarray:
    out = []
    for row in rows:
        s = row["arms"][arm]["accuracy"]
        v = s["mean"] if key == "mean" else s["ci"][0 if key == "low" else 1]
        out.append(np.nan if v is None else 100.0 * v)
    # a t-interval of few repeats can pass 100 % (or 0 %); accuracy cannot, so neither does the band
    return np.clip(np.asarray(out, dtype=np.float64), 0.0, 100.0)


def _curves(ax, rows: list[dict], arms, model: str) -> None:
    x = 100.0 * np.asarray([r["fraction"] for r in rows])
    for arm in arms:
        color = _COLORS.get(arm, None)
        mean = _values(rows, arm, "mean")
        ax.plot(x, mean, marker="o", ms=3, lw=1.5, color=color, label=arm)
        low, high = _values(rows, arm, "low"), _values(rows, arm, "high")
        if not np.isfinite(low).any():
            continue
        if len(x) > 1:
            ax.fill_between(x, low, high, color=color, alpha=0.2, lw=0)
        else:  # a band needs two fractions; one fraction gets an error bar
            ax.errorbar(x, mean, yerr=[mean - low, high - mean], color=color, capsize=3, lw=1)
    ax.set_title(model, fontsize=10)
    ax.set_xlabel("train fraction (%)", fontsize=8)
    ax.set_ylabel("test accuracy (%); shaded: 95 % CI of the mean", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")


def _heatmap(ax, rows: list[dict], classes: list[str], limit: float):
    labels, grid = [], []
    for row in rows:
        for c in row["comparisons"]:
            labels.append(f"{100 * row['fraction']:g}% {c['treatment']}-{c['baseline']}")
            grid.append([np.nan if v is None else 100.0 * v for v in c["per_class_change"]])
    data = np.asarray(grid, dtype=np.float64)
    image = ax.imshow(data, cmap="RdBu", vmin=-limit, vmax=limit, aspect="auto", interpolation="nearest")
    ax.set_yticks(range(len(labels)), labels, fontsize=6)
    step = max(1, len(classes) // 20)  # keep tick labels readable with many classes
    ax.set_xticks(range(0, len(classes), step), classes[::step], fontsize=6)
    ax.set_xlabel("class: accuracy change (pp)", fontsize=8)
    if data.size <= 400:
        for (i, j), v in np.ndenumerate(data):
            if np.isfinite(v):
                ax.text(j, i, f"{v:+.0f}", ha="center", va="center", fontsize=5)
    return image


def evaluate_figure(report: dict):
    """The figure for a report (a matplotlib ``Figure`` on an Agg canvas)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    models = report["protocol"]["models"]
    arms = report["protocol"]["arms"]
    classes = report["dataset"]["classes"]
    rows_of = {m: [r for r in report["results"] if r["model"] == m] for m in models}
    changes = [abs(v) for r in report["results"] for c in r["comparisons"] for v in c["per_class_change"] if v is not None]
    limit = max(1.0, 100.0 * max(changes, default=0.0))
    n = len(models)
    fig = Figure(figsize=(3.6 * n + 1.0, 6.4), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(2, n, height_ratios=[1.2, 1.0])
    image = None
    for j, model in enumerate(models):
        _curves(fig.add_subplot(grid[0, j]), rows_of[model], arms, model)
        image = _heatmap(fig.add_subplot(grid[1, j]), rows_of[model], classes, limit)
    if image is not None:
        fig.colorbar(image, ax=fig.axes[1::2], shrink=0.8, label="pp")
    fig.suptitle(f"augcli evaluate: {report['strategy']['name']} ({report['protocol']['repeats']} repeats, 95% CI)",
                 fontsize=11)
    return fig


def write_png(path, report: dict) -> None:
    """Render ``evaluate_figure(report)`` to ``path`` (PNG, no timestamp metadata)."""
    fig = evaluate_figure(report)
    fig.savefig(path, format="png", metadata={"Software": None})
