"""What a worker does for the saved dataset in phase 1: a partition's rows of X and their
statistics (:mod:`imitation_learning.job.phases` runs it as the bag's task, and plans the
work after it):

- :func:`process_partition_rows` runs the per-file step on the
  partition's files, builds its rows of X (float32) and keeps them with their labels, masks
  and game ids (a :class:`PartitionRows`, held in the worker's memory until the run ends),
  together with float64 partial statistics (count, mean, M2 of the continuous columns) of
  every game of every file;
- with a spill folder, X goes into a spill file (compacted blocks:
  :mod:`imitation_learning.spill_arrays`), and the labels, masks and per-game statistics
  are parked in a side file next to it (read back when used, never resident);
- ``summarise-partition``: :func:`summarise_partition` is the little the driver needs from
  it (:class:`~imitation_learning.partition_summary.PartitionSummary`: accounting, file
  index, game ids; never the per-game statistics); ``bucket-leaves``:
  :func:`bucket_leaves`, a partition's share of the scaler's tree;
- the writes of phase 2 (``write-x-rows``, ``write-labels-masks``) are in
  :mod:`imitation_learning.partition_writes`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from imitation_learning.dataset.feature_matrix import CONTINUOUS, build_feature_matrix
from imitation_learning.dataset.moments_tree import Leaves
from imitation_learning.dataset.scaler import Moments
from imitation_learning.partition_summary import GameGroups, PartitionSummary
from imitation_learning.per_file.settings import StepSettings
from imitation_learning.result_cache import CacheCounts, CacheSpec, Lookup, MappedRows, Piece
from imitation_learning.spill_arrays import append_block, new_file, park, read_blocks
from splendor.errors import Rejection
from splendor.limits import PLAYER_COUNTS


@dataclass
class PartitionRows:
    """A partition's rows as the saved dataset needs them (kept by the worker).

    X is either in memory or, when the run gave a spill folder, in a spill file there
    (``spill``; ``X`` is then None until :meth:`load_x`), raw float32 rows. A partition
    made with the result cache holds X as ``parts`` instead: its files' rows, in order,
    mapped from their cache entries when they are written (never copied, never spilled;
    an entry replaced or removed meanwhile: the partition's X is made again from the
    files, the same rows bit for bit).
    """

    X: np.ndarray | None  # float32 (n, F), unscaled
    row_group: np.ndarray  # int32 (n,): the entry of ``summary.groups`` of each row
    labels: dict[str, np.ndarray]
    masks: dict[str, np.ndarray]
    summary: PartitionSummary = field(repr=False)
    spill: str | None = None
    paths: tuple[str, ...] = ()
    config: dict = field(default_factory=dict, repr=False)
    cache: CacheSpec | None = None
    parts: list[np.ndarray | MappedRows] | None = field(default=None, repr=False)
    # the spill file's blocks (rows, stored dtype: spill_arrays.append_block), and the
    # file the labels, masks and per-game statistics are parked in (spill_arrays.park)
    spill_blocks: list[tuple[int, str]] | None = None
    side: str | None = None

    def x_blocks(self, as_stored: bool = False) -> Iterator[tuple[int, np.ndarray]]:
        """X as blocks of consecutive rows: ``(first row, rows)``, in order.
        ``as_stored``: rows mapped from cache entries as they are stored there (int8 when
        exact: see :meth:`MappedRows.load`), not made float32."""
        if self.parts is None and self.X is None and self.spill_blocks is not None:
            if os.path.exists(self.spill):
                try:
                    yield from read_blocks(self.spill, self.spill_blocks, self.summary.width,
                                           as_stored)
                    return
                except FileNotFoundError:  # removed between the test and the map
                    pass
            yield 0, self.load_x()  # made again from the files
            return
        if self.parts is None:
            yield 0, self.load_x()
            return
        first, rebuilt = 0, None
        for part in self.parts:
            block = part if isinstance(part, np.ndarray) else part.load(as_stored)
            if block is None and rebuilt is None:  # its entry was replaced or removed
                rebuilt = _rows(self.paths, self.config, None, None)[0]
            if block is None:
                block = rebuilt[first : first + len(part)]
            yield first, block
            first += len(part)
            del block

    def load_x(self) -> np.ndarray:
        """X, from memory or from the spill file. A spill file that is gone (its write ran
        already and a lost result made Dask run it again) is made again from the files:
        the same rows, bit for bit."""
        if self.X is not None:
            return self.X
        shape = (self.summary.rows, self.summary.width)
        if self.parts is not None:
            blocks = [block for _, block in self.x_blocks()]
            return np.concatenate(blocks) if blocks else np.empty(shape, np.float32)
        try:
            if not shape[0]:
                return np.empty(shape, dtype=np.float32)
            if self.spill_blocks is not None:
                blocks = [b for _, b in read_blocks(self.spill, self.spill_blocks, shape[1])]
                return _joined(blocks)
            # mapped, not copied: the rows are read straight from the file cache
            return np.memmap(self.spill, dtype=np.float32, mode="r", shape=shape)
        except FileNotFoundError:
            X = process_partition_rows(self.paths, self.config, cache=self.cache).load_x()
            if X.shape != shape:
                raise AssertionError(f"partition rebuilt as {X.shape}, was {shape}") from None
            return X

    def labels_masks(self) -> tuple[dict, dict]:
        """The labels and masks, read when parked; parked files that are gone (their write
        ran already and Dask runs it again) made again from the files, the same arrays."""
        try:
            return ({h: np.asarray(a) for h, a in self.labels.items()},
                    {h: np.asarray(a) for h, a in self.masks.items()})
        except FileNotFoundError:
            again = process_partition_rows(self.paths, self.config, cache=self.cache)
            return again.labels, again.masks

    def drop_spill(self) -> None:
        """Remove the spill files (their maps held here stay readable until released)."""
        for path in (self.spill, self.side):
            if path is not None:
                Path(path).unlink(missing_ok=True)

    def park_side(self, path: str) -> None:
        """Labels, masks and per-game statistics into the new file ``path``
        (:func:`~imitation_learning.spill_arrays.park`): out of the worker's memory until the
        scaler and the writes read them."""
        g = self.summary.groups
        arrays = {f"l/{h}": a for h, a in self.labels.items()}
        arrays.update({f"m/{h}": a for h, a in self.masks.items()})
        arrays.update({"mean": g.mean, "m2": g.m2})
        mapped = park(path, arrays)
        self.labels = {h: mapped[f"l/{h}"] for h in self.labels}
        self.masks = {h: mapped[f"m/{h}"] for h in self.masks}
        g.mean, g.m2 = mapped["mean"], mapped["m2"]
        self.side = path


def continuous_columns(kinds: Sequence[str]) -> np.ndarray:
    return np.flatnonzero(np.asarray(kinds) == CONTINUOUS)


def spill_name(paths: Sequence[str], config: Mapping) -> str:
    """The spill file name of a partition: a hash of its file paths (in order) and of the
    configuration, so the same partition of the same run always gets the same name."""
    digest = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode())
    for path in paths:
        digest.update(b"\0" + os.fspath(path).encode())
    return f".x-unscaled-{len(paths):05d}-{digest.hexdigest()[:24]}.f32"


#: Files run through the per-file step and X at a time within a partition. A group's
#: arrays (X: about 80 rows of 5 KB per file) stay under glibc's largest mmap threshold
#: (32 MiB), so malloc hands the next group the memory the last one used, already mapped;
#: a whole partition's X (~45 MB) was mapped afresh every time, and first writes into new
#: pages are slow on the machines measured here (docs/benchmarks.md, "Settings in the code").
GROUP_FILES = 32


def process_partition_rows(
    paths: Sequence[str],
    config: dict,
    file_processor: Callable | None = None,
    on_file_done: Callable[[], None] | None = None,
    *,
    spill_dir: str | None = None,
    cache: CacheSpec | None = None,
) -> PartitionRows:
    """The per-file step on each path, X built, per-game statistics (runs on a worker).

    The files go :data:`GROUP_FILES` at a time; X is the groups' rows in order (the same
    rows as one pass over the partition: X and the statistics are made row by row and file
    by file).

    ``spill_dir`` (an existing folder, the save's temporary folder): X goes into a spill
    file there, group by group, instead of staying in memory. Its pages are the system's
    file cache; when the write of phase 2 reads it back and deletes it, the output's pages
    reuse them (memory the system had just used is much faster to get than memory it never
    touched, on the virtual machines measured here).

    ``cache`` (:mod:`imitation_learning.result_cache`): each file's share of the
    partition (its rows of X, labels, masks, game statistics and report) is taken from the
    cache when its key is there; the other files go through the per-file step together,
    as without a cache, and their shares are stored. The partition is then their shares
    in path order: the same arrays, bit for bit, as without a cache (the rows of X and the
    statistics of a game depend on that file's rows only). Ignored with a custom
    ``file_processor``."""
    spill = None if spill_dir is None else os.path.join(spill_dir, spill_name(paths, config))
    if cache is not None and file_processor is None and len(paths):
        parts, row_group, labels, masks, summary = _rows_with_cache(
            paths, config, on_file_done, cache
        )
        rows = PartitionRows(None, row_group, labels, masks, summary, parts=parts)
        rows.paths, rows.config = tuple(paths), config
        if spill is not None:
            rows.park_side(spill + SIDE_SUFFIX)
        return rows
    X, row_group, labels, masks, summary = _rows(
        paths, config, file_processor, on_file_done, spill=spill
    )
    rows = PartitionRows(None if spill is not None else X, row_group, labels, masks, summary)
    if spill is not None:
        rows.paths, rows.config, rows.cache, rows.spill = tuple(paths), config, cache, spill
        rows.spill_blocks = X
        rows.park_side(spill + SIDE_SUFFIX)
    return rows


#: The name of the file a spilled partition's labels, masks and game statistics are parked
#: in: its spill file's name and this.
SIDE_SUFFIX = ".side"


def _rows(paths, config, file_processor, on_file_done, *, spill: str | None = None):
    """The per-file step on ``paths`` (:data:`GROUP_FILES` at a time), X and the game
    groups: ``(X, row_group, labels, masks, summary)``; X is None when it went into the
    new file ``spill`` (X is then the list of its blocks: ``spill_arrays.append_block``)."""
    from imitation_learning.per_file.partition import FILE_INDEX_ATTR, process_partition

    blocks, results, file_index, row_groups, groups = [], [], [], [], []
    width = strategic_width = 0
    with _new_file(spill) as write:
        for first in range(0, max(len(paths), 1), GROUP_FILES):
            result = process_partition(
                paths[first : first + GROUP_FILES], config, file_processor, on_file_done
            )
            index = result.df.attrs.pop(FILE_INDEX_ATTR)
            X, _, kinds = build_feature_matrix(result.df, result.features)
            width, strategic_width = X.shape[1], result.features.shape[1]
            game_ids = result.df["game_id"].to_numpy().astype(np.int64)
            num_players = result.df["num_players"].to_numpy().astype(np.int64)
            result.df = result.features = None
            row_group, group = _game_groups(X, game_ids, num_players, index, kinds)
            row_groups.append(row_group + sum(len(g) for g in groups))
            group.file += len(file_index)  # positions in the partition's file index
            groups.append(group)
            file_index += index
            results.append(result)
            if write is None:
                blocks.append(X)
            else:
                blocks.append(write(X))
            del X
    summary = PartitionSummary(
        file_index=file_index,
        rejections=[r for result in results for r in result.rejections],
        rows_read=sum(result.rows_read for result in results),
        files_ok=[f for result in results for f in result.files_ok],
        rows=sum(len(g) for g in row_groups),
        width=width,
        strategic_width=strategic_width,
        groups=GameGroups.concat(groups),
    )
    heads = list(results[0].labels)
    X = blocks if write is not None else _joined(blocks)
    labels = {h: _joined([r.labels[h] for r in results]) for h in heads}
    masks = {h: _joined([r.masks[h] for r in results]) for h in heads}
    return X, _joined(row_groups), labels, masks, summary


def _rows_with_cache(paths, config, on_file_done, cache: CacheSpec):
    """:func:`_rows` with the files' shares taken from, or stored into, the cache."""
    from imitation_learning.per_file.file_processing import StrictModeError

    lookup = Lookup(cache)
    strict = StepSettings.of(config).strict
    paths = [os.fspath(p) for p in paths]
    pieces: list[Piece | None] = []
    keys = []
    for path in paths:
        piece, key = lookup.find(path)
        if piece is not None and strict and piece.rejections:
            # stop where a run without the cache would: at the first rejection in order
            earlier = [p for p, done in zip(paths, pieces, strict=False) if done is None]
            if earlier:
                _rows(earlier, config, None, None)  # raises at an earlier rejection, if any
            raise StrictModeError(piece.rejections[0])
        if piece is not None and on_file_done is not None:
            on_file_done()
        pieces.append(piece)
        keys.append(key)
    missing = [i for i, piece in enumerate(pieces) if piece is None]
    for first in range(0, len(missing), GROUP_FILES):
        # a group at a time, as without a cache: its arrays reuse the last group's memory
        group = missing[first : first + GROUP_FILES]
        fresh = [paths[i] for i in group]
        block = _rows(fresh, config, None, on_file_done)
        made = _split(block, fresh)
        del block  # the pieces are views of its arrays: freed once they are mapped
        if made is None:  # a rejection that names no file of the block: no cache here
            lookup.counts.processed += len(missing) - first
            lookup.counts.not_stored += len(missing) - first
            X, row_group, labels, masks, summary = _rows(paths, config, None, None)
            summary.cache = lookup.counts
            return [X], row_group, labels, masks, summary
        for i, piece in zip(group, made, strict=True):
            # from its entry, once stored: the fresh rows leave the worker's memory
            pieces[i] = lookup.store(paths[i], keys[i], piece) or piece
    return _join(paths, pieces, lookup.counts)  # type: ignore[arg-type]


def _split(block, paths: Sequence[str]) -> list[Piece] | None:
    """A block's (:func:`_rows` of ``paths``) share of each of its files; None if its
    rejections cannot all be given to its files (one names another file)."""
    X, row_group, labels, masks, summary = block
    by_file: dict[str, list[Rejection]] = {p: [] for p in paths}
    for r in summary.rejections:
        if r.file not in by_file:
            return None
        by_file[r.file].append(r)
    files_ok = set(summary.files_ok)
    g = summary.groups
    out = []
    start = g_start = 0
    for position, (path, rows_read, kept, game_ids) in enumerate(summary.file_index):
        stop = start + kept
        g_stop = g_start + int(np.count_nonzero(g.file == position))
        out.append(
            Piece(
                rows_read=rows_read,
                game_ids=list(game_ids),
                rejections=by_file[path],
                file_ok=path in files_ok,
                strategic_width=summary.strategic_width,
                X=X[start:stop],
                row_group=(row_group[start:stop] - g_start).astype(np.int32),
                labels={h: a[start:stop] for h, a in labels.items()},
                masks={h: a[start:stop] for h, a in masks.items()},
                group_game_id=g.game_id[g_start:g_stop],
                group_rows=g.rows[g_start:g_stop],
                group_mean=g.mean[g_start:g_stop],
                group_m2=g.m2[g_start:g_stop],
            )
        )
        start, g_start = stop, g_stop
    if start != len(X) or g_start != len(g):
        raise AssertionError("a block's rows or games not all given to its files")
    return out


def _join(paths: Sequence[str], pieces: Sequence[Piece], counts: CacheCounts):
    """The partition made of its files' shares, in path order (as :func:`_rows`; X as
    the files' blocks of rows)."""
    X = [p.X for p in pieces]
    offsets = np.cumsum([0] + [len(p.group_game_id) for p in pieces])
    row_group = np.concatenate(
        [p.row_group.astype(np.int32) + np.int32(o) for p, o in zip(pieces, offsets, strict=False)]
    )
    groups = GameGroups(
        file=np.concatenate(
            [np.full(len(p.group_game_id), i, dtype=np.int64) for i, p in enumerate(pieces)]
        ),
        game_id=np.concatenate([p.group_game_id for p in pieces]).astype(np.int64),
        rows=np.concatenate([p.group_rows for p in pieces]).astype(np.int64),
        mean=np.concatenate([p.group_mean for p in pieces]).astype(np.float64),
        m2=np.concatenate([p.group_m2 for p in pieces]).astype(np.float64),
    )
    heads = list(pieces[0].labels)
    labels = {h: np.concatenate([p.labels[h] for p in pieces]) for h in heads}
    masks = {h: np.concatenate([p.masks[h] for p in pieces]) for h in heads}
    with_rows = [p for p in pieces if p.rows]
    summary = PartitionSummary(
        file_index=[
            (path, p.rows_read, p.rows, list(p.game_ids))
            for path, p in zip(paths, pieces, strict=True)
        ],
        rejections=[r for p in pieces for r in p.rejections],
        rows_read=sum(p.rows_read for p in pieces),
        files_ok=[path for path, p in zip(paths, pieces, strict=True) if p.file_ok],
        rows=sum(len(x) for x in X),
        width=X[0].shape[1],
        strategic_width=(with_rows or pieces)[0].strategic_width,
        groups=groups,
        cache=counts,
    )
    return X, row_group, labels, masks, summary


def _joined(arrays: list[np.ndarray]) -> np.ndarray:
    """The arrays one after the other (the array itself when there is one)."""
    return arrays[0] if len(arrays) == 1 else np.concatenate(arrays)


@contextmanager
def _new_file(path: str | None) -> Iterator[Callable[[np.ndarray], None] | None]:
    """A function writing blocks' bytes one after the other into the new file ``path``
    (``None`` when ``path`` is None), written as :func:`spill_arrays.new_file` does:
    renamed into place when the block ends without an error, else removed."""
    if path is None:
        yield None
        return
    with new_file(path) as fd:

        def write(block: np.ndarray) -> tuple[int, str]:
            return append_block(fd, block)  # int8 when exact: a quarter of the bytes

        yield write


def _game_groups(
    X: np.ndarray,
    game_ids: np.ndarray,
    num_players: np.ndarray,
    file_index: Sequence[tuple[str, int, int, list[int]]],
    kinds: Sequence[str],
) -> tuple[np.ndarray, GameGroups]:
    """Group the rows by (file, game id) in order of appearance; the statistics of each
    group are those of its rows alone, so they do not depend on the partitioning."""
    cont = continuous_columns(kinds)
    row_group = np.empty(len(X), dtype=np.int32)
    files, ids, rows, means, m2s = [], [], [], [], []
    start = 0
    for position, (_, _, kept, _) in enumerate(file_index):
        stop = start + kept
        if kept:
            unique, first, inverse = np.unique(
                game_ids[start:stop], return_index=True, return_inverse=True
            )
            order = np.argsort(first, kind="stable")  # games in order of appearance
            rank = np.empty_like(order)
            rank[order] = np.arange(len(order))
            row_group[start:stop] = len(files) + rank[inverse]
            block = X[start:stop]  # all columns: a column gather costs more than it saves
            players = num_players[start:stop]
            for k in order:
                sel = inverse == k
                m = Moments.of_rows(block if sel.all() else block[sel])
                m = Moments(m.count, m.mean[cont], m.m2[cont])
                files.append(position)
                ids.append(int(unique[k]))
                rows.append([int(np.count_nonzero(players[sel] == n)) for n in PLAYER_COUNTS])
                if sum(rows[-1]) != m.count:
                    raise AssertionError(f"game {unique[k]}: rows outside 2-4 players")
                means.append(m.mean)
                m2s.append(m.m2)
        start = stop
    if start != len(X):
        raise AssertionError(f"file index covers {start} rows, the partition has {len(X)}")
    width = len(cont)
    groups = GameGroups(
        file=np.asarray(files, dtype=np.int64),
        game_id=np.asarray(ids, dtype=np.int64),
        rows=np.asarray(rows, dtype=np.int64).reshape(-1, len(PLAYER_COUNTS)),
        mean=np.asarray(means, dtype=np.float64).reshape(-1, width),
        m2=np.asarray(m2s, dtype=np.float64).reshape(-1, width),
    )
    return row_group, groups


def summarise_partition(rows: PartitionRows) -> PartitionSummary:
    """What the driver gets: the summary without the per-game statistics."""
    return dataclasses.replace(rows.summary, groups=rows.summary.groups.without_moments())


def bucket_leaves(rows: PartitionRows, groups: np.ndarray, positions: np.ndarray) -> Leaves:
    """The ``bucket-leaves`` task: the partition's game groups ``groups`` (train games of
    one bucket of the scaler's tree, :mod:`~imitation_learning.dataset.moments_tree`) as
    leaves at ``positions``."""
    return rows.summary.groups.leaves(groups, positions)


def rows_in_memory(rows: PartitionRows) -> PartitionRows:
    """The partition with X in memory (for a driver that cannot see the cache's entries
    the rows of a cached partition are mapped from)."""
    if rows.parts is None:
        return rows
    return dataclasses.replace(rows, X=rows.load_x(), parts=None)
