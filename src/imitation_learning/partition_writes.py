"""Phase 2 of the dataset's job, what a worker does: a partition's rows of X standardised
and written at their offsets in the preallocated ``X_{split}.npy``, its labels and masks
written in pieces at their rows of the preallocated ``labels_{split}.npz`` /
``masks_{split}.npz`` (``write-x-rows``), and one split's labels and masks files sealed
(``write-labels-masks``: :mod:`~imitation_learning.dataset.npz_pieces`). Writing again
gives the same bytes at the same offsets, so a task that Dask re-runs does no harm; a file
is never created here (a task still running after its run was stopped leaves nothing
behind)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from imitation_learning.allocator import tuned
from imitation_learning.dataset import npz_pieces
from imitation_learning.dataset.scaler import Scaler
from imitation_learning.dataset.splits import SPLITS
from imitation_learning.dataset.stats import head_partials, head_stats_of_partials
from imitation_learning.dataset.store import LABELS_MASKS, labels_masks_layouts
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


@dataclass(frozen=True)
class SplitPieces:
    """Where a partition's labels and masks of one split go: the save's folder, the split,
    its rows (the files' layout: :func:`~imitation_learning.dataset.store.labels_masks_layouts`)
    and the partition's first row there."""

    folder: str
    split: str
    rows: int
    first_row: int


@tuned  # a worker's malloc thresholds set for the step while it runs (allocator.py)
def write_x_rows(
    rows: PartitionRows,
    group_split: np.ndarray,
    targets: Mapping[str, SplitFile],
    scaler: Scaler,
    pieces: Mapping[str, SplitPieces],
) -> dict[str, dict]:
    """The ``write-x-rows`` task: the partition's labels and masks written at their rows of
    each split's files (:func:`write_labels_masks_pieces`, whose result it returns), then its
    rows of X standardised and written at theirs (:func:`write_x`)."""
    written = write_labels_masks_pieces(rows, group_split, pieces)
    write_x(rows, group_split, targets, scaler)
    return written


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


def write_labels_masks_pieces(
    rows: PartitionRows, group_split: np.ndarray, pieces: Mapping[str, SplitPieces]
) -> dict[str, dict]:
    """Write the partition's labels and masks of each split at the partition's first row of
    that split in ``labels_{split}.npz`` / ``masks_{split}.npz`` (preallocated by the driver:
    :func:`~imitation_learning.dataset.npz_pieces.preallocate`; never created here; writing
    again writes the same bytes). Returns split -> ``{"labels": [(crc, bytes)] a head,
    "masks": [...], "heads": head_partials}``, what :func:`write_split_labels_masks` seals
    the files with (``group_split`` as in :func:`write_x`)."""
    row_split = np.asarray(group_split, dtype=np.int64)[rows.row_group]
    all_labels, all_masks = rows.labels_masks()
    out = {}
    for i, split in enumerate(SPLITS):
        sel = np.flatnonzero(row_split == i)
        target = pieces[split]
        labels = {h: np.asarray(all_labels[h][sel], dtype=np.int16) for h in C.HEADS}
        masks = {h: np.asarray(all_masks[h][sel], dtype=bool) for h in C.HEADS}
        layouts = labels_masks_layouts(target.rows)
        folder = Path(target.folder)
        written: dict = {"heads": head_partials(labels, masks)}
        for name, arrays in zip(LABELS_MASKS, (labels, masks), strict=True):
            path = folder / f"{name}_{split}.npz"
            written[name] = [
                npz_pieces.write_rows(path, layouts[name], j, target.first_row, arrays[h])
                for j, h in enumerate(C.HEADS)
            ]
        out[split] = written
    return out


def write_rows_at(path: str, offset: int, block: np.ndarray) -> None:
    """Write ``block``'s bytes at ``offset`` of the existing file ``path`` (never created
    here: a task still running after its run was stopped leaves nothing behind)."""
    npz_pieces.write_bytes_at(path, offset, np.ascontiguousarray(block))


def write_split_labels_masks(
    folder: str, split: str, rows: int, *written: Mapping[str, dict]
) -> tuple[dict, dict]:
    """The ``write-labels-masks`` task: seal ``labels_{split}.npz`` / ``masks_{split}.npz``
    in ``folder`` (which must exist), their ``rows`` rows written by every partition
    (:func:`write_labels_masks_pieces`; ``written``: their results, in partition order),
    and return the split's label and mask statistics (those of
    :func:`~imitation_learning.dataset.stats.head_stats`)."""
    folder_path = Path(folder)
    if not folder_path.is_dir():
        raise FileNotFoundError(f"{folder}: the save's folder is gone (run stopped?)")
    layouts = labels_masks_layouts(rows)
    for name in LABELS_MASKS:
        pieces = [[w[split][name][j] for w in written] for j in range(len(C.HEADS))]
        npz_pieces.seal(folder_path / f"{name}_{split}.npz", layouts[name], pieces)
    return head_stats_of_partials(w[split]["heads"] for w in written)
