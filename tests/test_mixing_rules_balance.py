"""Mixing keeps pixels and labels consistent; per-class rules suppress and count; balancing fills classes."""

import json

import numpy as np
import pytest

from augcli.pipeline import Pipeline
from augcli.rng import Streams
from augcli.transforms import build
from augcli.transforms.mixing import MixPool, one_hot
from tests.helpers import invoke, write_strategy


def two_class_pool(h=16, w=16):
    """Class 0 images are all 40, class 1 all 200: any pixel tells how much of each it holds."""
    images = np.concatenate([np.full((5, h, w, 1), 40, np.uint8), np.full((5, h, w, 1), 200, np.uint8)])
    return images, np.repeat([0, 1], 5)


def mix(name, within_class=False, n=64):
    images, labels = two_class_pool()
    batch = np.full((n, 16, 16, 1), 40, np.uint8)
    batch_labels = np.zeros(n, np.int64)
    pipe = Pipeline([build({name: {"p": 1.0, "within_class": within_class}})], seed=3)
    pool = MixPool(images, one_hot(labels, 2))
    keys = pipe.keys([f"s{i}" for i in range(n)])
    out, soft, params = pipe.run(batch, keys, batch_labels, pool, 2)
    return out, soft, params


def test_mixup_pixel_weight_equals_label_weight():
    out, soft, _ = mix("mixup")
    assert np.allclose(soft.sum(axis=1), 1.0)
    # pixel = w*40 + (1-w)*p, p in {40, 200}: recover the weight of class 1 from the pixels
    weight_1 = (out[:, 0, 0, 0].astype(float) - 40.0) / 160.0
    assert np.allclose(weight_1, soft[:, 1], atol=0.5 / 160 + 1e-6)
    assert (soft[:, 1] > 0.05).sum() > 10, "some samples should be mixed across classes"


def test_cutmix_label_weight_is_the_pasted_area():
    out, soft, _ = mix("cutmix")
    assert np.allclose(soft.sum(axis=1), 1.0)
    pasted_from_class_1 = (out[..., 0] == 200).reshape(len(out), -1).mean(axis=1)
    # partners of class 0 paste identical pixels, so only class-1 partners are visible
    assert np.allclose(pasted_from_class_1, soft[:, 1], atol=1e-6)


@pytest.mark.parametrize("name", ["mixup", "cutmix"])
def test_within_class_keeps_labels_hard(name):
    out, soft, _ = mix(name, within_class=True)
    assert np.array_equal(soft[:, 0], np.ones(len(soft)))
    assert np.array_equal(out, np.full_like(out, 40))


def test_mixing_is_batch_invariant_with_a_fixed_pool():
    images, labels = two_class_pool()
    pool = MixPool(images, one_hot(labels, 2))
    pipe = Pipeline([build({"mixup": {"p": 0.7}})], seed=1)
    batch = Streams.from_seed(5, 10).uniform(0, 255, shape=(16, 16, 1)).astype(np.uint8)
    keys = pipe.keys([str(i) for i in range(10)])
    whole = pipe.run(batch, keys, np.arange(10) % 2, pool, 2)
    parts = [pipe.run(batch[a:b], keys[a:b], np.arange(10)[a:b] % 2, pool, 2) for a, b in [(0, 3), (3, 10)]]
    assert np.array_equal(whole[0], np.concatenate([p[0] for p in parts]))
    assert np.array_equal(whole[1], np.concatenate([p[1] for p in parts]))


def test_mixing_inside_a_container_is_refused():
    from augcli.errors import SchemaError

    with pytest.raises(SchemaError, match="top level"):
        build({"one_of": ["mixup", "hflip"]})


RULES = """\
seed: 2
dataset: {{source: digits, limit: 300}}
augment:
  copies: 4
  rules:
    - classes: [{classes}]
      forbid: [vflip]
      max_abs: {{angle: 10}}
  pipeline:
    - rotate: {{degrees: 40}}
    - vflip: {{p: 0.5}}
"""


