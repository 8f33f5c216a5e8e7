"""The scaler's statistics merged in a fixed tree: the same bits however the rows were
partitioned, whichever worker merged which part.

The leaves are per-game partial statistics (count, mean, M2 in float64 over the continuous
columns: :class:`~imitation_learning.dataset.scaler.Moments`, two-pass within a game), in the
order of the sorted train game ids. They are merged pairwise, level by level (Chan et al.'s
formula, vectorised over the pairs of a level): at each level, nodes ``2i`` and ``2i + 1``
are merged, a last node without a partner goes up as it is. The tree depends on the number
of leaves only, and the node of level ``k`` number ``i`` holds leaves ``[i 2^k, (i+1) 2^k)``:

- a **bucket** (:data:`BUCKET_GAMES` = ``2^k`` consecutive leaves, the last one possibly
  shorter) is exactly a node of level ``k``: its leaves can be merged anywhere (the worker
  that gathers them from the partitions that hold them, :func:`merge_bucket`), and
- the buckets' results merged by the same rule (:func:`merge_buckets`) give the root, bit
  for bit what one pairwise pass over all the leaves gives (:func:`pairwise`).

Pairwise merging is also the more accurate order (an error growing as log n, not n).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from imitation_learning.dataset.scaler import Moments, Scaler

#: Leaves (train games) per bucket: a power of two (a whole subtree). 1,024 games of about
#: 1,300 continuous columns are ~21 MB of float64 on the worker that merges them.
BUCKET_GAMES = 1024


@dataclass
class Leaves:
    """Some leaves of the tree: their positions among all the leaves, counts, means, M2s."""

    position: np.ndarray  # int64 (n,)
    count: np.ndarray  # int64 (n,)
    mean: np.ndarray  # float64 (n, C)
    m2: np.ndarray  # float64 (n, C)

    def __len__(self) -> int:
        return len(self.position)

    @staticmethod
    def concat(parts: Sequence[Leaves], width: int) -> Leaves:
        if not parts:
            return Leaves(np.empty(0, np.int64), np.empty(0, np.int64), np.empty((0, width)),
                          np.empty((0, width)))
        return Leaves(
            np.concatenate([p.position for p in parts]),
            np.concatenate([p.count for p in parts]),
            np.concatenate([p.mean for p in parts]),
            np.concatenate([p.m2 for p in parts]),
        )


def pairwise(count: np.ndarray, mean: np.ndarray, m2: np.ndarray) -> Moments:
    """The leaves ``(count, mean, M2)`` (in order) merged by the tree of the module
    docstring."""
    count = np.asarray(count, dtype=np.int64)
    mean = np.asarray(mean, dtype=np.float64)
    m2 = np.asarray(m2, dtype=np.float64)
    if not len(count):
        return Moments.empty(mean.shape[1] if mean.ndim == 2 else 0)
    while len(count) > 1:
        pairs = len(count) // 2
        a, b = slice(0, 2 * pairs, 2), slice(1, 2 * pairs, 2)
        na, nb = count[a], count[b]
        total = na + nb
        # float64 of exact integers (counts far below 2^53): as Moments.merged's figures
        frac = (nb / total)[:, None]
        cross = ((na * nb) / total)[:, None]
        delta = mean[b] - mean[a]
        new_mean = mean[a] + delta * frac
        new_m2 = m2[a] + m2[b] + delta**2 * cross
        if len(count) % 2:  # the last node goes up as it is
            total = np.append(total, count[-1:])
            new_mean = np.concatenate([new_mean, mean[-1:]])
            new_m2 = np.concatenate([new_m2, m2[-1:]])
        count, mean, m2 = total, new_mean, new_m2
    return Moments(int(count[0]), mean[0], m2[0])


def bucket_of(position: np.ndarray) -> np.ndarray:
    """The bucket of each leaf position."""
    return np.asarray(position, dtype=np.int64) // BUCKET_GAMES


def leaves_by_bucket(leaves: Leaves) -> dict[int, Leaves]:
    """Some leaves (e.g. a partition's train games), grouped by bucket."""
    buckets = bucket_of(leaves.position)
    out = {}
    for b in np.unique(buckets).tolist():
        sel = buckets == b
        out[int(b)] = Leaves(leaves.position[sel], leaves.count[sel], leaves.mean[sel],
                             leaves.m2[sel])
    return out


def bucket_bounds(total_leaves: int) -> list[tuple[int, int]]:
    """Each bucket's leaves, ``[first, stop)``, in order."""
    return [(first, min(first + BUCKET_GAMES, total_leaves))
            for first in range(0, total_leaves, BUCKET_GAMES)]


def merge_bucket(first: int, stop: int, width: int, *parts: Leaves) -> Moments:
    """The node of the bucket of leaves ``[first, stop)`` (:func:`bucket_bounds`): its
    leaves, gathered from ``parts`` (any order, any split of them), put in position order
    and merged. All its leaves must be there, once (checked)."""
    leaves = Leaves.concat([p for p in parts if len(p)], width)
    order = np.argsort(leaves.position, kind="stable")
    if not np.array_equal(leaves.position[order], np.arange(first, stop)):
        raise AssertionError(f"bucket [{first}, {stop}): leaves missing or twice")
    return pairwise(leaves.count[order], leaves.mean[order], leaves.m2[order])


def merge_buckets(width: int, *buckets: Moments) -> Moments:
    """The root, from every bucket's node in bucket order."""
    if not buckets:
        return Moments.empty(width)
    return pairwise(
        np.array([b.count for b in buckets], dtype=np.int64),
        np.stack([b.mean for b in buckets]),
        np.stack([b.m2 for b in buckets]),
    )




def scaler_from_buckets(width: int, columns: np.ndarray, *buckets: Moments) -> Scaler:
    """The ``fit-scaler`` task: the scaler of the root of the buckets' nodes (given in bucket
    order; ``width``: X's columns, ``columns``: the continuous ones the statistics cover)."""
    return Scaler.from_moments([merge_buckets(len(columns), *buckets)], width, columns)
