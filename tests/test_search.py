"""`augcli search`: the space and its rules, policies as strategies, data discipline (the search never
reads the test split), the realism checks, determinism and outputs, and the adaptive controller."""

import json
import re
from pathlib import Path

import numpy as np
import pytest

from augcli.adaptive import AdaptiveController, AdaptivePipeline
from augcli.config.sections import ADAPTIVE_SPEC
from augcli.datasets.split import holdout
from augcli.evaluation.online import adaptive_epochs
from augcli.datasets.base import Dataset
from augcli.errors import SchemaError
from augcli.evaluation import models as M
from augcli.evaluation import protocol as P
from augcli.pipeline import Pipeline
from augcli.rng import Streams
from augcli.policy_search.api import Settings, search
from augcli.policy_search import adaptive as adaptive_method
from augcli.policy_search import adversarial
from augcli.policy_search import density
from augcli.policy_search import grid
from augcli.policy_search import scoring as S
from augcli.policy_search.policy import ada_policy, from_json, randaugment_policy, sub_policy_policy
from augcli.policy_search.space import OP_BY_NAME, Op, Space, build_space
from augcli.config.strategy import load_strategy, strategy_from_text
from tests.helpers import invoke, write_strategy

ROOT = Path(__file__).resolve().parents[1]

STRATEGY = """\
version: 1
seed: 4
dataset: {{source: {source}}}
clean:
  noise: {{action: 'off'}}
  near_duplicates: {{action: 'off'}}
  leakage: {{action: 'off'}}
augment:
  copies: 2
  pipeline: {pipeline}
"""
AFFINE = "[{affine: {degrees: 6, shear: 6, p: 0.8}}]"


def _unique_digits(digits_images, n: int) -> Dataset:
    """The first ``n`` digits with distinct pixels (no exact duplicates for cleaning to drop)."""
    images, target = digits_images
    flat = images.reshape(len(images), -1)
    _, first = np.unique(flat, axis=0, return_index=True)
    keep = np.sort(first)[:n]
    return Dataset(images[keep], target[keep].astype(np.int64), np.array([f"d{i}" for i in keep]),
                   [str(k) for k in range(10)])


def _write_npz(path: Path, ds: Dataset) -> Path:
    np.savez(path, images=ds.images, labels=ds.labels, ids=ds.ids, class_names=np.array(ds.class_names))
    return path


@pytest.fixture(autouse=True)
def one_blas_thread():
    """As in a search's repeats: several OpenBLAS copies (NumPy's, SciPy's, OpenCV's) with threads
    each make the small logistic-regression fits crawl."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        yield


def _task(ds: Dataset, space: Space | None = None, model: str = "knn", budget: int = 2, k: int = 2, **options) -> S.Task:
    return S.Task(train=ds, space=space or build_space(ds.image_shape), model=model, state=0, seed=1,
                  copies=lambda d: 1, keep_originals=True, rules=None, budget=budget, k=k, input_entries=[],
                  options=options)


# --- the space ---------------------------------------------------------------------------------

def test_rules_remove_forbidden_ops_and_cap_levels():
    st = strategy_from_text("""\
version: 1
dataset: {source: digits}
augment:
  pipeline: [{elastic: {alpha: 0.6, sigma: 1.0}}]
  rules:
    - classes: ['6', '9']
      forbid: [hflip, vflip, rot90, rotate]
      max_abs: {shear_x: 5}
