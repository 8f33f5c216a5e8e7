"""What the driver gets from a partition of phase 1 (:mod:`imitation_learning.partition_rows`):
its :class:`PartitionSummary` (accounting, file index, game ids and rows per game) and the
per-game figures of its files (:class:`GameGroups`), whose statistics stay on the worker:
the driver gets them :meth:`~GameGroups.without_moments`, the scaler's tree reads them as
:meth:`~GameGroups.leaves` (:mod:`imitation_learning.dataset.moments_tree`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from imitation_learning.dataset.moments_tree import Leaves
from imitation_learning.dataset.scaler import Moments
from imitation_learning.result_cache import CacheCounts
from splendor.errors import Rejection


@dataclass
class GameGroups:
    """Per-game figures of a block of files: one entry per (file, game id) with rows kept.

    ``file``: position of the file in the block's file index; ``game_id``; ``rows``
    ((g, 3): rows with 2, 3 and 4 players); ``mean`` / ``m2`` ((g, C) float64, the
    continuous columns of X) of the game's rows.
    """

    file: np.ndarray
    game_id: np.ndarray
    rows: np.ndarray
    mean: np.ndarray
    m2: np.ndarray

    def __len__(self) -> int:
        return len(self.file)

    def moments(self, i: int) -> Moments:
        return Moments(int(self.rows[i].sum()), self.mean[i], self.m2[i])

    def without_moments(self) -> GameGroups:
        """The entries without their statistics (what the driver gets: a few integers a
        game, never the per-game statistics, which stay on the worker)."""
        empty = np.empty((len(self), 0))
        return GameGroups(self.file, self.game_id, self.rows, empty, empty)

    def leaves(self, groups: np.ndarray, positions: np.ndarray) -> Leaves:
        """Entries ``groups`` as leaves of the scaler's tree at ``positions``."""
        groups = np.asarray(groups, dtype=np.int64)
        return Leaves(
            np.asarray(positions, dtype=np.int64),
            self.rows[groups].sum(axis=1).astype(np.int64),
            np.asarray(self.mean[groups], dtype=np.float64),
            np.asarray(self.m2[groups], dtype=np.float64),
        )

    @staticmethod
    def concat(parts: Sequence[GameGroups]) -> GameGroups:
        """The parts' entries, in order."""
        return GameGroups(
            file=np.concatenate([p.file for p in parts]),
            game_id=np.concatenate([p.game_id for p in parts]),
            rows=np.concatenate([p.rows for p in parts]),
            mean=np.concatenate([p.mean for p in parts]),
            m2=np.concatenate([p.m2 for p in parts]),
        )


@dataclass
class PartitionSummary:
    """What the driver gets back from a partition: no row data, only its accounting, its
    files' row counts and game ids (``file_index``: ``(path, rows_read, rows_kept,
    game_ids)`` per file, in order) and the per-game figures."""

    file_index: list[tuple[str, int, int, list[int]]]
    rejections: list[Rejection]
    rows_read: int
    files_ok: list[str]
    rows: int
    width: int
    strategic_width: int
    groups: GameGroups
    cache: CacheCounts | None = None  # what the result cache did (None: no cache)
