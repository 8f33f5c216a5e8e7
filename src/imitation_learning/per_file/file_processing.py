"""The per-file step of the preprocessing job: one game log in, one :class:`FileResult` out.

``process_game_log(path, config)``:

1. read the file (``splendor.log_reader.read_game_log``, bad rows rejected by the reader);
2. labels of the 7 heads and the decision-consistency check, on the raw rows;
3. legal-action masks from the raw rows (all ones when masking is disabled), and the
   legality check: a row whose label is not set in its mask is rejected;
4. only for the rows kept: fill + compaction, the compact-dtype ``df``, and the strategic
   features (shape ``(n, 0)`` when feature engineering is disabled).

Every data row read ends up either in the outputs or in exactly one :class:`Rejection`
(``FileResult.check_accounting``). A file that cannot be read gives a result with no rows
and one file-level rejection; so does a file holding only its header (no data row). Under
``preprocessing.strict`` the first rejection raises :class:`StrictModeError` instead. The
function is pure (no printing, no global state), and its result is picklable, so it runs
unchanged in Dask worker processes.

``process_game_logs(paths, config)`` gives the same results for several files, faster: the
steps after the read run on several files' rows at once (see :data:`BATCH_ROWS`).
"""

from __future__ import annotations

import os
from bisect import bisect_right
from collections.abc import Iterator, Sequence
from itertools import accumulate

import numpy as np
import pandas as pd

from imitation_learning.per_file.compaction import build_frame, compact, empty_frame
from imitation_learning.per_file.features import NUM_FEATURES, compute_features
from imitation_learning.per_file.labels import compute_labels, find_inconsistent_rows
from imitation_learning.per_file.masks import compute_masks, masks_contain_labels
from imitation_learning.per_file.results import FileResult
from imitation_learning.per_file.settings import StepSettings
from splendor import columns as C
from splendor.errors import GameLogError, Rejection
from splendor.log_reader import GameLog, read_game_log


class StrictModeError(Exception):
    """Under ``preprocessing.strict``, the first thing rejected: the job stops on it.

    ``rejection`` is the :class:`Rejection`; the message is its text. Picklable, so it
    travels from a Dask worker to the driver unchanged.
    """

    def __init__(self, rejection: Rejection):
        super().__init__(f"strict mode: input rejected: {rejection}")
        self.rejection = rejection

    def __reduce__(self):
        return type(self), (self.rejection,)


def _settings(config) -> tuple[int, bool, bool]:
    """(blind reserve base, masking on, features on) of a :class:`StepSettings`, a run's
    settings or a configuration dict (missing sections mean the defaults)."""
    step = StepSettings.of(config)
    return step.blind_reserve_base, step.enable_masking, step.enable_feature_engineering


def _ones_masks(n: int) -> dict[str, np.ndarray]:
    return {head: np.ones((n, classes), dtype=bool) for head, classes in C.HEADS.items()}


def empty_result(config: dict | None = None) -> FileResult:
    """A result with no rows: the right ``df`` columns and dtypes, features ``(0, F)`` (or
    ``(0, 0)`` with feature engineering disabled), int16 labels ``(0,)``, bool masks
    ``(0, classes)``."""
    _, _, features_on = _settings(config)
    return FileResult(
        df=empty_frame(),
        features=np.empty((0, NUM_FEATURES if features_on else 0), dtype=np.float32),
        labels={head: np.empty(0, dtype=np.int16) for head in C.HEADS},
        masks=_ones_masks(0),
    )


def _file_rejected(rejection: Rejection, config: dict | None) -> FileResult:
    result = empty_result(config)
    result.rejections = [rejection]
    result.rows_read = rejection.rows
    return result


def _row_rejections(
    name: str,
    line_numbers: np.ndarray,
    problems: list[tuple[int, str, str]],
) -> tuple[np.ndarray, list[Rejection]]:
    """One rejection per faulty row (its problems joined), and the bool ``(n,)`` keep mask."""
    keep = np.ones(len(line_numbers), dtype=bool)
    by_row: dict[int, list[tuple[str, str]]] = {}
    for row, column, reason in problems:
        by_row.setdefault(row, []).append((column, reason))
    rejections = []
    for row in sorted(by_row):
        found = by_row[row]
        keep[row] = False
        rejections.append(
            Rejection(
                file=name,
                line=int(line_numbers[row]),
                column=found[0][0],
                reason="; ".join(reason for _, reason in found),
            )
        )
    return keep, rejections