""", "r.yaml")
    space = build_space((8, 8, 1), st.section("augment")["rules"])
    assert not {"hflip", "vflip", "rot90", "rotate"} & set(space.names)
    assert "a rule forbids rotate" in space.removed["rotate"]
    assert space.max_level["shear"] == 2           # level 3 would draw up to 5.01 degrees
    assert space.levels("shear") == [1, 2]
    assert space.max_level["elastic"] == 10        # no cap on it
    full = build_space((8, 8, 1))
    assert {"rotate", "hflip"} <= set(full.names) and len(full.pairs()) > len(space.pairs())


def test_every_op_and_level_is_a_valid_transform_growing_with_the_level(digits_images):
    images = digits_images[0][:16]
    space = build_space(images.shape[1:])
    change = {}
    for op, level in space.pairs():
        out = Pipeline.from_config([space.entry(op, 1.0, level)], seed=3)(images)
        assert out.shape == images.shape and out.dtype == np.uint8
        change[(op, level)] = np.abs(out.astype(float) - images).mean()
    for op in ("rotate", "shear", "elastic", "contrast", "noise"):
        assert change[(op, space.max_level[op])] > change[(op, 1)]


def test_policies_render_as_catalogue_transforms_a_strategy_accepts():
    space = build_space((8, 8, 1))
    ra = randaugment_policy(space, ["rotate", "elastic", "shift"], n=2, m=4)
    aa = sub_policy_policy([(("rotate", 0.5, 3), ("elastic", 0.7, 2)), (("shift", 0.3, 1),)], "aa", weights=[2, 1])
    ada = ada_policy(space, space.family("geometric"), 0.4, 3)
    for policy in (ra, aa, ada):
        entries = policy.entries(space)
        st = strategy_from_text(STRATEGY.format(source="digits", pipeline=json.dumps(entries)), "p.yaml")
        assert [t.to_config() for t in st.transforms]
        assert from_json(policy.to_json()).layers == policy.layers
    assert ra.layers[0].p == pytest.approx(3 / 4)   # Identity is one of RandAugment's K + 1 ops
    assert ra.entries(space)[0]["one_of"]["transforms"][0] == {"rotate": {"degrees": 12.0, "p": 1.0}}
    assert all(step[1] == 0.4 for step in ada.layers[0].choices[0])


# --- data discipline ---------------------------------------------------------------------------

def test_search_never_reads_the_test_split(digits_images, tmp_path):
    """Replacing every test image by noise changes the test scores but not one bit of the search."""
    ds = _unique_digits(digits_images, 300)
    settings = Settings(method="density", model="knn", budget=6, folds=2, fraction=0.3, repeats=1)
    seed = 4
    _, test_idx = P.split_for(ds, settings.fraction, P.repeat_seed(seed, 0))
    noise = (Streams.from_seed(99, len(test_idx)).uniform(0, 256, (8, 8, 1))).astype(np.uint8)
    poisoned = Dataset(ds.images.copy(), ds.labels, ds.ids, ds.class_names)
    poisoned.images[test_idx] = noise
    reports = []
    for name, data in (("clean", ds), ("poisoned", poisoned)):
        src = _write_npz(tmp_path / f"{name}.npz", data)
        st = strategy_from_text(STRATEGY.format(source=src, pipeline=AFFINE), str(tmp_path / f"{name}.yaml"))
        reports.append(search(st, settings, report=str(tmp_path / f"out-{name}")))
    clean, dirty = (r["repeats"][0] for r in reports)
    assert dirty["trials"] == clean["trials"] and dirty["candidates"] == clean["candidates"]
    assert dirty["chosen"] == clean["chosen"] and dirty["entries"] == clean["entries"]
    body = [re.sub(r"^#.*\n|source: .*|data/out/\w+-tuned", "", r["tuned"]["yaml"], flags=re.M) for r in reports]
    assert body[0] == body[1]
    assert dirty["arms"]["original"]["accuracy"] < clean["arms"]["original"]["accuracy"] - 0.3  # the poison was real


def test_test_arms_are_evaluates_arms(digits_images, tmp_path):
    """No augmentation and the input strategy score exactly what `augcli evaluate` gives them."""
    from augcli.evaluation.api import Settings as EvalSettings, evaluate

    src = _write_npz(tmp_path / "d.npz", _unique_digits(digits_images, 250))
    st = strategy_from_text(STRATEGY.format(source=src, pipeline=AFFINE), str(tmp_path / "s.yaml"))
    found = search(st, Settings(method="grid", model="logreg", budget=2, folds=2, fraction=0.3, repeats=2),
                   report=str(tmp_path / "search"))["results"][0]["arms"]
    ev = evaluate(st, EvalSettings(models=("logreg",), fractions=(0.3,), repeats=2), out=str(tmp_path / "ev"))
    arms = ev["results"][0]["arms"]
    assert found["original"]["accuracy"]["values"] == arms["original"]["accuracy"]["values"]
    assert found["input"]["accuracy"]["values"] == arms["augmented"]["accuracy"]["values"]


# --- realism checks ----------------------------------------------------------------------------

DESTROY = Op("destroy", "salt_and_pepper", "noise", "every pixel black or white",
             lambda level, side: {"amount": [1.0, 1.0]})


def test_discriminator_and_label_checks_reject_an_all_noise_policy(digits_images):
    ds = _unique_digits(digits_images, 150)
    space = Space((OP_BY_NAME["rotate"], DESTROY), {"rotate": 10, "destroy": 1}, 8)
    task = _task(ds, space, model="logreg")
    pairs = [("rotate", 1), ("destroy", 1)]
    real = adversarial.realism(task, task.folds[0], pairs)
    assert real["auc"][1] > 0.95 and real["keep"][1] < 0.4       # told apart, labels lost
    assert real["auc"][0] < adversarial.AUC_MAX                   # a 3-degree turn passes
    assert list(real["feasible"]) == [True, False]
    folds = density._fold_models(task)
    kept = density.evaluate(task, folds, (("rotate", 1.0, 1), ("rotate", 1.0, 1)))
    destroyed = density.evaluate(task, folds, (("destroy", 1.0, 1), ("destroy", 1.0, 1)))
    assert destroyed["drop"] > 0.4 and destroyed["score"] < kept["score"] - 0.5


# --- the methods on a tiny task ----------------------------------------------------------------

@pytest.mark.parametrize("method, budget", [(grid, 3), (density, 6), (adversarial, 2), (adaptive_method, 4)])
def test_each_method_proposes_valid_candidates(digits_images, method, budget):
    ds = _unique_digits(digits_images, 120)
    task = _task(ds, model="logreg", budget=budget)
    result = method.run(task)
    assert result.candidates
    for c in result.candidates:
        Pipeline.from_config(c.entries)(ds.images[:4])
    if method is adversarial:
        assert len(result.extra["trajectory"]) == budget
        assert result.extra["rejected"]  # flips and invert lose the label of digits
    if method is adaptive_method:
        assert [len(h) for h in result.extra["trajectory"]] == [budget] * task.k


# --- CLI, outputs, determinism -----------------------------------------------------------------

def test_cli_outputs_are_deterministic_and_independent_of_jobs(digits_images, tmp_path):
    src = _write_npz(tmp_path / "d.npz", _unique_digits(digits_images, 300))
    st = write_strategy(tmp_path / "s.yaml", STRATEGY.format(source=src, pipeline=AFFINE))
    base = ["search", st, "--method", "grid", "--model", "knn", "--budget", "3", "--folds", "2",
            "--train-fraction", "0.3", "--repeats", "2", "-q"]
    one = invoke(*base, "-o", tmp_path / "a")
    two = invoke(*base, "-o", tmp_path / "b", "--jobs", "2")
    assert one.exit_code == 0 and two.exit_code == 0, one.output + two.output
    for name in ("search.json", "search.md", "search.png", "tuned.yaml"):
        assert (tmp_path / "a" / name).is_file()
    assert (tmp_path / "a" / "tuned.yaml").read_bytes() == (tmp_path / "b" / "tuned.yaml").read_bytes()
    a, b = (json.loads((tmp_path / d / "search.json").read_text()) for d in "ab")
    assert a["repeats"][1]["trials"] == b["repeats"][1]["trials"] and a["results"] == b["results"]
    text = (tmp_path / "a" / "tuned.yaml").read_text()
    assert re.search(r"^# Tuned by augcli search: method grid, model knn, seed 4", text, re.M)
    tuned = load_strategy(tmp_path / "a" / "tuned.yaml")
    assert tuned.section("augment")["pipeline"] == a["tuned"]["entries"]
    assert tuned.section("output")["dir"] == "data/out/s-tuned"  # the input's default output, + "-tuned"
    again = invoke(*base, "-o", tmp_path / "a")
    assert again.exit_code == 2 and "--overwrite" in again.output


def test_run_executes_a_tuned_policy_exactly(digits_images, tmp_path):
    """The YAML a policy renders to, run by `augcli run`, gives the bytes the search's pipeline gives."""
    ds = _unique_digits(digits_images, 40)
    src = _write_npz(tmp_path / "d.npz", ds)
    space = build_space(ds.image_shape)
    entries = sub_policy_policy([(("rotate", 0.6, 3), ("elastic", 0.8, 2)), (("shift", 1.0, 1),)], "t").entries(space)
    st = write_strategy(tmp_path / "t.yaml", STRATEGY.format(source=src, pipeline=json.dumps(entries)))
    assert invoke("run", st, "--out", tmp_path / "out", "-q").exit_code == 0
    out = np.load(tmp_path / "out" / "train.npz")
    pipe = Pipeline.from_config(entries, seed=4)
    by_id = {i: k for k, i in enumerate(ds.ids)}
    rows = np.array([by_id[i] for i in out["ids"]])
    expected, _, _ = pipe.run(ds.images[rows], pipe.keys(list(out["ids"]), out["copy_index"]), ds.labels[rows])
    copies = out["copy_index"] > 0
    assert np.array_equal(out["images"][copies], expected[copies])


