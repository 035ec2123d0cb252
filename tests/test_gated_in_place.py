"""Containers scatter gated results into their own temporaries (issue 15): the same bytes as
fresh copies, and the caller's batch is never written."""

import numpy as np

from augcli.pipeline import Pipeline
from augcli.transforms.base import apply_gated


def _chain():
    return Pipeline.from_config(
        [{"hflip": {"p": 1}}, {"vflip": {"p": 0.5}}, {"brightness": {"p": 0.5}},
         {"gaussian_noise": {"p": 0.5}}, {"sequence": {"transforms": [{"invert": {"p": 0.5}}, {"rot90": {"p": 0.5}}]}}],
        seed=3,
    )


def test_in_place_scatter_gives_the_bytes_of_fresh_copies(photo):
    x = np.stack([photo[y : y + 64, 80 : 80 + 64] for y in range(0, 320, 40)])
    before = x.copy()
    pipe = _chain()
    keys = pipe.keys([str(i) for i in range(len(x))], 1)
    params = pipe.sample(keys, x.shape)
    gates = [child["gate"] for child in params["children"]]
    assert all(g.any() and not g.all() for g in gates[1:4])  # the scatter path really runs
    got = pipe.replay(x, params)[0]
    assert np.array_equal(x, before)
    ref = x
    for t, child in zip(pipe.transforms, params["children"]):
        ref = apply_gated(t, ref, child)  # owned=False: a fresh copy at every gated step
    assert np.array_equal(got, ref)
    assert not np.array_equal(got, x)


def test_a_view_of_the_input_is_never_written(photo):
    """A step whose output shares memory with the input (here: nothing fired) is not a temporary."""
    x = np.ascontiguousarray(photo[:48, :48][None].repeat(6, 0))
    before = x.copy()
    pipe = Pipeline.from_config([{"brightness": {"p": 0.0}}, {"invert": {"p": 0.5}}], seed=1)
    out = pipe(x, ids=[str(i) for i in range(6)])
    assert np.array_equal(x, before)
    assert not np.array_equal(out, x)
