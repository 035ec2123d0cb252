"""Perceptual hashes and the sub-quadratic near-duplicate search, against brute force."""

import time

import numpy as np
import pytest
from scipy.fft import dctn
from scipy.sparse.csgraph import connected_components

from augcli.clean import phash
from augcli.clean.leakage import drop_ids, find_leakage
from augcli.clean.neardup import (
    band_masks, find_near_duplicates, near_duplicate_groups, near_duplicate_pairs, pair_distance, unique_pairs,
)
from augcli.clean.phash import hamming, phash64, popcount, popcount_table, shifted_phash64
from augcli.datasets import Dataset, Skipped
from augcli.rng import Streams
from augcli.transforms.functional.geometric import resize


def random_hashes(seed: int, n: int) -> np.ndarray:
    return Streams.from_seed(seed, n).bits()


def flip_bits(seed: int, n: int, counts: np.ndarray) -> np.ndarray:
    """uint64 (n,) masks with ``counts[i]`` distinct random bits set."""
    order = np.argsort(Streams.from_seed(seed, n).bits((64,)), axis=1)  # a random permutation of the bits
    chosen = np.arange(64)[None, :] < np.asarray(counts)[:, None]
    bits = np.where(chosen, np.uint64(1) << order.astype(np.uint64), np.uint64(0))
    return np.bitwise_or.reduce(bits, axis=1)


def planted(seed: int, n: int, max_distance: int, columns: int = 1):
    """Random hash rows where rows n/2.. are copies of rows 0.. at distances 0 .. max_distance + 2."""
    rows = random_hashes(seed, n * columns).reshape(n, columns)
    half = n // 2
    dist = np.arange(half) % (max_distance + 3)
    rows[half:2 * half, 0] = rows[:half, 0] ^ flip_bits(seed + 1, half, dist)
    return rows if columns > 1 else rows[:, 0]


def brute_pairs(hashes, max_distance):
    rows = hashes.reshape(hashes.shape[0], -1)
    d = np.minimum(hamming(rows[:, None, :], rows[None, :, :1]).min(-1), hamming(rows[None, :, :], rows[:, None, :1]).min(-1))
    i, j = np.nonzero(np.triu(d <= max_distance, 1))
    return i, j, d[i, j]


# ---------------------------------------------------------------- the search


@pytest.mark.parametrize("max_distance", [0, 1, 2, 4, 7])
@pytest.mark.parametrize("columns", [1, 3])
def test_multi_index_search_equals_brute_force(max_distance, columns):
    hashes = planted(max_distance, 600, max_distance, columns)
    if columns > 1:  # some rows match another row only through a variant column
        hashes[20:40, 0] = hashes[40:60, 2] ^ flip_bits(9, 20, np.arange(20) % (max_distance + 1))
    i, j, d = near_duplicate_pairs(hashes, max_distance)
    bi, bj, bd = brute_pairs(hashes, max_distance)
    np.testing.assert_array_equal(i, bi)
    np.testing.assert_array_equal(j, bj)
    np.testing.assert_array_equal(d, bd)
    np.testing.assert_array_equal(pair_distance(hashes, i, j), d)
    if columns == 1:  # every planted pair within reach is there, none beyond it
        half = 300
        found = set(zip(i.tolist(), j.tolist()))
        reported = np.array([(k, k + half) in found for k in range(half)])
        np.testing.assert_array_equal(reported, np.arange(half) % (max_distance + 3) <= max_distance)


def test_band_masks_partition_the_64_bits():
    for d in (0, 3, 4, 16, 32):
        masks = [int(m) for m in band_masks(d)]
        assert len(masks) == d + 1
        assert sum(bin(m).count("1") for m in masks) == 64
        union = 0
        for m in masks:
            assert union & m == 0
            union |= m
        assert union == (1 << 64) - 1
    for bad in (-1, 33, 2.5):
        with pytest.raises(ValueError):
            near_duplicate_pairs(random_hashes(0, 4), bad)


