"""``augcli search`` as a library call: find a better augmentation policy for one model.

    report = search(strategy, Settings(method="grid", model="svm", fraction=0.1, repeats=5))

The space (``space``), the policies (``policy``), the methods (``grid``, ``density``,
``adversarial``, ``adaptive``), the nested protocol (``protocol``) and the outputs (``report``)
each live in their own module. The final scoring reuses ``augcli.evaluation.api``: its split, cleaning,
models and paired statistics.
"""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path
from typing import Callable

from augcli import __version__
from augcli.engine import runner
from augcli.errors import UsageError
from augcli.evaluation.api import prepare
from augcli.evaluation import models as M
from augcli.evaluation import protocol as P
from augcli.evaluation.report import aggregate, clean_json, write_json
from augcli.io.atomic import AtomicFolder, check_target, write_file
from augcli.io.guard import check_file_output, strategy_inputs
from augcli.policy_search import report as R
from augcli.policy_search import scoring as S
from augcli.policy_search.methods import METHODS
from augcli.policy_search.protocol import COPY_FACTORS, FinalSettings, Job, Settings, run_repeats, summary_scores
from augcli.policy_search.space import Space, build_space
from augcli.config.strategy import Strategy, strategy_from_text

__all__ = ["Settings", "search", "space_for", "report_dir"]


def report_dir(strategy: Strategy, settings: Settings, report: str | None) -> Path:
    """``report``, or data/out/search/<strategy name>-<method>-<model>."""
    return Path(report) if report else Path("data") / "out" / "search" / f"{strategy.name}-{settings.method}-{settings.model}"


def check_settings(settings: Settings) -> None:
    """Refuse (exit 2) settings that cannot be searched, before any work."""
    if settings.method not in METHODS:
        raise UsageError(f"unknown method {settings.method!r}; expected one of {', '.join(METHODS)}")
    if settings.model not in M.MODELS:
        raise UsageError(f"unknown model {settings.model!r}; expected one of {', '.join(M.MODELS)}")
    if not 0.0 < settings.fraction < 1.0:
        raise UsageError(f"--train-fraction must be in (0, 1), got {settings.fraction}")
    if settings.folds < 2:
        raise UsageError(f"--folds must be at least 2, got {settings.folds}")
    if settings.budget is not None and settings.budget < 1:
        raise UsageError(f"--budget must be at least 1, got {settings.budget}")


def space_for(strategy: Strategy, image_shape: tuple | None = None) -> Space:
    """The strategy's search space; ``image_shape`` (H, W, C) defaults to the loaded dataset's."""
    if image_shape is None:
        image_shape = runner.load_dataset(strategy).image_shape
    return build_space(image_shape, strategy.section("augment")["rules"])


def _notes(settings: Settings) -> list[str]:
    method = METHODS[settings.method]
    return [
        f"Method {settings.method}: {method.summary}; budget {settings.effective_budget} {method.budget_unit}.",
        "Repeat r splits the cleaned dataset exactly as `augcli evaluate --train-fraction F` does in its repeat r (seed "
        "S+r): the given fraction of each class is the training portion, the rest the test split.",
        f"The search sees only the training portion: its {settings.folds} stratified folds are made inside it, and "
        "every candidate is augmented with the repeat's seed (common random numbers).",
        f"Each method's candidates, no augmentation and the input strategy's pipeline are compared by "
        f"{max(settings.folds, S.FINAL_FOLDS)}-fold CV accuracy over {S.PASSES} fresh passes (fold partitions and draws "
        "no method searched on, new ones each pass; the model trained on the fold-train images plus "
        "their copies, as `augcli run` would write them). The incumbent - the input strategy, or no augmentation when "
        f"it has no pipeline - stays unless the best candidate beats it by more than {S.SWITCH_T:g} standard errors of "
        "the paired per-fold differences.",
        "Copies per image: " + ("fixed by --copies." if settings.copies is not None else
                                f"the chosen policy is scored at {' / '.join(f'{f}x' for f in COPY_FACTORS)} the input's "
                                "copies and moves up a step unless CV finds that step worse than the copies kept so far "
                                "by more than one standard error."),
        "Test arms, all trained with the same model and random_state on the whole training portion: original (no "
        "augmentation), input (the strategy's augmentation, evaluate's 'augmented' arm), input_copies (the input "
        "pipeline at the repeat's tuned copies, which separates the policy's effect from the copies') and tuned (the "
        "repeat's policy and copies, with the input's balance and keep_originals). Augmented images equal to a test "
        "image are dropped, as in evaluate.",
        "Repeat 0's policy is the tuned strategy; the other repeats re-run the search on their own training portion, "
        "so the test differences estimate searching-then-training (nested validation), not one fixed policy.",
        "Statistics: mean and 95% Student-t interval over repeats; paired differences with the paired t-test "
        "(augcli.evaluation.stats).",
    ]


def _adaptive_block(report: dict) -> dict | None:
    """The tuned strategy's ``adaptive:`` section when the adaptive method's policy was chosen. The
    tuned ops already fire with the settled p, so the on-line gate starts at 1 (the tuned strength)
    and the controller moves it from there."""
    if report["protocol"]["method"] != "adaptive" or not report["tuned"]["chosen"].startswith("ada"):
        return None
    from augcli.policy_search.adaptive import STEP, TARGET

    return {"enabled": True, "metric": "gap", "target": TARGET, "step": STEP, "p_init": 1.0, "p_max": 1.0,
            "interval": 1, "val_fraction": 0.2}


def _copies_at(aug: dict, n: int):
    """training split -> copies per source with ``n`` copies and the strategy's balance."""
    return partial(runner.train_copies, {**aug, "copies": int(n)})


