"""Phase 2 of the dataset's job, what a worker does: a partition's rows of X standardised
and written at their offsets in the preallocated ``X_{split}.npy`` (``write-x-rows``), and
one split's labels and masks written (``write-labels-masks``). Writing again gives the same
bytes at the same offsets, so a task that Dask re-runs does no harm; a file is never created
here (a task still running after its run was stopped leaves nothing behind)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from imitation_learning.allocator import tuned
from imitation_learning.dataset.scaler import Scaler
from imitation_learning.dataset.splits import SPLITS
from imitation_learning.dataset.stats import head_stats
from imitation_learning.dataset.store import write_labels_and_masks
from imitation_learning.partition_rows import PartitionRows
from splendor import columns as C

#: Rows standardised and written at a time (a few MB of float64 temporaries).
WRITE_ROWS = 2_048


@dataclass(frozen=True)
class SplitFile:
    """A preallocated ``X_{split}.npy``: its path, where its data begins (bytes), and the
    row of the file at which a partition's rows of that split go."""

    path: str
    data_offset: int
    first_row: int


@tuned  # a worker's malloc thresholds set for the step while it runs (allocator.py)
def write_x_rows(
    rows: PartitionRows,
    group_split: np.ndarray,
    targets: Mapping[str, SplitFile],
    scaler: Scaler,
) -> dict[str, tuple[dict, dict]]:
    """Standardise the partition's rows and write each split's rows at their offset
    (:func:`write_x`); return split -> (labels, masks) of the rows written there, in order
    (:func:`labels_masks_by_split`)."""
    write_x(rows, group_split, targets, scaler)
    return labels_masks_by_split(rows, group_split)


def write_x(
    rows: PartitionRows,
    group_split: np.ndarray,
    targets: Mapping[str, SplitFile],
    scaler: Scaler,
) -> None:
    """Standardise the partition's rows and write each split's rows at their offset.

    ``group_split``: the split index (in :data:`SPLITS` order) of each of the partition's
    game groups, -1 for a group the driver left out (a duplicate game).
    """
    row_split = np.asarray(group_split, dtype=np.int64)[rows.row_group]
    written = [0] * len(SPLITS)  # rows of each split written so far
    # blocks of consecutive rows, in order; rows from the cache as stored (the scaler's
    # float64 arithmetic gives the same bits from int8 as from float32)
    for first, X in rows.x_blocks(as_stored=True):
        row_bytes = X.shape[1] * 4
        local = row_split[first : first + len(X)]
        for i, split in enumerate(SPLITS):
            picked = np.flatnonzero(local == i)
            if not len(picked):
                continue
            target = targets[split]
            at = target.data_offset + (target.first_row + written[i]) * row_bytes
            # one run of rows (a file is one game, a game in one split): views, no copy
            run = picked[-1] - picked[0] + 1 == len(picked)
            for start in range(0, len(picked), WRITE_ROWS):  # elementwise: any block, same bytes
                chunk = picked[start : start + WRITE_ROWS]
                block = X[chunk[0] : chunk[-1] + 1] if run else X[chunk]
                write_rows_at(target.path, at + start * row_bytes, scaler.transform(block))
            written[i] += len(picked)
        del X
    rows.drop_spill()  # its pages go to the next writes


def labels_masks_by_split(
    rows: PartitionRows, group_split: np.ndarray
) -> dict[str, tuple[dict, dict]]:
    """Split -> (labels, masks) of the partition's rows of that split, in order (what
    :func:`write_x_rows` returns; ``group_split`` as in :func:`write_x`)."""
    row_split = np.asarray(group_split, dtype=np.int64)[rows.row_group]
    out = {}
    for i, split in enumerate(SPLITS):
        sel = row_split == i
        out[split] = (
            {h: a[sel] for h, a in rows.labels.items()},
            {h: a[sel] for h, a in rows.masks.items()},
        )
    return out


def write_rows_at(path: str, offset: int, block: np.ndarray) -> None:
    """Write ``block``'s bytes at ``offset`` of the existing file ``path`` (never created
    here: a task still running after its run was stopped leaves nothing behind)."""
    data = memoryview(np.ascontiguousarray(block)).cast("B")
    fd = os.open(path, os.O_WRONLY)
    try:
        done = 0
        while done < len(data):
            done += os.pwrite(fd, data[done:], offset + done)
    finally:
        os.close(fd)


def write_split_labels_masks(
    folder: str, split: str, *written: Mapping[str, tuple[dict, dict]]
) -> tuple[dict, dict]:
    """Concatenate one split's labels and masks from :func:`write_x_rows`'s results (in
    partition order), write them into ``folder`` (which must exist) and return their
    statistics (:func:`~imitation_learning.dataset.stats.head_stats`)."""
    folder_path = Path(folder)
    if not folder_path.is_dir():
        raise FileNotFoundError(f"{folder}: the save's folder is gone (run stopped?)")
    parts = [w[split] for w in written]
    labels = {h: _concat([p[0][h] for p in parts], (0,), np.int16) for h in C.HEADS}
    masks = {h: _concat([p[1][h] for p in parts], (0, n), bool) for h, n in C.HEADS.items()}
    write_labels_and_masks(folder_path, split, labels, masks)
    return head_stats(labels, masks)


def _concat(arrays: list[np.ndarray], empty_shape: tuple, dtype) -> np.ndarray:
    return np.concatenate(arrays) if arrays else np.empty(empty_shape, dtype=dtype)