def test_show_space_and_usage_errors(tmp_path):
    st = write_strategy(tmp_path / "s.yaml", """\
version: 1
dataset: {source: digits}
augment:
  pipeline: [{elastic: {alpha: 0.6, sigma: 1.0}}]
  rules: [{classes: ['6', '9'], forbid: [rotate]}]
""")
    shown = invoke("search", st, "--show-space")
    assert shown.exit_code == 0 and "elastic" in shown.output and "removed rotate" in shown.output
    assert invoke("search", st, "--method", "nope").exit_code == 2
    assert invoke("search", st, "--train-fraction", "1.5").exit_code == 2
    assert invoke("search", "--help").exit_code == 0


# --- the adaptive controller and pipeline (Python API) ----------------------------------------

def test_controller_takes_bounded_sign_steps():
    c = AdaptiveController(target=0.05, step=0.1, p_init=0.0, p_max=0.25)
    assert c.update(1.0, 0.8) == pytest.approx(0.1)     # gap 0.2 > target: up
    assert c.update(1.0, 0.8) == pytest.approx(0.2)
    assert c.update(1.0, 0.8) == pytest.approx(0.25)    # clipped at p_max
    assert c.update(0.9, 0.88) == pytest.approx(0.15)   # gap 0.02 < target: down
    slow = AdaptiveController(target=0.05, step=0.1, interval=2, level_init=3.0, level_step=0.5, level_max=3.5)
    assert slow.update(1.0, 0.7) == 0.0 and len(slow.history) == 0   # waits for the second epoch
    assert slow.update(0.8, 0.8) == pytest.approx(0.1)              # mean gap 0.15 > target
    assert slow.level == pytest.approx(3.5)
    conf = AdaptiveController(target=0.9, step=0.05, p_init=0.5, metric="confidence")
    assert conf.update(0.95) == pytest.approx(0.55) and conf.update(0.5) == pytest.approx(0.5)
    with pytest.raises(ValueError):
        AdaptiveController(metric="loss")


