"""The one pass over X: each split's X read once in blocks of rows, handed to every scan.

This module owns :func:`scan_x` (the blocks, their finite rows, the pages of a
memory-mapped X released as the pass goes, :func:`release_pages`), :class:`Scan` (what a
check fed the blocks implements) and the simplest scan, :class:`FiniteScan` (``x_finite``).
"""

from __future__ import annotations

import mmap

import numpy as np

from imitation_learning.check.report import PASS, CheckResult
from imitation_learning.check.shapes import Layout
from imitation_learning.dataset.splits import SPLITS

#: Rows of X per block: ~5 MB of float32 at ~1,300 columns, a few times that in float64.
BLOCK_ROWS = 1024


def scan_x(ds: dict, layout: Layout, scans: list, *, progress: bool, block_rows: int) -> None:
    """Read each split's X once, in blocks of rows, and hand every block to every scan
    (with its finite rows); release the pages read as the scan goes."""
    from tqdm.auto import tqdm

    total = sum(layout.rows[s] for s in SPLITS if ds[f"X_{s}"].ndim == 2)
    with tqdm(
        total=total, desc="check: reading X", unit="rows", disable=not progress, leave=False
    ) as bar:
        for split in SPLITS:
            X = ds[f"X_{split}"]
            if X.ndim != 2:
                continue
            for scan in scans:
                scan.begin(split, X, layout.x_named[split])
            buf = np.empty((min(block_rows, len(X)), X.shape[1]), dtype=X.dtype)
            for start in range(0, len(X), block_rows):
                stop = min(start + block_rows, len(X))
                block = buf[: stop - start]
                np.copyto(block, X[start:stop])
                release_pages(X, stop)
                finite = np.isfinite(block).all(axis=1)
                for scan in scans:
                    scan.update(split, start, block, finite)
                bar.update(stop - start)
            release_pages(X, len(X))
            for scan in scans:
                scan.end(split, X)


def release_pages(X: np.ndarray, stop_row: int) -> None:
    """Let the kernel drop the pages of a memory-mapped ``X`` up to row ``stop_row`` from
    this process (they stay in the page cache); no-op for an array in memory."""
    mm = getattr(X, "_mmap", None)
    if mm is None or not hasattr(mmap, "MADV_DONTNEED") or X.ndim != 2:
        return
    # np.memmap maps from the file offset rounded down to the allocation granularity
    start_in_map = X.offset % mmap.ALLOCATIONGRANULARITY
    end = start_in_map + stop_row * X.shape[1] * X.itemsize
    end -= end % mmap.PAGESIZE
    if end > 0:
        try:
            mm.madvise(mmap.MADV_DONTNEED, 0, end)
        except (OSError, ValueError):
            pass


class Scan:
    """A check fed the blocks of X: ``begin`` / ``update`` / ``end`` per split, then
    ``result``."""

    def begin(self, split: str, X: np.ndarray, named: bool) -> None:
        pass

    def update(self, split: str, start: int, block: np.ndarray, finite: np.ndarray) -> None:
        pass

    def end(self, split: str, X: np.ndarray) -> None:
        pass


class FiniteScan(Scan):
    def __init__(self):
        self.res = CheckResult("x_finite")
        self.counts: dict[str, int] = {}

    def begin(self, split, X, named):
        self.counts[split] = 0

    def update(self, split, start, block, finite):
        if finite.all():
            return
        bad_rows = np.flatnonzero(~finite)
        self.counts[split] += int((~np.isfinite(block[bad_rows])).sum())
        r = bad_rows[0]
        c = int(np.flatnonzero(~np.isfinite(block[r]))[0])
        self.res.problem(f"X_{split}[{start + r}, {c}] = {block[r, c]}")

    def result(self):
        self.res.per_split = {s: {"non_finite_values": n} for s, n in self.counts.items()}
        total = sum(self.counts.values())
        self.res.summary = (
            "no NaN or infinity" if self.res.status == PASS else f"{total} non-finite values"
        )
        return self.res
