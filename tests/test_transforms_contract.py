"""Every registered transform honours the Transform contract (one test, iterating the registry)."""

import numpy as np
import pytest

from augcli.pipeline import Pipeline
from augcli.rng import Streams, hash_ids, sample_keys
from augcli.transforms import REGISTRY, build
from augcli.transforms.mixing import MixPool, one_hot
from tests.helpers import assert_contract, make_transform, registered

NAMES = registered()


def batch(rgb, n=9, h=14, w=12, seed=0):
    s = Streams.from_seed(seed, n)
    c = 3 if rgb else 1
    base = s.uniform(0, 255, shape=(h, w, c))
    # structured content (gradient + noise) so geometric ops visibly move pixels
    grad = np.linspace(0, 200, w)[None, None, :, None]
    return np.clip(0.5 * base + grad, 0, 255).astype(np.uint8)


def apply(t, x, keys=None, params=None):
    """Apply ``t`` to ``x`` with the given keys (sample) or params (replay).

    Mixing transforms need labels and a partner pool; a fixed pool keeps them batch-invariant.
    """
    if not t.uses_labels:
        return t(x, Streams(keys) if params is None else None, params)
    pipe = Pipeline([t])
    labels = np.arange(len(x)) % 3
    pool = MixPool(batch(x.shape[-1] == 3, n=6, seed=99), one_hot(np.arange(6) % 3, 3))
    if params is None:
        params = t.sample(Streams(keys), x.shape)
    return pipe.replay(x, {"gate": np.ones(len(x), bool), "children": [params]}, labels, pool, 3)[0]


def keys_for(n, copy=0):
    return sample_keys(7, hash_ids([f"img{i}" for i in range(n)]), copy)


@pytest.mark.parametrize("rgb", [False, True], ids=["gray", "rgb"])
@pytest.mark.parametrize("name", NAMES)
def test_contract(name, rgb):
    t = make_transform(name)
    x = batch(rgb)
    before = x.copy()
    keys = keys_for(len(x))
    y = assert_contract(t, x, lambda b, k: apply(t, b, k), keys, cuts=[(0, 1), (1, 5), (5, 9)])

    # replaying the sampled parameters gives the same bytes
    params = t.sample(Streams(keys), x.shape)
    replayed = apply(t, x, params=params)
    assert replayed.dtype == np.uint8 and np.array_equal(replayed, y)
    assert np.array_equal(x, before), "input was modified"
    assert all(v.shape[0] == len(x) for v in params.values() if isinstance(v, np.ndarray)), "params must lead with N"

    # empty batch
    empty = apply(t, x[:0], keys[:0])
    assert empty.shape[0] == 0 and empty.dtype == np.uint8
    # YAML round trip gives an equal transform
    again = build(t.to_config())
    assert np.array_equal(y, apply(again, x, keys))


@pytest.mark.parametrize("name", NAMES)
def test_p0_is_identity(name):
    if make_transform(name).changes_shape:
        pytest.skip("size-changing transforms require p=1")
    t = make_transform(name, p=0.0)
    x = batch(True)
    assert np.array_equal(apply(t, x, keys_for(len(x))), x)


@pytest.mark.parametrize("name", NAMES)
def test_does_something_at_p1(name):
    """A transform at p=1 changes at least one image of a varied batch (its defaults are not no-ops)."""
    t = make_transform(name)
    x = batch(True, n=16)
    y = apply(t, x, keys_for(len(x)))
    assert y.shape != x.shape or not np.array_equal(y, x)


@pytest.mark.parametrize("name", NAMES)
def test_describes_itself(name):
    cls = REGISTRY[name]
    assert cls.summary, f"{name} needs a one-line summary"
    for key, spec in cls.spec.items():
        assert spec.doc, f"{name}.{key} needs a doc string"
