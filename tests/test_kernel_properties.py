"""Property-based checks of every registered transform at its parameter extremes (issue #8).

For random image shapes (1x1 up to 64x64, thin strips included, 1 or 3 channels), parameters at the
ends of their declared ranges and p in {0, 1}: dtype and shape are kept (or the declared
output_shape), the input is never written, sampled parameters are finite, the same keys give the
same bytes (and replaying the parameters does too), p=0 is the identity and mixed labels stay a
probability distribution. tests/test_transforms_contract.py covers the defaults; this file the edges.
"""

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from augcli.errors import SchemaError
from augcli.pipeline import Pipeline
from augcli.rng import Streams, hash_ids, sample_keys
from augcli.config.schema import Bool, Choice, Number, NumberList, Range, Size
from augcli.transforms import REGISTRY, build, load_all
from augcli.transforms.containers import Container
from augcli.transforms.mixing import MixPool, one_hot
from tests.helpers import assert_contract, registered

NAMES = registered()
# Declared maxima that only cost memory, not coverage (a 4096-pixel pad of a 48-pixel image is an
# 8,240-pixel square per sample); infinite upper bounds are probed at a large finite value.
CAPS = {"padding": 40, "size": 64, "some_of.n": 2}
LARGE = 50.0
SETTINGS = settings(max_examples=15, deadline=None, database=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
K = 3  # classes for mixing transforms
CHILDREN = [{"brightness": {"limit": 1.0, "p": 1.0}}, {"rotate": {"degrees": 180, "p": 1.0}}]


def _ends(transform: str, name: str, spec) -> list:
    """The extreme values a parameter declares (plus its default)."""
    hi = spec.high if hasattr(spec, "high") else None
    if hi is not None:
        cap = CAPS.get(f"{transform}.{name}", CAPS.get(name, hi))
        hi = min(hi, cap, LARGE if math.isinf(hi) else hi)
    if isinstance(spec, Range):
        lo = spec.low
        cast = int if spec.integer else float
        lo, hi = cast(lo), cast(hi)
        return [[lo, lo], [hi, hi], [lo, hi], list(spec.default)]
    if isinstance(spec, Number):
        cast = int if spec.integer else float
        values = [cast(spec.low), cast(hi), spec.default]
        return values + ([None] if spec.nullable else [])
    if isinstance(spec, Choice):
        return list(spec.choices)
    if isinstance(spec, Bool):
        return [False, True]
    if isinstance(spec, Size):
        return ([None] if spec.nullable else []) + [1, [1, hi], [hi, 2], 7]
    if isinstance(spec, NumberList):
        return [[int(spec.low)], [int(min(spec.high, 31))], [int(spec.low), int(min(spec.high, 31))]]
    if type(spec).__name__ == "Fill":
        return ["random", 0, 255]
    return [spec.default]


@st.composite
def configs(draw, name: str):
    """A config for ``name`` with every parameter at one of its extremes, and p in {0, 1}."""
    cls = REGISTRY[name]
    config = {key: draw(st.sampled_from(_ends(name, key, spec))) for key, spec in cls.spec.items()}
    config = {k: v for k, v in config.items() if v is not None or cls.spec[k].default is None}
    config["p"] = draw(st.sampled_from([0.0, 1.0]))
    if issubclass(cls, Container):
        config["transforms"] = CHILDREN
        if "weights" in config and config["weights"] is not None:
            config["weights"] = [1.0, 0.0]
    return config


@st.composite
def batches(draw):
    """uint8 (n, h, w, c): 1x1, thin strips and up to 64x64; random, black or white content."""
    n = draw(st.integers(1, 4))
    h = draw(st.sampled_from([1, 2, 5, 17, 64]))
    w = draw(st.sampled_from([1, 3, 16, 64]))
    c = draw(st.sampled_from([1, 3]))
    content = draw(st.sampled_from(["random", "black", "white"]))
    seed = draw(st.integers(0, 2**31))
    if content == "black":
        return np.zeros((n, h, w, c), np.uint8)
    if content == "white":
        return np.full((n, h, w, c), 255, np.uint8)
    return Streams.from_seed(seed, n).uniform(0, 256, shape=(h, w, c)).astype(np.uint8)


def _build(name, config):
    try:
        return build({name: config})
    except SchemaError:  # a cross-field rule (e.g. p must be 1 for size-changing transforms)
        assume(False)


def _finite(params) -> bool:
    for value in params.values():
        if isinstance(value, np.ndarray) and value.dtype.kind == "f" and not np.isfinite(value).all():
            return False
        if isinstance(value, list) and not all(_finite(v) for v in value if isinstance(v, dict)):
            return False
    return True


def check_contract(t, x: np.ndarray, copy: int) -> None:
    """Every property of the module docstring, for transform ``t`` on batch ``x``."""
    n = x.shape[0]
    keys = sample_keys(11, hash_ids([f"s{i}" for i in range(n)]), copy)
    labels = np.arange(n) % K
    # partners of the batch's own shape; a fixed pool keeps mixing independent of the batch
    pool = MixPool(Streams.from_seed(5, 4).uniform(0, 256, shape=x.shape[1:]).astype(np.uint8),
                   one_hot(np.arange(4) % K, K))
    pipe = Pipeline([t], seed=11)
    y = assert_contract(t, x, lambda b, k: pipe.run(b, k, labels, pool, K)[0], keys)
    _, out_labels, params = pipe.run(x, keys, labels, pool, K)
    assert _finite(params), "a sampled parameter is NaN or infinite"
    replayed, _ = pipe.replay(x, params, labels, pool, K)
    assert np.array_equal(y, replayed), "replaying the sampled parameters differs"
    if t.p == 0.0:
        assert np.array_equal(y, x), "p=0 must be the identity"
    if t.uses_labels:
        assert out_labels.shape == (n, K) and np.isfinite(out_labels).all()
        assert (out_labels >= -1e-6).all() and (out_labels <= 1 + 1e-6).all()
        np.testing.assert_allclose(out_labels.sum(axis=1), 1.0, atol=1e-5)


# (n, h, w, c): a single pixel, one-pixel strips both ways, odd small sizes, a moderately large square
SHAPES = [(1, 1, 1, 1), (2, 1, 1, 3), (3, 1, 64, 3), (2, 64, 1, 1), (2, 5, 3, 3), (4, 17, 16, 1), (2, 64, 64, 3)]


def sweep(name: str):
    """Deterministic cases: every shape at p=0 and p=1, each parameter cycling through its extremes."""
    cls = REGISTRY[name]
    for i, shape in enumerate(SHAPES):
        for j, p in enumerate((0.0, 1.0)):
            config = {}
            for k, (key, spec) in enumerate(cls.spec.items()):
                ends = _ends(name, key, spec)
                config[key] = ends[(2 * i + j + k) % len(ends)]
            config = {key: v for key, v in config.items() if v is not None or cls.spec[key].default is None}
            config["p"] = p
            if issubclass(cls, Container):
                config["transforms"] = CHILDREN
                config.pop("weights", None)
            x = Streams.from_seed(i, shape[0]).uniform(0, 256, shape=shape[1:]).astype(np.uint8)
            yield config, x, i


@pytest.mark.parametrize("name", NAMES)
def test_extreme_parameters_keep_the_contract(name):
    ran = 0
    for config, x, copy in sweep(name):
        try:
            t = build({name: config})
        except SchemaError:  # a cross-field rule, e.g. size-changing transforms need p=1
            continue
        check_contract(t, x, copy)
        ran += 1
    assert ran >= len(SHAPES), f"{name}: only {ran} cases were valid"

    @SETTINGS
    @given(config=configs(name), x=batches(), copy=st.integers(0, 5))
    def explore(config, x, copy):  # random combinations on top of the sweep
        check_contract(_build(name, config), x, copy)

    explore()


def test_every_transform_is_probed():
    """The parametrisation above follows the registry, so a new transform is covered automatically."""
    assert len(NAMES) >= 40 and set(NAMES) == set(load_all())
    for name in NAMES:
        for key, spec in REGISTRY[name].spec.items():
            assert _ends(name, key, spec), f"{name}.{key}: no extreme values to probe"