def test_rules_suppress_only_their_classes_and_are_counted(tmp_path):
    out = tmp_path / "out"
    res = invoke("run", write_strategy(tmp_path / "s.yaml", RULES.format(classes="6, 9")), "--out", out)
    assert res.exit_code == 0, res.output
    lines = [json.loads(l) for l in (out / "manifest.jsonl").read_text().splitlines()]
    guarded = [l for l in lines if l["class"] in ("6", "9") and l["copy"] > 0]
    free = [l for l in lines if l["class"] not in ("6", "9") and l["copy"] > 0]
    assert all(op["op"] != "vflip" for l in guarded for op in l["ops"])
    assert all(abs(op["angle"]) <= 10 for l in guarded for op in l["ops"] if op["op"] == "rotate")
    assert any(op["op"] == "vflip" for l in free for op in l["ops"])
    assert any(abs(op.get("angle", 0)) > 10 for l in free for op in l["ops"])
    report = json.loads((out / "report.json").read_text())
    suppressed = report["transforms"]["suppressed_by_rules"]
    n_vflip_guarded = sum(1 for l in guarded for op in l["ops"] if op["op"] == "vflip")
    assert suppressed["vflip"] > 0 and n_vflip_guarded == 0
    assert suppressed["rotate"] > 0
    assert "Per-class rules suppressed" in (out / "report.md").read_text()


def test_rule_with_unknown_class_exits_2_with_line(tmp_path):
    res = invoke("run", write_strategy(tmp_path / "s.yaml", RULES.format(classes="6, sixx")), "--out", tmp_path / "o")
    assert res.exit_code == 2
    assert "s.yaml:6: augment.rules[0].classes[1]: unknown class 'sixx'" in res.output


def test_rule_with_unknown_transform_exits_2(tmp_path):
    text = RULES.format(classes="6").replace("forbid: [vflip]", "forbid: [vfilp]")
    res = invoke("validate", write_strategy(tmp_path / "s.yaml", text))
    assert res.exit_code == 2 and "augment.rules[0].forbid[0]: unknown transform 'vfilp' (did you mean 'vflip'?)" in res.output


@pytest.mark.parametrize("target, expected", [("max", None), (100, 100)])
def test_balance_brings_every_class_to_the_target(tmp_path, target, expected):
    text = f"""\
dataset: {{source: digits, limit: 250}}
augment:
  copies: 1
  balance: {{target: {target}}}
  pipeline: [{{rotate: {{degrees: 5}}}}]
"""
    out = tmp_path / "out"
    res = invoke("run", write_strategy(tmp_path / "s.yaml", text), "--out", out)
    assert res.exit_code == 0, res.output
    report = json.loads((out / "report.json").read_text())
    before = report["counts"]["splits"]["train"]
    after = report["counts"]["output"]["train"]
    goal = expected or 2 * max(before.values())
    assert all(v == max(goal, 2 * before[k]) for k, v in after.items())
    data = np.load(out / "train.npz")
    assert np.array_equal(np.bincount(data["labels"], minlength=10), np.array(list(after.values())))


def test_policy_strategy_end_to_end(tmp_path):
    """configs/digits-policy.yaml: randaugment + mixup + rules + balancing in one run."""
    from pathlib import Path

    config = Path(__file__).resolve().parents[1] / "configs" / "digits-policy.yaml"
    out = tmp_path / "out"
    res = invoke("run", config, "--out", out, "--limit", 600)
    assert res.exit_code == 0, res.output
    train = np.load(out / "train.npz")
    soft = train["soft_labels"]  # labels stay class indices: the class with the largest weight
    assert train["labels"].ndim == 1 and np.array_equal(soft.argmax(axis=1), train["labels"])
    assert soft.dtype == np.float32 and np.allclose(soft.sum(axis=1), 1.0, atol=1e-5)
    assert (soft.max(axis=1) < 1.0).any(), "some samples must be mixed"
    report = json.loads((out / "report.json").read_text())
    assert report["transforms"]["suppressed_by_rules"].get("rotate", 0) > 0
    from sklearn.datasets import load_digits

    sources = np.bincount(load_digits().target[train["ids"].astype(int)])  # balancing counts source classes
    assert len(set(sources.tolist())) == 1, f"balanced classes expected, got {sources}"
    assert sum(report["counts"]["output"]["train"].values()) == len(soft)
    assert report["transforms"]["fired"]["randaugment"]["count"] == report["transforms"]["augmented_samples"]