def test_empty_and_tiny_inputs():
    empty = np.zeros(0, dtype=np.uint64)
    assert [a.shape[0] for a in near_duplicate_pairs(empty, 4)] == [0, 0, 0]
    assert near_duplicate_groups(empty, 4).shape == (0,)
    assert near_duplicate_groups(random_hashes(1, 1), 4).tolist() == [-1]


def test_groups_are_connected_components_numbered_by_first_sample():
    hashes = planted(3, 400, 4)
    # a chain 0 - 1 - 2 at distance 4 per link: 0 and 2 are 8 bits apart but in one group
    hashes[:3] = hashes[0] ^ np.array([0, 0xF, 0xFF], dtype=np.uint64)
    groups = near_duplicate_groups(hashes, 4)
    i, j, _ = brute_pairs(hashes, 4)
    n = hashes.shape[0]
    adjacency = np.zeros((n, n), dtype=bool)
    adjacency[i, j] = True
    _, reference = connected_components(adjacency, directed=False)
    same = groups[:, None] == groups[None, :]
    ref_same = reference[:, None] == reference[None, :]
    grouped = groups >= 0
    np.testing.assert_array_equal(same[np.ix_(grouped, grouped)], ref_same[np.ix_(grouped, grouped)])
    assert np.array_equal(grouped, np.bincount(reference)[reference] > 1)
    assert groups[0] == groups[1] == groups[2] == 0
    firsts = [int(np.flatnonzero(groups == g)[0]) for g in range(groups.max() + 1)]
    assert firsts == sorted(firsts)  # group ids follow the order of their first sample


def test_a_huge_group_of_equal_hashes_costs_one_row():
    n_same, n_other = 20000, 5000
    hashes = np.concatenate([np.zeros(n_same, dtype=np.uint64), random_hashes(5, n_other)])
    hashes = hashes[np.argsort(random_hashes(6, hashes.shape[0]))]  # scatter the blanks
    stats = {}
    start = time.perf_counter()
    inverse, a, b, _ = unique_pairs(hashes, 4, stats)
    groups = near_duplicate_groups(hashes, 4)
    elapsed = time.perf_counter() - start
    assert stats["candidates"] < 20 * (n_other + 1)  # not the 2e8 pairs inside the group
    assert elapsed < 5.0
    blank = hashes == 0
    assert np.unique(groups[blank]).shape == (1,) and groups[blank][0] >= 0
    assert np.unique(inverse[blank]).shape == (1,)
    # the pair list itself is quadratic in the group, as documented: g * (g - 1) / 2
    small = np.concatenate([np.zeros(300, dtype=np.uint64), random_hashes(7, 100)])
    i, j, d = near_duplicate_pairs(small, 4)
    zero = (small[i] == 0) & (small[j] == 0)
    assert zero.sum() == 300 * 299 // 2 and np.all(d[zero] == 0)


# ---------------------------------------------------------------- the hash


def test_popcount_table_matches_bitwise_count_and_hamming_broadcasts():
    x = np.concatenate([random_hashes(2, 1000), np.array([0, 1, 2**64 - 1], dtype=np.uint64)])
    expected = np.array([bin(int(v)).count("1") for v in x])
    np.testing.assert_array_equal(popcount(x), expected)
    np.testing.assert_array_equal(popcount_table(x), expected)
    assert popcount_table(np.uint64(7)) == 3
    assert hamming(x[:5, None], x[None, :7]).shape == (5, 7)
    assert hamming(np.uint64(0), np.uint64(2**64 - 1)) == 64


def test_phash_equals_resize_then_dctn_and_is_batch_invariant(digits_images):
    images = digits_images[0]
    hashes = phash64(images)
    # the literal definition: bilinear resize to 32x32 (uint8), dctn, 8x8 block, median split
    coef = dctn(resize(images, (32, 32)).astype(np.float64)[..., 0], type=2, norm="ortho", axes=(1, 2))
    literal = phash._bits(coef[:, :8, :8])
    d = hamming(hashes, literal)
    assert np.mean(d == 0) > 0.95 and d.max() <= 4  # only the 32x32 uint8 rounding differs
    np.testing.assert_array_equal(phash64(images[100:137]), hashes[100:137])
    assert hashes.dtype == np.uint64 and np.all(hashes & np.uint64(1) == 0)  # the DC bit stays 0


