"""The batch job: every game log through the per-file step, on a pool of worker processes.

The files are split into partitions; each partition is one Dask task (``client.submit``
under the readable key ``process-partition-<run>-<i>``) that runs
:func:`imitation_learning.per_file.file_processing.process_game_log` on its files and concatenates
them on the worker (:meth:`FileResult.concat`). The driver collects the partitions as they
finish (futures + ``as_completed``), shows a bar of files done and puts the partitions back
in path order, so the output does not depend on the number of workers or on the cluster.
This is :func:`process_files_parallel`, the four outputs in memory; the command line's job,
which saves the dataset without it passing through the driver, is
:mod:`imitation_learning.assembly` (same partitions, same per-file step).

The pool is a local Dask cluster of worker processes (one thread each, started and always
stopped by the job), or an already running cluster given by its scheduler address
(``preprocessing.scheduler_address`` or ``DASK_SCHEDULER_ADDRESS``), which is left running.
One worker, or a single file, runs in the current process without a cluster.
"""

from __future__ import annotations

import functools
import itertools
import math
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field

import fsspec
import numpy as np
from fsspec.implementations.local import LocalFileSystem
from tqdm.auto import tqdm

from imitation_learning.allocator import tuned
from imitation_learning.cluster import pool_client, results_as_completed
from imitation_learning.config import validate_config
from imitation_learning.per_file.results import FileResult, pack_features
from splendor.errors import Rejection

GAME_FOLDERS = ("2_games", "3_games", "4_games")

#: Automatic partitioning: about this many files per partition (a file's step costs far more
#: than a task's overhead) ...
TARGET_FILES_PER_PARTITION = 100
#: ... but at least this many partitions per worker, so that the results stream back while
#: the workers run and no worker waits long for the last one; more cost a scheduler round
#: trip and a fetch each (measured in ``docs/benchmarks.md``, "Settings in the code").
MIN_PARTITIONS_PER_WORKER = 2
#: The fixed cost of a file, as the bytes of log that take as long to process (a fit of the
#: per-file step's time against file size, ``docs/benchmarks.md``); split by bytes alone, a
#: partition of small logs ran longer than one of large logs.
FILE_OVERHEAD_BYTES = 48_000
FileProcessor = Callable[[str, dict], FileResult]


# --------------------------------------------------------------------------- discovery


def discover_csv_files(data_root: str | os.PathLike, max_games: int | None = None) -> list[str]:
    """The game logs ``<data_root>/{2,3,4}_games/*.csv``, sorted by path.

    ``data_root`` is a local folder or an fsspec URL (``file://``, ``memory://``,
    ``s3://``...); local roots give plain local paths (a relative root gives relative
    paths), other file systems give URLs. Other files under the root are ignored.
    ``max_games`` keeps the first ones in sorted order. Every entry of a game folder named
    ``*.csv`` is listed, even one that is not a regular file (a directory ``x.csv``): the
    per-file step then rejects it by name instead of it being skipped silently.

    Raises ``FileNotFoundError`` if the root does not exist and ``ValueError`` if it holds
    no game file.
    """
    if max_games is not None and (isinstance(max_games, bool) or max_games < 1):
        raise ValueError(f"max_games must be at least 1 (or None), got {max_games!r}")
    root_text = os.fspath(data_root)
    fs, root = fsspec.core.url_to_fs(root_text)
    root = root.rstrip("/") or "/"
    if not fs.isdir(root):
        raise FileNotFoundError(f"data root {root_text!r} not found (or not a folder)")

    found: list[str] = []
    for folder in GAME_FOLDERS:
        found += fs.glob(f"{root}/{folder}/*.csv")
    if not found:
        raise ValueError(
            f"no game file under data root {root_text!r}: expected "
            f"{root_text.rstrip('/')}/{{2,3,4}}_games/<game_id>.csv"
        )
    found.sort()
    if max_games is not None:
        found = found[:max_games]

    if isinstance(fs, LocalFileSystem):
        # Keep the root as the user wrote it (relative stays relative), not for file:// URLs.
        base = root_text if "://" not in root_text else root
        return [os.path.join(base, os.path.relpath(p, root)) for p in found]
    return [fs.unstrip_protocol(p) for p in found]


# --------------------------------------------------------------------------- per file


def _file_processor() -> FileProcessor:
    from imitation_learning.per_file import file_processing

    return file_processing.process_game_log