def test_adaptive_pipeline_gates_each_sample_with_p(digits_images):
    images = digits_images[0][:400]
    ids = [f"s{i}" for i in range(400)]
    pipe = Pipeline.from_config([{"rotate": {"degrees": 20}}], seed=2)
    off = AdaptivePipeline(pipe, AdaptiveController(p_init=0.0))
    assert np.array_equal(off(images, ids, copy=1), images)
    full = AdaptivePipeline(pipe, AdaptiveController(p_init=1.0))
    assert np.array_equal(full(images, ids, copy=1), pipe(images, ids, copy=1))
    half = AdaptivePipeline(pipe, AdaptiveController(p_init=0.5))
    out = half(images, ids, copy=1)
    changed = np.any(out != images, axis=(1, 2, 3))
    assert 0.4 < changed.mean() < 0.6
    parts = np.concatenate([half(images[:150], ids[:150], copy=1), half(images[150:], ids[150:], copy=1)])
    assert np.array_equal(parts, out)   # batch-invariant


def test_adaptive_spec_and_epochs_generator(digits_images):
    config = ADAPTIVE_SPEC.validate({"enabled": True, "target": 0.1}, ("adaptive",))
    assert config["step"] == 0.05 and config["metric"] == "gap"
    with pytest.raises(SchemaError) as err:
        ADAPTIVE_SPEC.validate({"stepp": 0.1}, ("adaptive",))
    assert "step" in str(err.value)
    ds = _unique_digits(digits_images, 200)
    fit, val = holdout(ds, 0.25, seed=0)
    assert not set(fit.ids) & set(val.ids)
    control = AdaptiveController.from_config(config)
    augment = AdaptivePipeline(Pipeline.from_config([{"elastic": {"alpha": 0.8, "sigma": 1.0}}], seed=0), control)
    model = M.make_model("mlp", 0)
    M.fit_epochs(model, adaptive_epochs(augment, fit, val, 6, lambda: model), 10)
    steps = np.diff([0.0] + [h["p"] for h in control.history])
    assert len(control.history) == 6 and np.all(np.isin(np.round(steps, 6), [-0.05, 0.0, 0.05]))


def _doc_block(heading: str) -> str:
    text = (ROOT / "docs" / "training-loops.md").read_text(encoding="utf-8")
    section = text.split(heading, 1)[1]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


def test_documented_numpy_loop_runs():
    scope = {"EPOCHS": 6, "print": lambda *a: None}
    exec(_doc_block("## NumPy and scikit-learn"), scope)
    history = scope["control"].history
    assert len(history) == 6 and all(0.0 <= h["p"] <= 1.0 for h in history)


