"""The scaler's statistics merged in a fixed tree (``dataset.moments_tree``): buckets merged
anywhere give the bits of one pairwise pass, close to a float64 two-pass reference."""

import numpy as np
import pytest

from imitation_learning.dataset import moments_tree as mt
from imitation_learning.dataset.scaler import Moments


def _games(n_games, width=6, seed=0):
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 60, n_games)
    rows = [rng.normal(1e4, 3.0, (k, width)) * rng.choice([1, 1e-3, 7]) for k in sizes]
    moments = [Moments.of_rows(r) for r in rows]
    leaves = mt.Leaves(
        np.arange(n_games, dtype=np.int64),
        np.array([m.count for m in moments], dtype=np.int64),
        np.stack([m.mean for m in moments]),
        np.stack([m.m2 for m in moments]),
    )
    return rows, leaves


def _by_buckets(leaves, cuts, width, rng):
    """The leaves cut into 'partitions' at ``cuts``, each shuffled, merged bucket by bucket."""
    parts = np.split(rng.permutation(len(leaves)), cuts)
    per_part = []
    for idx in parts:
        part = mt.Leaves(leaves.position[idx], leaves.count[idx], leaves.mean[idx], leaves.m2[idx])
        per_part.append(mt.leaves_by_bucket(part))
    nodes = []
    for b, (first, stop) in enumerate(mt.bucket_bounds(len(leaves))):
        got = [p[b] for p in per_part if b in p]
        rng.shuffle(got)
        nodes.append(mt.merge_bucket(first, stop, width, *got))
    return mt.merge_buckets(width, *nodes)


@pytest.mark.parametrize("bucket", [1, 2, 4, 1024])
@pytest.mark.parametrize("n_games", [1, 2, 3, 5, 17, 64, 100])
def test_buckets_give_the_bits_of_one_pass(monkeypatch, bucket, n_games):
    monkeypatch.setattr(mt, "BUCKET_GAMES", bucket)
    _, leaves = _games(n_games)
    whole = mt.pairwise(leaves.count, leaves.mean, leaves.m2)
    rng = np.random.default_rng(n_games)
    for trial in range(3):
        cuts = np.sort(rng.choice(np.arange(1, n_games + 1), size=min(trial, n_games), replace=False))
        got = _by_buckets(leaves, cuts, 6, rng)
        assert got.count == whole.count
        assert got.mean.tobytes() == whole.mean.tobytes()
        assert got.m2.tobytes() == whole.m2.tobytes()


def test_close_to_a_two_pass_reference():
    rows, leaves = _games(500, seed=3)
    all_rows = np.concatenate(rows)
    mean = all_rows.mean(axis=0)
    m2 = ((all_rows - mean) ** 2).sum(axis=0)
    got = mt.pairwise(leaves.count, leaves.mean, leaves.m2)
    assert got.count == len(all_rows)
    np.testing.assert_allclose(got.mean, mean, rtol=1e-12)
    np.testing.assert_allclose(got.m2, m2, rtol=1e-9)


def test_a_missing_or_doubled_leaf_is_caught():
    _, leaves = _games(10)
    part = mt.leaves_by_bucket(leaves)[0]
    short = mt.Leaves(part.position[:-1], part.count[:-1], part.mean[:-1], part.m2[:-1])
    with pytest.raises(AssertionError):
        mt.merge_bucket(0, 10, 6, short)
    with pytest.raises(AssertionError):
        mt.merge_bucket(0, 10, 6, part, short)


def test_empty():
    assert mt.merge_buckets(4).count == 0
