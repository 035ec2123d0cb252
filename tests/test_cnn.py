"""--model cnn: a deterministic small CNN in evaluate and search, offline and on-line, any --jobs."""

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from augcli.datasets import load_source  # noqa: E402
from augcli.datasets.source import ArraySource  # noqa: E402
from augcli.evaluation import models as M  # noqa: E402
from augcli.evaluation.cnn import CNNClassifier, network  # noqa: E402
from augcli.evaluation.online import fresh_draws  # noqa: E402
from augcli.pipeline import Pipeline  # noqa: E402
from augcli.torch import BatchAugmenter, SourceDataset  # noqa: E402
from tests.helpers import TINY_DIGITS as TINY, invoke, write_strategy  # noqa: E402



@pytest.fixture(scope="module")
def digits():
    return load_source("digits").subset(np.arange(300))


def test_the_same_fit_gives_the_same_model_and_leaves_torch_as_it_was(digits):
    x = M.features(digits.images[:120], CNNClassifier())
    assert x.shape == (120, 8, 8, 1) and x.dtype == np.float32
    threads = torch.get_num_threads()
    torch.manual_seed(123)
    before = torch.rand(3)
    torch.manual_seed(123)
    a = CNNClassifier(random_state=0, epochs=3).fit(x, digits.labels[:120])
    after = torch.rand(3)
    b = CNNClassifier(random_state=0, epochs=3).fit(x, digits.labels[:120])
    other = CNNClassifier(random_state=1, epochs=3).fit(x, digits.labels[:120])
    test = M.features(digits.images[200:], a)
    assert np.array_equal(a.predict_proba(test), b.predict_proba(test))
    assert not np.array_equal(a.predict_proba(test), other.predict_proba(test))
    assert torch.equal(before, after)  # the caller's RNG stream went on as if no fit had happened
    assert torch.get_num_threads() == threads and not torch.are_deterministic_algorithms_enabled()


def test_it_learns_digits_and_takes_soft_labels(digits):
    model = M.fit(M.make_model("cnn", 0, epochs=30), digits.images[:200], digits.labels[:200])
    assert M.scores(model, digits.images[200:], digits.labels[200:], 10)["accuracy"] > 0.8
    soft = np.zeros((200, 10), dtype=np.float32)
    soft[np.arange(200), digits.labels[:200]] = 0.6
    soft[np.arange(200), (digits.labels[:200] + 1) % 10] = 0.4
    model = M.fit_epochs(M.make_model("cnn", 0), [(digits.images[:200], soft)] * 2, 10)
    proba = model.predict_proba(M.features(digits.images[200:], model))
    assert proba.shape == (100, 10) and np.allclose(proba.sum(axis=1), 1, atol=1e-5)
    assert model.classes_.tolist() == list(range(10))


def test_photos_get_the_residual_net():
    small, photo = network((32, 32, 3), 4), network((64, 64, 3), 4)
    assert not any(type(m).__name__ == "Residual" for m in small.modules())
    assert sum(type(m).__name__ == "Residual" for m in photo.modules()) == 3
    images = np.arange(6 * 48 * 48 * 3, dtype=np.int64).reshape(6, 48, 48, 3) % 251
    model = M.fit(M.make_model("cnn", 0, epochs=1), images.astype(np.uint8), np.array([0, 1, 2, 0, 1, 2]))
    assert model.predict(M.features(images.astype(np.uint8), model)).shape == (6,)


def test_online_epochs_are_the_draws_batch_augmenter_gives(digits):
    pipe = Pipeline.from_config([{"affine": {"degrees": 10, "translate": 0.1}}], seed=7)
    augmenter = BatchAugmenter(pipe, num_classes=10)
    augmenter.set_epoch(2)
    loader = torch.utils.data.DataLoader(SourceDataset(ArraySource(digits.subset(np.arange(64)))), batch_size=16,
                                         collate_fn=augmenter)
    batches = torch.cat([x for x, _ in loader])
    draws = list(fresh_draws(digits.subset(np.arange(64)), pipe, 3))
    assert torch.equal(batches, torch.from_numpy(draws[2][0]).permute(0, 3, 1, 2).float() / 255)


def _report(path):
    report = json.loads((path / "evaluate.json").read_text())
    report.pop("performance")
    return report


@pytest.mark.parametrize("online", [False, True])
def test_evaluate_with_the_cnn_is_the_same_for_any_jobs(tmp_path, online):
    strategy = write_strategy(tmp_path / "tiny.yaml", TINY)
    args = ["--model", "cnn", "--limit", 200, "--train-fraction", 0.3, "--repeats", 2, "--epochs", 2, "-q"]
    args += ["--online"] if online else []
    assert invoke("evaluate", strategy, "--out", tmp_path / "a", *args).exit_code == 0
    res = invoke("evaluate", strategy, "--out", tmp_path / "b", *args, "--jobs", 2)
    assert res.exit_code == 0, res.output
    first = _report(tmp_path / "a")
    assert first == _report(tmp_path / "b")
    assert first["protocol"]["epochs"] == {"cnn": 2}
    assert first["protocol"]["arms"] == (["original", "offline", "online"] if online else ["original", "augmented"])
    assert "--epochs 2" in (tmp_path / "a" / "evaluate.md").read_text()


def test_cnn_refusals_are_one_line_usage_errors(tmp_path):
    strategy = write_strategy(tmp_path / "tiny.yaml", TINY)
    for extra, words in ((["--pca", 5], "--pca applies"), (["--device", "nonsense"], "--device nonsense")):
        res = invoke("evaluate", strategy, "--out", tmp_path / "x", "--model", "cnn", *extra)
        assert res.exit_code == 2 and words in res.output and "Traceback" not in res.output, res.output
        assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("method", ["grid", "density", "adversarial", "adaptive"])
def test_every_search_method_runs_with_the_cnn_on_line(tmp_path, method):
    strategy = write_strategy(tmp_path / "tiny.yaml", TINY)
    res = invoke("search", strategy, "--method", method, "--model", "cnn", "--epochs", 1, "--budget", 2,
                 "--limit", 200, "--train-fraction", 0.4, "--repeats", 1, "--out", tmp_path / "s", "--json")
    assert res.exit_code == 0, res.output
    report = json.loads((tmp_path / "s" / "search.json").read_text())
    assert report["protocol"]["model"] == "cnn" and report["protocol"]["online"] and report["protocol"]["epochs"] == 1
    repeat = report["repeats"][0]
    assert set(repeat["arms"]) == {"original", "input", "tuned"}  # no input_copies arm: copies do not matter on-line
    assert repeat["copies"] == 1 and report["protocol"]["copies_ladder"] == [1]
    assert (tmp_path / "s" / "tuned.yaml").exists()