def test_phash_ignores_brightness_and_sees_content(photo):
    crops = np.stack([photo[0:128, 0:128], photo[200:328, 300:428], photo[100:228, 500:628]])
    hashes = phash64(crops)
    brighter = phash64(np.clip(crops.astype(np.int16) + 20, 0, 255).astype(np.uint8))
    assert hamming(hashes, brighter).max() <= 4
    assert hamming(hashes[:, None], hashes[None, :])[np.triu_indices(3, 1)].min() >= 16
    constant = np.full((3, 16, 16, 3), [[[[0]]], [[[90]]], [[[255]]]], dtype=np.uint8)
    assert phash64(constant).tolist() == [0, 0, 0]
    assert phash64(np.zeros((0, 8, 8, 1), np.uint8)).shape == (0,)
    with pytest.raises(ValueError):
        phash64(np.zeros((2, 8, 8), np.uint8))


def test_shifted_hashes_see_through_a_one_pixel_move(digits_images):
    images = digits_images[0][:200]
    rows = shifted_phash64(images)
    assert rows.shape == (200, 17)
    np.testing.assert_array_equal(rows[:, 0], phash64(images))
    moved = np.zeros_like(images)
    moved[:, :, 1:] = images[:, :, :-1]  # one pixel to the right, background brought in
    plain = hamming(phash64(moved), rows[:, 0])
    assert np.median(plain) >= 20  # as far as an unrelated digit
    shifted = pair_distance(np.concatenate([rows, shifted_phash64(moved)]), np.arange(200), np.arange(200, 400))
    assert np.all(shifted == 0)


# ---------------------------------------------------------------- records


def _tiny(images, labels, ids):
    return Dataset(np.asarray(images, dtype=np.uint8), np.asarray(labels), np.asarray(ids), ["a", "b", "c"])


def test_find_near_duplicates_records(digits_images):
    images = digits_images[0]
    picked = images[[0, 1, 0, 0]]  # sample 0, an unrelated digit, and two copies of sample 0
    data = _tiny(picked, [0, 1, 0, 2], ["x", "y", "x2", "x3"])
    records = find_near_duplicates(data, 4)
    assert [r["id"] for r in records] == ["x2", "x3"]
    for r in records:
        assert r["reason"] == "near_duplicate" and r["duplicate_of"] == "x" and r["distance"] == 0
        assert r["identical"] and r["label_conflict"] and r["group"] == 0 and r["suggested_label"] is None
    soft = np.eye(3, dtype=np.float32)[[0, 1, 0, 0]] * 0.8 + 0.05
    assert not any(r["label_conflict"] for r in find_near_duplicates(_tiny(picked, soft, data.ids), 4))
    with pytest.raises(ValueError):
        find_near_duplicates(data, 4, hashes=np.zeros(3, dtype=np.uint64))


def test_find_leakage_points_at_the_nearest_held_out_copy(digits_images):
    images = digits_images[0]
    train = _tiny(images[[0, 1, 2, 3]], [0, 1, 2, 0], ["t0", "t1", "t2", "t3"])
    val = _tiny(images[[5, 2]], [1, 1], ["v0", "v1"])
    test = _tiny(images[[0, 0]], [0, 0], ["s0", "s1"])
    records = find_leakage({"train": train, "val": val, "test": test}, max_distance=0)
    assert [(r["id"], r["duplicate_of"], r["split"], r["distance"], r["label_conflict"]) for r in records] == [
        ("t0", "s0", "test", 0, False), ("t2", "v1", "val", 0, True),
    ]
    assert find_leakage({"train": train}) == []
    with pytest.raises(ValueError):
        find_leakage({"val": val})
    train.skipped = [Skipped("bad.png", "empty")]
    kept = drop_ids(train, ["t0", "t2"])
    assert kept.ids.tolist() == ["t1", "t3"] and kept.skipped == train.skipped
    assert len(train) == 4  # the input is not modified
