"""The job's accounting: every row read is kept or rejected, every file read or rejected
as a whole, exactly once; and the rule that a game id belongs to one file (a later file
holding a game of an earlier one is left out). The file index of a partition
(:data:`FILE_INDEX_ATTR`) carries what these checks need from the workers.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from imitation_learning.per_file.results import FileResult
from splendor.errors import Rejection


def duplicate_files(file_index: Sequence[tuple[str, int, int, list[int]]]) -> dict[str, Rejection]:
    """The files that hold a ``game_id`` already seen in an earlier file, each with its
    file-level rejection (naming the earlier file, counting all the file's rows read).

    Files are taken in the order of ``file_index`` (path order). A later file holding a
    game id of an earlier one (``2_games/7.csv`` and ``3_games/7.csv``, or two files whose
    rows say the same id) is left out as a whole. By content, so a renamed copy is caught
    as well as a same-named file in another folder. The split by game needs unique ids.
    """
    first_file: dict[int, str] = {}
    duplicates: dict[str, Rejection] = {}
    for path, rows_read, _kept, game_ids in file_index:
        clash = [(g, first_file[g]) for g in game_ids if g in first_file]
        if clash:
            game_id, other = clash[0]
            duplicates[path] = Rejection(
                path,
                None,
                "game_id",
                f"same game_id {game_id} as {other}: game ids must be unique across files, "
                "the later file in path order is left out",
                rows=rows_read,
            )
        else:
            for g in game_ids:
                first_file[g] = path
    return duplicates


def merge_rejections(
    rejections: Sequence[Rejection],
    duplicates: dict[str, Rejection],
    file_index: Sequence[tuple[str, int, int, list[int]]],
) -> list[Rejection]:
    """The run's rejections once the duplicate files are left out: a duplicate file's own
    row rejections replaced by its file-level one, in path order (lines stay sorted)."""
    if not duplicates:
        return list(rejections)
    order = {entry[0]: i for i, entry in enumerate(file_index)}
    merged = [r for r in rejections if r.file not in duplicates]
    merged += duplicates.values()
    merged.sort(key=lambda r: order.get(r.file, len(order)))  # stable
    return merged


def reject_duplicate_games(
    result: FileResult, file_index: Sequence[tuple[str, int, int, list[int]]]
) -> FileResult:
    """Leave out every file whose rows carry a ``game_id`` already seen in an earlier file
    (:func:`duplicate_files`): its rows leave the outputs, its row rejections are replaced
    by one file-level rejection. The rows of ``result`` are in ``file_index`` order.
    Done in the driver, after collection, from the per-file game ids.
    """
    duplicates = duplicate_files(file_index)
    covered = sum(entry[2] for entry in file_index)
    if covered != len(result.df):
        raise AssertionError(f"file index covers {covered} rows, the result has {len(result.df)}")
    if not duplicates:
        return result
    drop = np.zeros(len(result.df), dtype=bool)
    start = 0
    for path, _rows_read, kept, _ids in file_index:
        if path in duplicates:
            drop[start : start + kept] = True
        start += kept
    keep = ~drop
    return FileResult(
        df=result.df[keep].reset_index(drop=True),
        features=result.features[keep],
        labels={h: a[keep] for h, a in result.labels.items()},
        masks={h: a[keep] for h, a in result.masks.items()},
        rejections=merge_rejections(result.rejections, duplicates, file_index),
        rows_read=result.rows_read,
        files_ok=[f for f in result.files_ok if f not in duplicates],
    )


def check_accounting(result: FileResult, paths: Sequence[str]) -> None:
    """Raise if a row or a file went missing.

    Rows read == rows kept + rows rejected, and every file given is either read
    (``files_ok``) or rejected as a whole (file-level rejection), exactly once.
    """
    result.check_accounting()
    check_file_accounting(result.files_ok, result.files_rejected, paths)


def check_file_accounting(
    files_ok: Sequence[str], files_rejected: Sequence[str], paths: Sequence[str]
) -> None:
    """Raise unless every path is either read or rejected as a whole, exactly once."""
    done = list(files_ok) + list(files_rejected)
    if len(done) != len(paths) or set(done) != set(paths):
        missing = sorted(set(paths) - set(done))[:5]
        extra = sorted(set(done) - set(paths))[:5]
        raise AssertionError(
            f"file accounting broken: {len(paths)} files given, {len(files_ok)} read "
            f"+ {len(files_rejected)} rejected; missing {missing}, unexpected {extra}"
        )


def check_row_accounting(
    rows_read: int,
    rows_kept: int,
    rejections: Sequence[Rejection],
    files_ok: Sequence[str],
    paths: Sequence[str],
) -> None:
    """Raise if a row or a file went missing, from a run's totals (the dataset's
    job, whose driver never holds the rows: see :func:`check_accounting`)."""
    rejected = sum(r.rows for r in rejections)
    if rows_read != rows_kept + rejected:
        raise AssertionError(
            f"row accounting broken: read {rows_read}, kept {rows_kept}, rejected {rejected}"
        )
    check_file_accounting(files_ok, [r.file for r in rejections if r.file_level], paths)


def attach_report(result: FileResult) -> None:
    """The rejection report on the frame: ``df.attrs["rejections"]`` (a list of
    ``Rejection.to_dict()``) and ``df.attrs["rows_read"]``."""
    result.df.attrs["rejections"] = [r.to_dict() for r in result.rejections]
    result.df.attrs["rows_read"] = result.rows_read