def _repeat_summary(r: dict) -> dict:
    chosen = r["chosen"]["name"]
    cv = next(c["cv_accuracy"] for c in r["search"]["candidates"] if c["name"] == chosen)
    return {"repeat": r["repeat"], "seed": r["seed"], "n_train": r["n_train"], "n_test": r["n_test"], "chosen": chosen,
            "cv_accuracy": cv, "policy": r["chosen"]["policy"], "entries": r["chosen"]["entries"],
            "copies": r["chosen"]["copies"], "copies_trace": r["search"]["copies"], "arms": r["arms"],
            "seconds": r["seconds"]["search"], "trials": r["search"]["trials"], "candidates": r["search"]["candidates"],
            "extra": r["search"]["extra"]}


def search(strategy: Strategy, settings: Settings, report: str | None = None, out: str | None = None,
           overwrite: bool = False, limit: int | None = None, overrides=(),
           progress: Callable[[int], None] | None = None) -> dict:
    """Search, score on the held-out test splits, write the report folder and the tuned strategy.

    Returns the report (JSON-ready). ``out`` defaults to <report>/tuned.yaml.
    """
    started = time.perf_counter()
    check_settings(settings)
    target = report_dir(strategy, settings, report)
    tuned_path = Path(out) if out else target / "tuned.yaml"
    inputs = strategy_inputs(strategy)
    check_target(target, overwrite, inputs)  # before any work: exit 2, nothing touched
    outside = tuned_path.resolve() != (target / "tuned.yaml").resolve()
    if outside:
        check_file_output(tuned_path, inputs, overwrite, R.TUNED_SIGNATURE, "tuned strategy")
    loaded, cleaned, removed, pipeline, near_distance, label_folds = prepare(strategy, limit, "search")
    folds = max(settings.folds, S.FINAL_FOLDS)  # before any work: scikit-learn would fail deep inside
    P.require_samples(cleaned, settings.fraction, folds, 3 if settings.model == "knn" else 2, "search",
                      f"its {folds}-fold cross-validation needs {folds} per class in at least two classes")
    aug = strategy.section("augment")
    copies_arm = bool(aug["pipeline"]) and settings.copies != aug["copies"]
    eval_settings = FinalSettings(models=(settings.model,), fractions=(settings.fraction,), repeats=settings.repeats,
                                  copies_arm=copies_arm)
    ctx = P.Context(cleaned, pipeline, partial(runner.train_copies, aug), aug["keep_originals"], strategy.seed,
                    eval_settings, near_distance=near_distance, label_folds=label_folds)
    job = Job(ctx, settings, build_space(cleaned.image_shape, aug["rules"]), list(aug["pipeline"]), aug["copies"],
              partial(_copies_at, aug), copies_arm)
    results = run_repeats(job, progress)
    first = results[0]
    out_report = {
        "augcli_version": __version__,
        "strategy": {"path": strategy.path, "name": strategy.name, "sha256": strategy.sha256, "seed": strategy.seed,
                     "overrides": list(overrides)},
        "dataset": {"source": strategy.section("dataset")["source"], "loaded": len(loaded), "samples": len(cleaned),
                    "removed_by_cleaning": len(loaded) - len(cleaned), "classes": list(cleaned.class_names),
                    "image_shape": list(cleaned.image_shape)},
        "protocol": {"method": settings.method, "model": settings.model, "model_spec": M.describe(settings.model, None),
                     "budget": settings.effective_budget, "budget_unit": METHODS[settings.method].budget_unit,
                     "folds": settings.folds, "fraction": settings.fraction, "repeats": settings.repeats, "limit": limit,
                     "copies": aug["copies"], "copies_choice": "cv" if settings.copies is None else "fixed",
                     "copies_ladder": job.ladder(), "tuned_copies": first["chosen"]["copies"],
                     "keep_originals": aug["keep_originals"],
                     "options": dict(settings.options),
                     "notes": _notes(settings)},
        "space": job.space.to_json(),
        "results": aggregate(results, eval_settings),
        "tuned": {"chosen": first["chosen"]["name"], "entries": first["chosen"]["entries"],
                  "policy": first["chosen"]["policy"], "cv_accuracy": summary_scores(results)["cv_accuracy_repeat0"],
                  "description": R.describe(first["chosen"]["policy"], first["chosen"]["entries"])},
        "method": {k: v for k, v in first["search"]["extra"].items() if k in ("p", "level", "distribution", "score")},
        "repeats": [_repeat_summary(r) for r in results],
        "output": {"dir": str(target), "tuned": str(tuned_path), "files": ["search.json", "search.md", "search.png",
                                                                           "tuned.yaml"]},
    }
    out_report = clean_json(out_report)
    tuned_text = R.tuned_yaml(strategy, out_report, _adaptive_block(out_report))
    strategy_from_text(tuned_text, str(tuned_path))  # the tuned strategy must load as it is written
    out_report["performance"] = {"seconds": time.perf_counter() - started, "jobs": settings.jobs,
                                 "search_seconds": [r["seconds"]["search"] for r in results]}
    with AtomicFolder(target, overwrite, inputs=inputs) as tmp:
        write_json(tmp / "search.json", out_report)
        (tmp / "search.md").write_text(R.to_markdown(out_report), encoding="utf-8")
        R.write_png(tmp / "search.png", out_report)
        (tmp / "tuned.yaml").write_text(tuned_text, encoding="utf-8")
    if outside:
        write_file(tuned_path, tuned_text.encode("utf-8"))
    out_report["tuned"]["yaml"] = tuned_text
    return out_report
