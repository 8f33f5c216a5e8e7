"""The driver between the two phases of the dataset's job (:mod:`imitation_learning.job.
phases`): from the partitions' summaries alone (work proportional to the number of files and
games, not rows), the plan of the save. A pure function of its inputs
(:func:`plan_assembly`):

- games present in two files are left out (the later file in path order), the accounting
  is checked;
- the split by game (:func:`~imitation_learning.dataset.split_by_game`: a function of the
  set of kept game ids and the seed);
- every partition's first row in each split (partitions in order, each one's rows of a
  split after the previous ones');
- the scaler's tree (:mod:`~imitation_learning.dataset.moments_tree`): the train games in
  game-id order, in buckets whose statistics the workers hold and merge (the runners'
  ``fit_scaler``, :func:`fit_scaler_here` in this process): the same bits whatever the
  partitioning, and the driver never holds the per-game statistics.

Then :func:`preallocate` makes ``X_{split}.npy`` of the planned shapes and lays out
``labels_{split}.npz`` / ``masks_{split}.npz`` (written in pieces by the partitions:
:mod:`~imitation_learning.dataset.npz_pieces`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from imitation_learning.dataset.moments_tree import (
    Leaves,
    bucket_bounds,
    merge_bucket,
    scaler_from_buckets,
)
from imitation_learning.dataset.npz_pieces import preallocate as npz_preallocate
from imitation_learning.dataset.scaler import Scaler
from imitation_learning.dataset.splits import SPLITS, split_by_game
from imitation_learning.dataset.stats import split_stats
from imitation_learning.dataset.store import labels_masks_layouts
from imitation_learning.job.accounting import (
    check_row_accounting,
    duplicate_files,
    merge_rejections,
)
from imitation_learning.partition_rows import PartitionSummary
from imitation_learning.partition_writes import SplitFile, SplitPieces
from splendor.errors import Rejection


@dataclass
class Plan:
    """What the driver decides between the two phases (from the summaries only)."""

    rejections: list[Rejection]
    rows_read: int
    rows_kept: int
    group_split: list[np.ndarray]  # per partition: split index of each game group, -1 = out
    first_row: list[dict[str, int]]  # per partition: split -> its first row in X_{split}
    split_rows: dict[str, int]
    splits: dict  # stats.json "splits"
    # the scaler's tree (dataset.moments_tree): per bucket, its leaves [first, stop) and
    # (partition, its game groups in the bucket, their leaf positions)
    buckets: list[tuple[int, int, list[tuple[int, np.ndarray, np.ndarray]]]] = field(
        default_factory=list
    )
    width: int = 0
    continuous: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    scaler: Scaler | None = None  # fitted on the workers (the runners' fit_scaler)


def plan_assembly(
    summaries: Sequence[PartitionSummary],
    paths: Sequence[str],
    ratios: Sequence[float],
    seed: int,
    width: int,
    continuous: np.ndarray,
) -> Plan:
    """Duplicates left out, accounting checked, split, offsets and the scaler's buckets (see
    the module docstring; the scaler itself is fitted later, where the statistics are). ``summaries`` are in partition (path) order."""
    file_index = [entry for s in summaries for entry in s.file_index]
    duplicates = duplicate_files(file_index)
    rejections = merge_rejections(
        [r for s in summaries for r in s.rejections], duplicates, file_index
    )
    rows_read = sum(s.rows_read for s in summaries)
    files_ok = [f for s in summaries for f in s.files_ok if f not in duplicates]

    # every game group of every partition, with the partition it is in
    part_of_group, kept_groups = [], []
    game_ids, rows, order_in_part = [], [], []
    for p, s in enumerate(summaries):
        g = s.groups
        dropped = np.array([s.file_index[f][0] in duplicates for f in g.file], dtype=bool)
        part_of_group.append(np.full(len(g), p))
        kept_groups.append(~dropped)
        game_ids.append(g.game_id)
        rows.append(g.rows)
        order_in_part.append(np.arange(len(g)))
    part_of_group = np.concatenate(part_of_group) if part_of_group else np.empty(0, int)
    kept = np.concatenate(kept_groups) if kept_groups else np.empty(0, bool)
    game_ids = np.concatenate(game_ids) if game_ids else np.empty(0, np.int64)
    rows = np.concatenate(rows) if rows else np.empty((0, 3), np.int64)
    order_in_part = np.concatenate(order_in_part) if order_in_part else np.empty(0, int)
    group_rows = rows.sum(axis=1)

    rows_kept = int(group_rows[kept].sum())
    check_row_accounting(rows_read, rows_kept, rejections, files_ok, paths)

    # split by game: a function of the set of kept game ids and the seed
    kept_ids = game_ids[kept]
    if len(np.unique(kept_ids)) != len(kept_ids):
        raise AssertionError("a game id in two kept groups: duplicates were not left out")
    group_split = np.full(len(game_ids), -1, dtype=np.int64)
    masks = split_by_game(kept_ids, ratios, seed=seed)
    for i, split in enumerate(SPLITS):
        group_split[np.flatnonzero(kept)[masks[split]]] = i

    # offsets: partitions in order, each one's rows of a split after the previous ones'
    n_parts = len(summaries)
    per_part = np.zeros((n_parts, len(SPLITS)), dtype=np.int64)
    for i in range(len(SPLITS)):
        sel = group_split == i
        per_part[:, i] = np.bincount(part_of_group[sel], group_rows[sel], minlength=n_parts)
    starts = np.cumsum(per_part, axis=0) - per_part
    first_row = [{s: int(starts[p, i]) for i, s in enumerate(SPLITS)} for p in range(n_parts)]
    split_rows = {s: int(per_part[:, i].sum()) for i, s in enumerate(SPLITS)}

    # the scaler's leaves: the train games in game-id order, in buckets (merged on the
    # workers, from the statistics they hold: moments_tree)
    train = np.flatnonzero(group_split == 0)
    train = train[np.argsort(game_ids[train], kind="stable")]
    position = np.arange(len(train))
    buckets = []
    for first, stop in bucket_bounds(len(train)):
        in_bucket = train[first:stop]
        parts = part_of_group[in_bucket]
        buckets.append((first, stop, [
            (int(p), order_in_part[in_bucket[parts == p]], position[first:stop][parts == p])
            for p in np.unique(parts).tolist()
        ]))

    return Plan(
        rejections=rejections,
        rows_read=rows_read,
        rows_kept=rows_kept,
        group_split=[group_split[part_of_group == p] for p in range(n_parts)],
        first_row=first_row,
        split_rows=split_rows,
        splits=split_stats(group_split[kept], rows[kept], game_ids[kept]),
        buckets=buckets,
        width=width,
        continuous=np.asarray(continuous, dtype=np.int64),
    )


def preallocate(folder: Path, split_rows: dict[str, int], width: int) -> dict[str, SplitFile]:
    """``X_{split}.npy`` of the right shape in ``folder`` (their data not written yet), and
    ``labels_{split}.npz`` / ``masks_{split}.npz`` laid out for their rows (written in pieces
    by the partitions, then sealed: :mod:`~imitation_learning.dataset.npz_pieces`)."""
    out = {}
    for split in SPLITS:
        for name, layout in labels_masks_layouts(split_rows[split]).items():
            npz_preallocate(folder / f"{name}_{split}.npz", layout)
        path = folder / f"X_{split}.npy"
        mm = np.lib.format.open_memmap(
            path, mode="w+", dtype=np.float32, shape=(split_rows[split], width)
        )
        out[split] = SplitFile(str(path), int(mm.offset), 0)
        del mm
    return out


def targets(files: dict[str, SplitFile], first_row: dict[str, int]) -> dict[str, SplitFile]:
    """The split files with a partition's first row in each."""
    return {s: SplitFile(f.path, f.data_offset, first_row[s]) for s, f in files.items()}


def pieces(folder: Path, plan: Plan, i: int) -> dict[str, SplitPieces]:
    """Where partition ``i``'s labels and masks of each split go."""
    return {s: SplitPieces(str(folder), s, plan.split_rows[s], plan.first_row[i][s])
            for s in SPLITS}


def fit_scaler_here(plan: Plan, leaves_of: Callable[..., Leaves]) -> Scaler:
    """The scaler by the tree of :mod:`~imitation_learning.dataset.moments_tree`, in this
    process; ``leaves_of(partition, groups, positions)`` gives a partition's leaves."""
    nodes = [
        merge_bucket(first, stop, len(plan.continuous),
                     *(leaves_of(p, groups, positions) for p, groups, positions in parts))
        for first, stop, parts in plan.buckets
    ]
    return scaler_from_buckets(plan.width, plan.continuous, *nodes)


def strategic_width(summaries: Sequence[PartitionSummary], feature_engineering: bool) -> int:
    """The strategic features' width: the partitions', else (no row kept) the configured."""
    for s in summaries:
        if s.rows:
            return s.strategic_width
    from imitation_learning.per_file.features import NUM_FEATURES

    return NUM_FEATURES if feature_engineering else 0
