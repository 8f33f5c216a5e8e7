"""The job's Python API: the game logs through the per-file step, on the job's executor.

- :func:`process_files_parallel` (and :func:`run_job`, which says how it ran): the four
  outputs of all the files in memory, in path order, duplicate games left out, the
  accounting checked. It is phase 1 of the command line's job (the same bag, partitions
  and executor; :mod:`imitation_learning.job.build`) with the partitions brought back to
  the driver instead of being kept on the workers.
- :func:`file_results_bag`: the bag itself, one element per file, for Python users to
  ``filter``, ``pluck``, ``map``, ``to_dataframe`` or ``persist``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TypedDict

from tqdm.auto import tqdm

from imitation_learning.cluster import results_as_completed
from imitation_learning.config import Settings
from imitation_learning.job.accounting import (
    attach_report,
    check_accounting,
    reject_duplicate_games,
)
from imitation_learning.job.bag import files_bag, partition_futures, processed_bag
from imitation_learning.job.executors import open_executor, resolve_num_workers
from imitation_learning.job.partitions import chunks_of, file_weights, partition_sizes
from imitation_learning.job.steps import empty_result, file_processor, partition_task, strict_error
from imitation_learning.per_file.partition import pop_file_index, process_partition
from imitation_learning.per_file.results import FileResult
from splendor.errors import Rejection


@dataclass
class JobRun:
    """What :func:`run_job` did: the concatenated result and how it ran."""

    result: FileResult
    num_workers: int
    dashboard_link: str | None = None
    timings: dict[str, float] = field(default_factory=dict)
    scheduler_address: str | None = None


def collect_partitions(client, paths: list[str], config: dict, sizes: list[int], bar) -> FileResult:
    """Run the job's bag on the client's cluster, gather the partitions as they finish
    (the bar moves by each one's files), reassemble them in path order.

    The bag (:mod:`imitation_learning.job.bag`): the files cut by ``sizes``, mapped
    partition-wise through :func:`~imitation_learning.job.steps.process_partition`
    (features held as uint8); one task a partition, keyed by the bag's name, no other
    task around it.
    """
    settings = Settings.of(config)
    # the workers get the per-file step's settings only
    bag = processed_bag(files_bag(paths, sizes), partition_task(), settings.step, file_processor())
    futures = partition_futures(client, bag)
    position = {future.key: i for i, future in enumerate(futures)}
    parts: list[FileResult | None] = [None] * len(futures)
    part = None
    try:
        timeout = settings.preprocessing.no_workers_timeout_s
        for future, part in results_as_completed(client, futures, no_workers_timeout_s=timeout):
            i = position[future.key]
            (parts[i],) = part  # a partition of the bag: one element, its result
            bar.update(sizes[i])
            future.release()  # the worker may drop its copy
    except BaseException:  # a failed partition (or strict mode): no other partition runs on
        client.cancel(futures)
        raise
    del futures, part
    file_index = [entry for p in parts for entry in pop_file_index(p)]
    return reject_duplicate_games(FileResult.concat(parts, release=True), file_index)


def run_job(
    file_paths: Sequence[str | os.PathLike],
    config: Settings | dict,
    num_workers: int | None = None,
    *,
    progress: bool = True,
    report_path: str | os.PathLike | None = None,
) -> JobRun:
    """Process the game logs on the job's executor (:func:`~imitation_learning.job.
    executors.open_executor`): this process for one worker or one file, else a Dask
    cluster (a local one started and stopped here, or the running one at
    ``preprocessing.scheduler_address`` / ``DASK_SCHEDULER_ADDRESS``).

    ``num_workers``: the argument, else ``preprocessing.num_workers``, else all cores.
    An empty list gives the empty result at once. ``report_path`` writes a Dask
    performance report (HTML). The rows come back in path order, identical for any number
    of workers; the per-file rejection reports are aggregated in ``result.rejections`` and
    the row and file accounting is checked.
    """
    t_start = time.perf_counter()
    settings = Settings.of(config)  # validated once
    if report_path is not None:
        settings = settings.replace(preprocessing={"report": os.fspath(report_path)})
    paths = [os.fspath(p) for p in file_paths]
    workers = resolve_num_workers(num_workers, settings)
    timings = {"cluster_start_s": 0.0, "processing_s": 0.0, "total_s": 0.0}
    run = JobRun(result=None, num_workers=workers, timings=timings)  # type: ignore[arg-type]

    if not paths:
        run.result = empty_result(settings.step)
    else:
        with open_executor(len(paths), settings, workers, timings=timings) as executor:
            run.num_workers = executor.workers
            run.dashboard_link = executor.dashboard_link
            run.scheduler_address = executor.scheduler_address
            t0 = time.perf_counter()
            sizes = partition_sizes(len(paths), executor.workers,
                                    settings.preprocessing.files_per_partition,
                                    file_weights(paths))
            with tqdm(total=len(paths), unit="file", disable=not progress) as bar:
                if executor.in_process:  # the same partitions, one after the other
                    task = partition_task()
                    step = file_processor()
                    parts = [task(chunk, settings.step, step, on_file_done=lambda: bar.update(1))
                             for chunk in chunks_of(paths, sizes)]
                    file_index = [entry for p in parts for entry in pop_file_index(p)]
                    run.result = reject_duplicate_games(FileResult.concat(parts, release=True),
                                                        file_index)
                else:
                    run.result = collect_partitions(executor.client, paths, settings, sizes, bar)
            timings["processing_s"] = time.perf_counter() - t0

    check_accounting(run.result, paths)
    if settings.preprocessing.strict and run.result.rejections:  # a duplicate game
        raise strict_error(run.result.rejections[0])
    attach_report(run.result)
    timings["total_s"] = time.perf_counter() - t_start
    return run


def process_files_parallel(file_paths, config, num_workers=None):
    """``(df, strategic_features, labels, masks)`` of all the files (``docs/dataset.md``).

    The files are a Dask bag mapped partition-wise through the per-file step on a pool of
    worker processes (a local cluster, or the cluster at the configured scheduler
    address; one worker runs in this process): phase 1 of the command line's job, the
    partitions brought back here; see :func:`run_job`. The aggregated rejection report is
    in ``df.attrs["rejections"]`` / ``df.attrs["rows_read"]``.
    """
    return run_job(file_paths, config, num_workers).result.as_tuple()


class FileOutputs(TypedDict):
    """One file's element of :func:`file_results_bag` (a dict, as a bag's ``pluck`` and
    ``to_dataframe`` like them): its four outputs (``docs/dataset.md``), its rejections and the
    data rows read from it."""

    path: str
    df: object  # pandas.DataFrame
    features: object  # float32 (n, F)
    labels: dict
    masks: dict
    rejections: list[Rejection]
    rows_read: int


def file_results_bag(
    file_paths: Sequence[str | os.PathLike],
    config: Settings | dict | None = None,
    npartitions: int | None = None,
):
    """The bag of per-file results: one :class:`FileOutputs` element per file, in path
    order, partitioned as the job partitions the files (``npartitions`` workers' worth;
    default ``preprocessing.num_workers``, else all cores) and mapped partition-wise
    through the per-file step's joined fast path. Nothing runs until it is computed (on
    the default scheduler: a ``distributed.Client`` if one is open). Duplicate games are
    not left out here (that is a rule of the whole run, :func:`run_job`).

    >>> import dask
    >>> from imitation_learning.job import discover_csv_files, file_results_bag
    >>> bag = file_results_bag(discover_csv_files("data/games"), npartitions=2)
    >>> clean = bag.filter(lambda r: not r["rejections"])
    >>> with dask.config.set(scheduler="sync"):  # here: in this process, no cluster
    ...     rows = clean.map(lambda r: {"file": r["path"], "rows": len(r["df"])}).to_dataframe()
    ...     print(int(rows["rows"].sum().compute()) > 0, bag.pluck("rows_read").sum().compute() > 0)
    True True
    """
    settings = Settings.of(config)
    paths = [os.fspath(p) for p in file_paths]
    workers = resolve_num_workers(npartitions, settings)
    sizes = partition_sizes(len(paths), workers, settings.preprocessing.files_per_partition,
                            file_weights(paths))
    return files_bag(paths, sizes).map_partitions(per_file_outputs, settings.step,
                                                  token="file-outputs")


def per_file_outputs(paths: Iterable[str], config) -> list[FileOutputs]:
    """The elements of :func:`file_results_bag` for a partition's paths: the per-file step
    on them together, its result cut back into files."""
    paths = list(paths)
    result = process_partition(paths, config)
    index = pop_file_index(result)
    out, start = [], 0
    for path, rows_read, kept, _ids in index:
        rows = slice(start, start + kept)
        start += kept
        df = result.df.iloc[rows].reset_index(drop=True)
        df.attrs = {}
        out.append(FileOutputs(
            path=path,
            df=df,
            features=result.features[rows],
            labels={h: a[rows] for h, a in result.labels.items()},
            masks={h: a[rows] for h, a in result.masks.items()},
            rejections=[r for r in result.rejections if r.file == path],
            rows_read=rows_read,
        ))
    return out