def _empty_result(config: dict) -> FileResult:
    from imitation_learning.per_file import file_processing

    return file_processing.empty_result(config)


def process_single_file(file_path: str, config: dict):
    """One game log -> ``(df, strategic_features, labels, masks)`` (``outputs.md``).

    The file's rejection report travels with the frame: ``df.attrs["rejections"]`` (a list
    of ``Rejection.to_dict()``) and ``df.attrs["rows_read"]``.
    """
    result = _file_processor()(str(file_path), validate_config(config))
    _attach_report(result)
    return result.as_tuple()


def _attach_report(result: FileResult) -> None:
    result.df.attrs["rejections"] = [r.to_dict() for r in result.rejections]
    result.df.attrs["rows_read"] = result.rows_read


#: ``df.attrs`` key of a partition's per-file index: ``(path, rows_read, rows_kept,
#: game_ids)`` for each file, in order. The driver uses it to find games present in two
#: files (:func:`reject_duplicate_games`) and drops it before concatenating.
FILE_INDEX_ATTR = "file_index"


@tuned  # a worker's malloc thresholds set for the step while it runs (allocator.py)
def process_partition(
    paths: Sequence[str],
    config: dict,
    file_processor: FileProcessor | None = None,
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
    process = file_processor or _file_processor()
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
        result = _empty_result(config)
    else:
        result = FileResult.concat(parts, release=True, features_dtype=None if pack else np.float32)
    result.df.attrs[FILE_INDEX_ATTR] = index
    return result


def _parts(
    process: FileProcessor, paths: Sequence[str], config: dict
) -> Iterator[tuple[FileResult, list[tuple[str, int, int, list[int]]]]]:
    """The results of ``process(path, config)`` over the paths, in order, each with the
    file index entries of its files. The job's own per-file step runs the rows of several
    files at once and gives consecutive files as one result (``process_game_logs_joined``:
    the same rows, rejections and entries as file by file, faster); another one (a
    test's) runs file by file."""
    from imitation_learning.per_file import file_processing

    if process is file_processing.process_game_log:
        return file_processing.process_game_logs_joined(paths, config)
    return ((part, [_file_index_entry(path, part)]) for path, part in
            ((path, process(path, config)) for path in paths))


def _file_index_entry(path: str, part: FileResult) -> tuple[str, int, int, list[int]]:
    ids = part.df["game_id"].unique().tolist() if "game_id" in part.df else []
    return (path, part.rows_read, len(part.df), [int(i) for i in ids])


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


def _pop_file_index(part: FileResult) -> list:
    return part.df.attrs.pop(FILE_INDEX_ATTR, [])


# --------------------------------------------------------------------------- partitioning


def partition_sizes(
    n_files: int,
    n_workers: int,
    files_per_partition: int | None = None,
    weights: Sequence[float] | None = None,
) -> list[int]:
    """How many files each partition gets, in order; never an empty partition.

    ``files_per_partition`` given: that many files each, the last partition takes the rest.
    Automatic: about :data:`TARGET_FILES_PER_PARTITION` files per partition, but at least
    :data:`MIN_PARTITIONS_PER_WORKER` partitions per worker. With ``weights`` (one per
    file, e.g. its size in bytes), the cuts make the partitions' total weights about
    equal instead of their file counts: a 4-player game log is twice the work of a
    2-player one, and sorted paths put all the long games at the end, where a partition
    twice as long as the others would leave one worker idle.
    """
    if n_files <= 0:
        return []
    if files_per_partition is not None:
        full, rest = divmod(n_files, files_per_partition)
        return [files_per_partition] * full + ([rest] if rest else [])
    npartitions = min(
        n_files,
        max(
            math.ceil(n_files / TARGET_FILES_PER_PARTITION),
            MIN_PARTITIONS_PER_WORKER * max(n_workers, 1),
        ),
    )
    if weights is None:
        cum = np.arange(1, n_files + 1, dtype=np.float64)
    else:
        if len(weights) != n_files:
            raise ValueError(f"{len(weights)} weights for {n_files} files")
        cum = np.cumsum(np.maximum(np.asarray(weights, dtype=np.float64), 1.0))
    # Cut k after the first file whose running weight reaches k / npartitions of the total,
    # leaving room for at least one file per partition on either side; cuts that coincide
    # (one very heavy file) merge their partitions.
    cuts = np.searchsorted(cum, cum[-1] * np.arange(1, npartitions) / npartitions) + 1
    cuts = np.clip(cuts, np.arange(1, npartitions), n_files - np.arange(npartitions - 1, 0, -1))
    bounds = [0, *np.maximum.accumulate(cuts).tolist(), n_files]
    return [b - a for a, b in itertools.pairwise(bounds) if b > a]


def file_weights(paths: Sequence[str]) -> list[float] | None:
    """The expected work of each file, for :func:`partition_sizes`: its size in bytes plus
    :data:`FILE_OVERHEAD_BYTES`. ``None`` when a path is a URL (asking a remote store for
    every size would cost more than it saves) or a file cannot be looked at (the per-file
    step reports it; the split then goes by count)."""
    if any("://" in p for p in paths):
        return None
    try:
        return [float(os.path.getsize(p) + FILE_OVERHEAD_BYTES) for p in paths]
    except OSError:
        return None


# --------------------------------------------------------------------------- the job


@dataclass
class JobRun:
    """What :func:`run_job` did: the concatenated result and how it ran."""

    result: FileResult
    num_workers: int
    dashboard_link: str | None = None
    timings: dict[str, float] = field(default_factory=dict)
    scheduler_address: str | None = None


def resolve_num_workers(num_workers: int | None, config: dict) -> int:
    """The argument, else ``preprocessing.num_workers``, else all cores."""
    if num_workers is None:
        num_workers = config["preprocessing"]["num_workers"]
    if num_workers is None:
        num_workers = os.cpu_count() or 1
    if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 1:
        raise ValueError(f"num_workers must be a positive integer, got {num_workers!r}")
    return num_workers


def resolve_scheduler_address(config: dict) -> str | None:
    """``preprocessing.scheduler_address``, else ``DASK_SCHEDULER_ADDRESS``, else None."""
    return config["preprocessing"]["scheduler_address"] or (
        os.environ.get("DASK_SCHEDULER_ADDRESS") or None
    )


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _dashboard_link(client) -> str | None:
    """The dashboard's URL, or None when the scheduler runs without one."""
    try:
        return client.dashboard_link or None
    except KeyError:  # an existing scheduler without the dashboard service
        return None


def _import_file_step() -> None:
    _file_processor()  # imports imitation_learning.per_file.file_processing and its dependencies


def _partition_task() -> Callable[..., FileResult]:
    """What a partition runs: :func:`process_partition` holding the features as uint8."""
    return functools.partial(process_partition, pack=True)


def _collect(client, paths: list[str], config: dict, sizes: list[int], bar) -> FileResult:
    """Submit the partitions, gather them as they finish, reassemble them in path order.

    One task per partition, submitted with a readable key (``process-partition-<run>-<i>``,
    which the dashboard shows as ``process-partition``) and no other task around it.
    """
    bounds = np.cumsum([0, *sizes]).tolist()
    chunks = [paths[a:b] for a, b in itertools.pairwise(bounds)]
    run = uuid.uuid4().hex[:16]
    task, step = _partition_task(), _file_processor()
    futures = [
        client.submit(task, chunk, config, step, key=f"process-partition-{run}-{i}")
        for i, chunk in enumerate(chunks)
    ]
    position = {future.key: i for i, future in enumerate(futures)}
    parts: list[FileResult | None] = [None] * len(futures)
    part = None
    try:
        timeout = config["preprocessing"]["no_workers_timeout_s"]
        for future, part in results_as_completed(client, futures, no_workers_timeout_s=timeout):
            i = position[future.key]
            parts[i] = part
            bar.update(sizes[i])
            future.release()  # the worker may drop its copy
    except BaseException:  # a failed partition (or strict mode): no other partition runs on
        client.cancel(futures)
        raise
    del futures, part
    file_index = [entry for p in parts for entry in _pop_file_index(p)]
    return reject_duplicate_games(FileResult.concat(parts, release=True), file_index)


def run_job(
    file_paths: Sequence[str | os.PathLike],
    config: dict,
    num_workers: int | None = None,
    *,
    progress: bool = True,
    report_path: str | os.PathLike | None = None,
) -> JobRun:
    """Process the game logs; the files are processed by a pool of worker processes.

    ``num_workers``: the argument, else ``preprocessing.num_workers``, else all cores.
    An empty list gives the empty result at once; one worker or one file runs in this
    process. Otherwise the pool is a local Dask cluster (started and stopped here), or the
    running cluster at ``preprocessing.scheduler_address`` / ``DASK_SCHEDULER_ADDRESS``.
    ``report_path`` writes a Dask performance report (HTML). The rows come back in path
    order, identical for any number of workers; the per-file rejection reports are
    aggregated in ``result.rejections`` and the row and file accounting is checked.

    This is the job of :func:`process_files_parallel`, which returns the four outputs in
    memory; the command line saves the dataset without them passing through the driver
    (:mod:`imitation_learning.assembly`).
    """
    t_start = time.perf_counter()
    cfg = validate_config(config)
    paths = [os.fspath(p) for p in file_paths]
    workers = resolve_num_workers(num_workers, cfg)
    address = resolve_scheduler_address(cfg)
    timings = {"cluster_start_s": 0.0, "processing_s": 0.0, "total_s": 0.0}
    run = JobRun(result=None, num_workers=workers, timings=timings)  # type: ignore[arg-type]

    if not paths:
        run.result = _empty_result(cfg)
    elif len(paths) == 1 or (workers == 1 and address is None):
        run.num_workers = 1
        if report_path is not None:
            _say("no performance report: the job runs in this process, without a cluster")
        t0 = time.perf_counter()
        task = _partition_task()
        # The same partitions as on a cluster: bounded blocks.
        sizes = partition_sizes(
            len(paths), 1, cfg["preprocessing"]["files_per_partition"], file_weights(paths)
        )
        bounds = np.cumsum([0, *sizes])
        with tqdm(total=len(paths), unit="file", disable=not progress) as bar:
            parts = [
                task(paths[a:b], cfg, on_file_done=lambda: bar.update(1))
                for a, b in zip(bounds[:-1], bounds[1:], strict=True)
            ]
        file_index = [entry for p in parts for entry in _pop_file_index(p)]
        run.result = reject_duplicate_games(FileResult.concat(parts, release=True), file_index)
        timings["processing_s"] = time.perf_counter() - t0
    else:
        t0 = time.perf_counter()
        with pool_client(
            workers,
            scheduler_address=address,
            dashboard_address=cfg["preprocessing"]["dashboard_address"],
            worker_setup=_import_file_step,
        ) as client:
            timings["cluster_start_s"] = time.perf_counter() - t0
            run.num_workers = len(client.nthreads()) or workers
            run.scheduler_address = client.scheduler.address
            run.dashboard_link = _dashboard_link(client)
            where = f"existing cluster at {address}" if address else "local cluster"
            _say(
                f"{len(paths)} files on a pool of {run.num_workers} worker processes "
                f"({where}); Dask dashboard: {run.dashboard_link or 'none (disabled)'}"
            )
            t1 = time.perf_counter()
            sizes = partition_sizes(
                len(paths),
                run.num_workers,
                cfg["preprocessing"]["files_per_partition"],
                file_weights(paths),
            )
            report = _performance_report(report_path) if report_path is not None else nullcontext()
            with report, tqdm(total=len(paths), unit="file", disable=not progress) as bar:
                run.result = _collect(client, paths, cfg, sizes, bar)
            timings["processing_s"] = time.perf_counter() - t1

    check_accounting(run.result, paths)
    if cfg["preprocessing"]["strict"] and run.result.rejections:  # a duplicate game
        raise _strict_error(run.result.rejections[0])
    _attach_report(run.result)
    timings["total_s"] = time.perf_counter() - t_start
    return run


def _strict_error(rejection: Rejection) -> Exception:
    from imitation_learning.per_file.file_processing import StrictModeError

    return StrictModeError(rejection)


def _performance_report(report_path: str | os.PathLike):
    from distributed import performance_report

    return performance_report(filename=os.fspath(report_path), mode="inline")


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


def process_files_parallel(file_paths, config, num_workers=None):
    """``(df, strategic_features, labels, masks)`` of all the files (``outputs.md``).

    The files are processed by a pool of worker processes (a Dask bag on a local cluster,
    or on the cluster at the configured scheduler address); see :func:`run_job`. The
    aggregated rejection report is in ``df.attrs["rejections"]`` / ``df.attrs["rows_read"]``.
    """
    return run_job(file_paths, config, num_workers).result.as_tuple()
