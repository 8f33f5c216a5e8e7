"""The per-file step over a partition's files: their results in order, concatenated into
the partition's :class:`~imitation_learning.per_file.results.FileResult`, with its file
index (:data:`FILE_INDEX_ATTR`: each file's row counts and game ids, what the job's
accounting needs)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import numpy as np

from imitation_learning.per_file.results import FileResult, pack_features

FileProcessor = Callable[[str, dict], FileResult]
#: One file of a partition's file index: ``(path, rows_read, rows_kept, game_ids)``.
FileIndexEntry = tuple[str, int, int, list[int]]


def default_step() -> FileProcessor:
    """The per-file step a partition runs unless told otherwise (imported on first use)."""
    from imitation_learning.per_file import file_processing

    return file_processing.process_game_log


def empty_result(config: dict) -> FileResult:
    """The result of no file at all (the outputs' columns, no row)."""
    from imitation_learning.per_file import file_processing

    return file_processing.empty_result(config)


#: ``df.attrs`` key of a partition's per-file index: ``(path, rows_read, rows_kept,
#: game_ids)`` for each file, in order. The driver uses it to find games present in two
#: files (:func:`reject_duplicate_games`) and drops it before concatenating.
FILE_INDEX_ATTR = "file_index"


def file_index_entry(path: str, part: FileResult) -> FileIndexEntry:
    """The file index entry of one file's result."""
    ids = part.df["game_id"].unique().tolist() if "game_id" in part.df else []
    return (path, part.rows_read, len(part.df), [int(i) for i in ids])


def pop_file_index(part: FileResult) -> list[FileIndexEntry]:
    """A partition's file index, taken out of its ``df.attrs``."""
    return part.df.attrs.pop(FILE_INDEX_ATTR, [])


def process_partition(
    paths: Sequence[str],
    config: dict,
    file_step: FileProcessor | None = None,
    on_file_done: Callable[[], None] | None = None,
    *,
    pack: bool = False,
) -> FileResult:
    """Run the per-file step on each path, in order, and concatenate (runs on a worker).

    ``pack``: hold the features as uint8 when exact (:func:`pack_features`, file by file,
    before concatenating), as the job does: the partition is then a quarter of the size
    to keep and to send, and the driver's final concatenation makes them float32 again.
    The result's ``df.attrs[FILE_INDEX_ATTR]`` lists the files' row counts and game ids.
    """
    process = file_step or default_step()
    parts, index = [], []
    for part, entries in _parts(process, paths, config):
        if pack:
            part.features = pack_features(part.features)
        parts.append(part)
        index += entries
        if on_file_done is not None:
            for _ in entries:
                on_file_done()
    if not parts:
        result = empty_result(config)
    else:
        result = FileResult.concat(parts, release=True, features_dtype=None if pack else np.float32)
    result.df.attrs[FILE_INDEX_ATTR] = index
    return result


def _parts(
    process: FileProcessor, paths: Sequence[str], config: dict
) -> Iterator[tuple[FileResult, list[FileIndexEntry]]]:
    """The results of ``process(path, config)`` over the paths, in order, each with the
    file index entries of its files. The job's own per-file step runs the rows of several
    files at once and gives consecutive files as one result (``process_game_logs_joined``:
    the same rows, rejections and entries as file by file, faster); another one (a
    test's) runs file by file."""
    from imitation_learning.per_file import file_processing

    if process is file_processing.process_game_log:
        return file_processing.process_game_logs_joined(paths, config)
    return ((part, [file_index_entry(path, part)]) for path, part in
            ((path, process(path, config)) for path in paths))