def _illegal_decisions(
    masks: dict[str, np.ndarray], labels: dict[str, np.ndarray], candidates: np.ndarray
) -> list[tuple[int, str, str]]:
    """``(row, head, reason)`` for each label (of a ``candidates`` row) not set in its mask,
    sorted by row, then head (``labels`` order)."""
    contained = masks_contain_labels(masks, labels)
    heads = list(contained)
    illegal = ~np.stack(list(contained.values()), axis=1) & candidates[:, None]  # (n, heads)
    if not illegal.any():
        return []
    problems = []
    for row, k in zip(*np.nonzero(illegal), strict=True):
        head = heads[k]
        reason = (
            f"decision not legal in its state: {head} class {int(labels[head][row])} "
            "is not among the legal classes of that state"
        )
        problems.append((int(row), head, reason))
    return problems


def process_game_log(path: str | os.PathLike, config: dict | None = None) -> FileResult:
    """Read, check and transform one game log (see the module docstring).

    With ``preprocessing.strict`` on, the first rejection of the file (file-level, else its
    first row) raises :class:`StrictModeError` instead of being returned.
    """
    return next(process_game_logs([path], config))


#: Data rows gathered from consecutive files before the row steps run on them at once
#: (:func:`process_game_logs`). The steps cost about as much per call as per 50 rows; a
#: few hundred rows amortise that while their temporaries stay in the processor's cache
#: (docs/benchmarks.md, "Settings in the code").
BATCH_ROWS = 320


def process_game_logs(
    paths: Sequence[str | os.PathLike], config: dict | None = None
) -> Iterator[FileResult]:
    """:func:`process_game_log` of each path, in order: the same results, made faster.

    Every step after the read works row by row, so the files' rows are run through the
    steps together, about :data:`BATCH_ROWS` at a time, and split back into one result per
    file (a row's rejection names its own file and line). Results come as each batch is
    done; under ``preprocessing.strict`` the first file with a rejection raises
    :class:`StrictModeError` when its turn comes (the files after it in its batch are read,
    not returned).
    """
    for result, _ in _batches(paths, config, joined=False):
        yield result


#: What the job keeps of each file besides its rows: (name, rows read, rows kept, game ids
#: in order of appearance).
FileEntry = tuple[str, int, int, list[int]]


def process_game_logs_joined(
    paths: Sequence[str | os.PathLike], config: dict | None = None
) -> Iterator[tuple[FileResult, list[FileEntry]]]:
    """:func:`process_game_logs` for a job that concatenates the results: consecutive files
    read whole come as one result (their results concatenated: rows one after the other,
    rejections and files in order; a file rejected whole comes alone), each with the
    :data:`FileEntry` of its files. No frame is made per file, nor taken apart again."""
    return _batches(paths, config, joined=True)


def _batches(paths, config: dict | None, joined: bool):
    strict = StepSettings.of(config).strict
    batch: list[tuple[str, GameLog | FileResult]] = []
    rows = 0
    for i, path in enumerate(paths):
        name = os.fspath(path)
        read = _read(path, name, config)
        batch.append((name, read))
        rows += len(read) if isinstance(read, GameLog) else 0
        if rows >= BATCH_ROWS or i == len(paths) - 1:
            for result, entries in _process_batch(batch, config, joined):
                if result.rejections and strict:
                    raise StrictModeError(result.rejections[0])
                yield result, entries
            batch, rows = [], 0


def _read(path: str | os.PathLike, name: str, config: dict | None) -> GameLog | FileResult:
    """The file's rows, or its result when the file is rejected as a whole."""
    base, _, _ = _settings(config)
    try:
        log = read_game_log(path, blind_reserve_base=base, on_bad_row="reject")
    except GameLogError as exc:
        return _file_rejected(exc.rejection, config)
    except OSError as exc:
        return _file_rejected(
            Rejection(name, None, None, f"cannot read the file: {exc}", 0), config
        )
    if log.rows_read == 0:  # a game log without a single decision: truncated or not a log
        return _file_rejected(
            Rejection(name, None, None, "no data row: the file holds only its header", 0),
            config,
        )
    return log


