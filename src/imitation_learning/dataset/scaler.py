"""The standardisation of X's continuous columns: partial statistics and the scaler.

This module owns :class:`Moments` (count, mean and M2 of a block of rows, merged in a fixed
order so that the same blocks give the same bits) and :class:`Scaler` (mean and scale
fitted on the train rows, applied block by block in float64, saved as ``scaler.npz``), and
the block sizes they work in (:data:`CHUNK_ROWS`, :data:`TRANSFORM_BYTES`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

CHUNK_ROWS = 8_192  # rows per block when fitting, scaling and writing (~85 MB in float64)
TRANSFORM_BYTES = 1 << 20  # float64 temporaries of Scaler.transform, per step


@dataclass
class Moments:
    """Partial statistics of a block of rows, per column, in float64: the row count, the
    mean and M2 (the sum of squared deviations from the mean). Computed in two passes over
    the block (mean, then deviations); merged with Chan et al.'s pairwise formula."""

    count: int
    mean: np.ndarray
    m2: np.ndarray

    @classmethod
    def of_rows(cls, block: np.ndarray) -> Moments:
        values = np.asarray(block, dtype=np.float64)
        if not len(values):
            return cls.empty(values.shape[1])
        mean = values.mean(axis=0)
        squares = values - mean
        np.square(squares, out=squares)
        return cls(len(values), mean, squares.sum(axis=0))

    @classmethod
    def empty(cls, width: int) -> Moments:
        return cls(0, np.zeros(width), np.zeros(width))

    def merged(self, other: Moments) -> Moments:
        """The statistics of both blocks' rows together (Chan et al.)."""
        if not other.count:
            return self
        if not self.count:
            return other
        total = self.count + other.count
        delta = other.mean - self.mean
        mean = self.mean + delta * (other.count / total)
        m2 = self.m2 + other.m2 + delta**2 * (self.count * other.count / total)
        return Moments(total, mean, m2)

    @staticmethod
    def merge_all(moments: Iterable[Moments], width: int) -> Moments:
        """Left fold of :meth:`merged` in the order given."""
        total = Moments.empty(width)
        for m in moments:
            total = total.merged(m)
        return total


@dataclass
class Scaler:
    """Standardisation of some columns of X: ``(x - mean) / scale``.

    ``mean`` and ``scale`` are float64 of length F (all columns); columns not in ``columns``
    have mean 0 and scale 1, so ``(X - mean) / scale`` leaves them exactly as they are.
    """

    mean: np.ndarray
    scale: np.ndarray
    columns: np.ndarray  # int64 indices of the standardised (continuous) columns

    @classmethod
    def fit(cls, X: np.ndarray, rows: np.ndarray, columns: np.ndarray) -> Scaler:
        """Population mean and std of ``X[rows][:, columns]`` (float64, by blocks of
        :data:`CHUNK_ROWS` rows); scale = std, or 1 where std is 0. ``rows``: bool mask or
        indices (the train rows)."""
        idx = np.flatnonzero(rows) if np.asarray(rows).dtype == bool else np.asarray(rows)
        blocks = (X[idx[start : start + CHUNK_ROWS]] for start in range(0, len(idx), CHUNK_ROWS))
        return cls.fit_blocks(blocks, X.shape[1], columns)

    @classmethod
    def fit_blocks(cls, blocks: Iterable[np.ndarray], width: int, columns: np.ndarray) -> Scaler:
        """:meth:`fit` over the train rows given as consecutive blocks of whole rows (all
        ``width`` columns). The same blocks in the same order give the same bits, whether
        they come from X in memory or from a memory-mapped file."""
        columns = np.asarray(columns, dtype=np.int64)
        count, mean, m2 = 0, np.zeros(width), np.zeros(width)
        for rows_block in blocks:
            # whole rows (a contiguous gather), all columns; the others are dropped below
            block = np.asarray(rows_block).astype(np.float64)
            b_count = len(block)
            b_mean = block.mean(axis=0)
            block -= b_mean
            b_m2 = np.einsum("ij,ij->j", block, block)
            # Chan et al. merge of two (count, mean, M2) summaries.
            delta = b_mean - mean
            total = count + b_count
            mean += delta * (b_count / total)
            m2 += b_m2 + delta**2 * (count * b_count / total)
            count = total
            del block, rows_block  # not two float64 blocks at once
        std = np.sqrt(m2 / count) if count else np.zeros(width)
        full_mean = np.zeros(width)
        full_scale = np.ones(width)
        full_mean[columns] = mean[columns]
        full_scale[columns] = np.where(std[columns] > 0, std[columns], 1.0)
        return cls(full_mean, full_scale, columns)

    @classmethod
    def from_moments(cls, moments: Iterable[Moments], width: int, columns: np.ndarray) -> Scaler:
        """The scaler of the rows whose partial statistics are ``moments`` (each over the
        ``columns`` only, e.g. one per game), merged in the order given: the same summaries
        in the same order give the same bits, however the rows were partitioned."""
        columns = np.asarray(columns, dtype=np.int64)
        total = Moments.merge_all(moments, len(columns))
        std = np.sqrt(total.m2 / total.count) if total.count else np.zeros(len(columns))
        full_mean = np.zeros(width)
        full_scale = np.ones(width)
        full_mean[columns] = total.mean
        full_scale[columns] = np.where(std > 0, std, 1.0)
        return cls(full_mean, full_scale, columns)

    def transform(self, block: np.ndarray) -> np.ndarray:
        """A standardised float32 copy of ``block`` (rows of X), computed in float64.
        Other columns have mean 0 and scale 1: (x - 0) / 1 gives them back bit for bit.
        Elementwise, a few hundred rows at a time (float64 temporaries that stay in the
        processor's cache): the same bits as one pass over the whole block."""
        block = np.asarray(block)
        out = np.empty(block.shape, dtype=np.float32)
        step = max(1, TRANSFORM_BYTES // max(1, 8 * block.shape[-1]))
        work = np.empty((min(step, len(block)), *block.shape[1:]), dtype=np.float64)
        for start in range(0, len(block), step):
            rows = block[start : start + step]
            part = work[: len(rows)]
            np.subtract(rows, self.mean, out=part)  # the values made float64 exactly, first
            part /= self.scale
            out[start : start + step] = part
        return out

    def to_arrays(self) -> dict[str, np.ndarray]:
        continuous = np.zeros(len(self.mean), dtype=bool)
        continuous[self.columns] = True
        return {
            "mean": self.mean,
            "scale": self.scale,
            "columns": self.columns,
            "continuous": continuous,
        }

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray]) -> Scaler:
        return cls(
            np.asarray(arrays["mean"]),
            np.asarray(arrays["scale"]),
            np.asarray(arrays["columns"], dtype=np.int64),
        )