# --- the final choice and the copies ladder ----------------------------------------------------

def test_final_choice_scores_on_fresh_folds(digits_images):
    """The final choice never re-uses a fold partition a method scored on (no winner's curse)."""
    task = _task(_unique_digits(digits_images, 120), model="knn", k=3)
    entries = [{"rotate": {"degrees": 6, "p": 1.0}}]
    S.cv_score(task, entries, 2)
    S.choose(task, [S.Candidate("none", []), S.Candidate("rotate", entries)])
    searched = [j for j in task._partitions if j < S.FINAL_PASS]
    final = [j for j in task._partitions if j >= S.FINAL_PASS]
    assert searched == [0, 1] and final == list(range(S.FINAL_PASS, S.FINAL_PASS + S.PASSES))
    assert all(len(task.partition(j)) == S.FINAL_FOLDS for j in final) and len(task.partition(0)) == 3
    for j in final:
        val = np.concatenate([f.val.ids for f in task.partition(j)])
        assert sorted(val) == sorted(task.train.ids)  # every sample validates exactly once per pass


def test_search_chooses_copies_and_reports_the_input_at_them(digits_images, tmp_path):
    src = _write_npz(tmp_path / "d.npz", _unique_digits(digits_images, 200))
    st = strategy_from_text(STRATEGY.format(source=src, pipeline=AFFINE), str(tmp_path / "s.yaml"))
    settings = Settings(method="grid", model="knn", budget=2, folds=2, fraction=0.3, repeats=2)
    found = search(st, settings, report=str(tmp_path / "auto"))
    assert found["protocol"]["copies_ladder"] == [2, 4, 8] and found["protocol"]["copies_choice"] == "cv"
    for r in found["repeats"]:
        assert r["copies"] in (2, 4, 8)
        if r["entries"]:
            assert [c["copies"] for c in r["copies_trace"]] == [2, 4, 8]
    assert set(found["results"][0]["arms"]) == {"original", "input", "input_copies", "tuned"}
    tuned = load_strategy(found["output"]["tuned"]).section("augment")
    assert tuned["copies"] == found["repeats"][0]["copies"] == found["protocol"]["tuned_copies"]
    fixed = search(st, Settings(**{**settings.__dict__, "copies": 3}), report=str(tmp_path / "fixed"))
    assert [r["copies"] for r in fixed["repeats"]] == [3, 3] and fixed["protocol"]["copies_choice"] == "fixed"
    assert "--copies 3" in fixed["tuned"]["yaml"]


def test_an_adaptive_policy_writes_an_adaptive_section_the_strategy_accepts(digits_images, tmp_path):
    from augcli.policy_search.report import adaptive_block, tuned_yaml

    src = _write_npz(tmp_path / "d.npz", _unique_digits(digits_images, 170))
    st = strategy_from_text(STRATEGY.format(source=src, pipeline=AFFINE), str(tmp_path / "s.yaml"))
    report = search(st, Settings(method="adaptive", model="mlp", budget=2, folds=2, fraction=0.3, repeats=1),
                    report=str(tmp_path / "r"))
    report["tuned"]["chosen"] = "ada p=0.5 level=3"   # as when the adaptive method's policy wins
    block = adaptive_block(report)
    loaded = strategy_from_text(tuned_yaml(st, report, block), str(tmp_path / "t.yaml"))
    assert loaded.section("adaptive") == {**block, "enabled": True}
    assert adaptive_block({**report, "protocol": {**report["protocol"], "method": "grid"}}) is None


def test_a_tuned_policy_below_the_input_is_warned_about():
    from augcli.policy_search.report import below_input_note

    def report(mean):
        acc = {"mean": mean, "ci": [mean - 0.01, mean + 0.01]}  # fractions: shown in percentage points
        return {"results": [{"comparisons": [{"treatment": "tuned", "baseline": "input", "accuracy": acc,
                                               "verdict": "no clear difference"}]}]}

    note = below_input_note(report(-0.008))
    assert note.startswith("the tuned policy scored -0.80 [-1.80, +0.20] pp against the input strategy")
    assert "no clear difference" in note and below_input_note(report(0.004)) is None


def test_search_figure_names_what_was_kept():
    """The kept pipeline's steps (the input's entries when the input was kept), p as built."""
    from augcli.policy_search.report import _entry_rows

    assert _entry_rows(["hflip", {"affine": {"degrees": 10, "p": 0.3}}]) == [("hflip", 0.5), ("affine", 0.3)]