def _process_batch(
    batch: list[tuple[str, GameLog | FileResult]], config: dict | None, joined: bool = False
) -> list[tuple[FileResult, list[FileEntry]]]:
    """The row steps on the rows of the batch's logs at once, then one result per file (or,
    ``joined``, per run of consecutive logs), each with its files' entries."""
    _, masking_on, features_on = _settings(config)
    # A file rejected whole has its result already; the logs' places are filled below.
    out: list = [
        None if isinstance(read, GameLog) else (read, [(name, read.rows_read, 0, [])])
        for name, read in batch
    ]
    logs = [(i, name, read) for i, (name, read) in enumerate(batch) if isinstance(read, GameLog)]
    if not logs:
        return out
    values = (
        np.concatenate([log.values for _, _, log in logs]) if len(logs) > 1 else logs[0][2].values
    )
    starts = list(accumulate((len(log) for _, _, log in logs), initial=0))  # first rows
    n = len(values)
    labels = compute_labels(values)
    problems = find_inconsistent_rows(values, labels)
    masks = compute_masks(values) if masking_on else _ones_masks(n)
    if masking_on:
        consistent = np.ones(n, dtype=bool)
        consistent[[row for row, _, _ in problems]] = False
        problems += _illegal_decisions(masks, labels, consistent)

    # Each file's problems, in the order they came (so as the file's own run orders them),
    # with its own row numbers; then its rejections and rows kept.
    own: list[list[tuple[int, str, str]]] = [[] for _ in logs]
    for row, column, reason in problems:
        f = bisect_right(starts, row) - 1
        own[f].append((row - starts[f], column, reason))
    keeps, rejections = [], []
    for (_, name, log), found in zip(logs, own, strict=True):
        keep, rows_rejected = _row_rejections(name, log.line_numbers, found)
        keeps.append(keep)
        rejections.append(list(log.rejections) + rows_rejected)
    keep = np.concatenate(keeps) if len(keeps) > 1 else keeps[0]
    kept = list(accumulate((int(np.count_nonzero(k)) for k in keeps), initial=0))

    if not keep.all():
        values = values[keep]
        labels = {head: label[keep] for head, label in labels.items()}
        masks = {head: mask[keep] for head, mask in masks.items()}
    compacted = compact(values)
    if features_on:
        features = compute_features(compacted)
    else:
        features = np.empty((len(values), 0), dtype=np.float32)
    game_ids = compacted.values[:, C.GAME_ID_COL].astype(np.int64)  # as in the frame

    def result(first: int, stop: int) -> tuple[FileResult, list[FileEntry]]:
        """The result of logs ``first`` to ``stop - 1`` (their rows are consecutive)."""
        rows = slice(kept[first], kept[stop])
        files = range(first, stop)
        entries = [
            (logs[f][1], logs[f][2].rows_read, kept[f + 1] - kept[f],
             [int(g) for g in pd.unique(game_ids[kept[f] : kept[f + 1]])])
            for f in files
        ]
        return FileResult(
            df=build_frame(compacted.rows(rows) if len(logs) > 1 else compacted),
            features=features[rows],
            labels={head: label[rows].astype(np.int16, copy=False) for head, label in labels.items()},
            masks={head: mask[rows].astype(bool, copy=False) for head, mask in masks.items()},
            rejections=[r for f in files for r in rejections[f]],
            rows_read=sum(logs[f][2].rows_read for f in files),
            files_ok=[logs[f][1] for f in files],
        ), entries

    if not joined:
        for f, (i, _, _) in enumerate(logs):
            out[i] = result(f, f + 1)
        return out
    # Runs of consecutive logs, each in its first log's place (a file rejected whole between
    # two logs ends a run, so that the rejections stay in file order).
    run_start = 0
    for f in range(1, len(logs) + 1):
        if f == len(logs) or logs[f][0] != logs[f - 1][0] + 1:
            out[logs[run_start][0]] = result(run_start, f)
            run_start = f
    return [part for part in out if part is not None]
