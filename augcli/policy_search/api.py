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

from augcli.engine import stages
from augcli.errors import UsageError
from augcli.evaluation.api import prepare
from augcli.evaluation import models as M
from augcli.evaluation import protocol as P
from augcli.io.atomic import AtomicFolder, check_target, write_file
from augcli.io.guard import check_file_output, strategy_inputs
from augcli.policy_search import report as R
from augcli.policy_search import scoring as S
from augcli.policy_search.methods import METHODS
from augcli.policy_search.protocol import FinalSettings, Job, Settings, run_repeats
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
    M.check_available([settings.model], settings.device)


def space_for(strategy: Strategy, image_shape: tuple | None = None) -> Space:
    """The strategy's search space; ``image_shape`` (H, W, C) defaults to the loaded dataset's."""
    if image_shape is None:
        image_shape = stages.load_dataset(strategy).image_shape
    return build_space(image_shape, strategy.section("augment")["rules"])


def _copies_at(aug: dict, n: int):
    """training split -> copies per source with ``n`` copies and the strategy's balance."""
    return partial(stages.train_copies, {**aug, "copies": int(n)})


def search(strategy: Strategy, settings: Settings, report: str | None = None, out: str | None = None,
           overwrite: bool = False, limit: int | None = None, overrides=(),
           progress: Callable[[int], None] | None = None) -> dict:
    """Search, score on the held-out test splits, write the report folder and the tuned strategy.

    Returns the report (JSON-ready). ``out`` defaults to <report>/tuned.yaml.
    """
    started = time.perf_counter()
    check_settings(settings)
    target, tuned_path, outside = _outputs(strategy, settings, report, out, overwrite)
    prepared = prepare(strategy, limit, "search")
    check_samples(prepared.cleaned, settings)
    job = _job(strategy, settings, prepared)
    results = run_repeats(job, progress)
    found = R.build_report(strategy, settings, prepared, job, results, limit=limit, overrides=overrides,
                           target=target, tuned_path=tuned_path)
    tuned_text = R.tuned_yaml(strategy, found, R.adaptive_block(found))
    strategy_from_text(tuned_text, str(tuned_path))  # the tuned strategy must load as it is written
    found["performance"] = {"seconds": time.perf_counter() - started, "jobs": settings.jobs,
                            "search_seconds": [r["seconds"]["search"] for r in results]}
    with AtomicFolder(target, overwrite, inputs=strategy_inputs(strategy)) as tmp:
        R.write_files(tmp, found, tuned_text)
    if outside:
        write_file(tuned_path, tuned_text.encode("utf-8"))
    found["tuned"]["yaml"] = tuned_text
    return found


def _outputs(strategy: Strategy, settings: Settings, report: str | None, out: str | None,
             overwrite: bool) -> tuple[Path, Path, bool]:
    """(report folder, tuned strategy file, whether that file is outside the folder), both checked
    before any work: exit 2, nothing touched."""
    target = report_dir(strategy, settings, report)
    tuned_path = Path(out) if out else target / "tuned.yaml"
    inputs = strategy_inputs(strategy)
    check_target(target, overwrite, inputs)
    outside = tuned_path.resolve() != (target / "tuned.yaml").resolve()
    if outside:
        check_file_output(tuned_path, inputs, overwrite, R.TUNED_SIGNATURE, "tuned strategy")
    return target, tuned_path, outside


def check_samples(cleaned, settings: Settings) -> None:
    """Refuse (DataError) before any work: scikit-learn would fail deep inside."""
    folds = max(settings.folds, S.FINAL_FOLDS)
    P.require_samples(cleaned, settings.fraction, folds, 3 if settings.model == "knn" else 2, "search",
                      f"its {folds}-fold cross-validation needs {folds} per class in at least two classes")


def _job(strategy: Strategy, settings: Settings, prepared) -> Job:
    """What every repeat shares: evaluate's context for the test arms, the space, the input policy."""
    aug = strategy.section("augment")
    # on-line training does not depend on copies, so the arm would repeat the input's
    copies_arm = bool(aug["pipeline"]) and settings.copies != aug["copies"] and not settings.online
    eval_settings = FinalSettings(models=(settings.model,), fractions=(settings.fraction,), repeats=settings.repeats,
                                  epochs=settings.epochs, device=settings.device, copies_arm=copies_arm)
    ctx = P.Context(prepared.cleaned, prepared.pipeline, partial(stages.train_copies, aug), aug["keep_originals"],
                    strategy.seed, eval_settings, near_distance=prepared.near_distance, label_folds=prepared.label_folds)
    return Job(ctx, settings, build_space(prepared.cleaned.image_shape, aug["rules"]), list(aug["pipeline"]),
               aug["copies"], partial(_copies_at, aug), copies_arm)
