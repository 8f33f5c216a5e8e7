"""Where a run's tasks go, chosen in one place (:func:`open_executor`): in this process
(one worker, or a single file), on threads in this process (a small re-run with the
result cache), or on a Dask cluster (a local one, started and always stopped here, or the
running one at ``preprocessing.scheduler_address`` / ``DASK_SCHEDULER_ADDRESS``, left
running). Both jobs (:func:`~imitation_learning.job.api.run_job`, the in-memory outputs,
and :func:`~imitation_learning.job.build.build_dataset`, the saved dataset) run on it.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass

import numpy as np

from imitation_learning.cluster import pool_client
from imitation_learning.config import Settings
from imitation_learning.job.steps import import_file_step

#: The kinds of executor.
IN_PROCESS, THREADS, CLUSTER = "in-process", "threads", "cluster"


@dataclass
class Executor:
    """Where the run's tasks go. ``client`` is the Dask client of a cluster (None in this
    process); ``workers`` the worker processes (or threads) the run has."""

    kind: str
    workers: int
    client: object | None = None
    dashboard_link: str | None = None
    scheduler_address: str | None = None

    @property
    def in_process(self) -> bool:
        return self.client is None


@contextmanager
def open_executor(
    n_files: int,
    settings: Settings,
    workers: int,
    *,
    timings: dict[str, float],
    threads: int = 0,
    record_tasks: bool = False,
) -> Iterator[Executor]:
    """The executor of a run of ``n_files`` files asked for ``workers`` workers.

    ``threads`` > 0 (a small re-run, decided by the caller): that many threads in this
    process. Else one worker (and no scheduler address) or a single file: this process.
    Else a Dask cluster: its line (workers, dashboard) is printed, the performance report
    (``preprocessing.report``) covers the block, ``timings`` gets ``cluster_start_s``
    (and, after the block, ``cluster_up_s`` and ``cluster_close_s``); ``record_tasks``
    also records the cluster's task stream into ``timings`` (``workers_busy_s`` and the
    compute seconds of each kind of task).
    """
    prep = settings.preprocessing
    address = resolve_scheduler_address(settings)
    timings.setdefault("cluster_start_s", 0.0)
    if threads:
        yield Executor(THREADS, threads)
        return
    if n_files <= 1 or (workers == 1 and address is None):
        if prep.report is not None:
            say("no performance report: the job runs in this process, without a cluster")
        yield Executor(IN_PROCESS, 1)
        return
    t0 = time.perf_counter()
    with pool_client(
        workers,
        scheduler_address=address,
        dashboard_address=prep.dashboard_address,
        worker_setup=import_file_step,
    ) as client:
        timings["cluster_start_s"] = time.perf_counter() - t0
        executor = Executor(CLUSTER, len(client.nthreads()) or workers, client,
                            dashboard_link(client), client.scheduler.address)
        where = f"existing cluster at {address}" if address else "local cluster"
        say(
            f"{n_files} files on a pool of {executor.workers} worker processes "
            f"({where}); Dask dashboard: {executor.dashboard_link or 'none (disabled)'}"
        )
        report = nullcontext() if prep.report is None else performance_report(prep.report)
        stream = task_stream(client) if record_tasks else nullcontext()
        with unless_failing(report), unless_failing(stream) as records:
            yield executor
        t_closing = time.perf_counter()
        timings["cluster_up_s"] = t_closing - t0 - timings["cluster_start_s"]
    timings["cluster_close_s"] = time.perf_counter() - t_closing
    if records is not None:
        timings["workers_busy_s"] = busy_seconds(records.data)
        timings.update(seconds_by_task(records.data))


def resolve_num_workers(num_workers: int | None, config) -> int:
    """The argument, else ``preprocessing.num_workers``, else all cores (``config``: the
    run's :class:`~imitation_learning.config.Settings`, or a configuration dict)."""
    if num_workers is None:
        num_workers = Settings.of(config).preprocessing.num_workers
    if num_workers is None:
        num_workers = os.cpu_count() or 1
    if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 1:
        raise ValueError(f"num_workers must be a positive integer, got {num_workers!r}")
    return num_workers


def resolve_scheduler_address(config) -> str | None:
    """``preprocessing.scheduler_address``, else ``DASK_SCHEDULER_ADDRESS``, else None."""
    return Settings.of(config).preprocessing.scheduler_address or (
        os.environ.get("DASK_SCHEDULER_ADDRESS") or None
    )


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def dashboard_link(client) -> str | None:
    """The dashboard's URL, or None when the scheduler runs without one."""
    try:
        return client.dashboard_link or None
    except KeyError:  # an existing scheduler without the dashboard service
        return None


def performance_report(report_path: str | os.PathLike):
    from distributed import performance_report

    return performance_report(filename=os.fspath(report_path), mode="inline")


@contextmanager
def unless_failing(manager):
    """``manager`` around the block; when the block fails, an error of the manager's own exit
    (the report and the task stream ask the scheduler, which may be what was lost) does not
    hide the block's error."""
    value = manager.__enter__()
    try:
        yield value
    except BaseException as exc:
        try:
            manager.__exit__(type(exc), exc, exc.__traceback__)
        except Exception:
            pass
        raise
    manager.__exit__(None, None, None)


def task_stream(client):
    """The cluster's task stream over the block (``.data``: one record per task)."""
    from distributed import get_task_stream

    return get_task_stream(client=client)


def task_seconds_key(name: str) -> str:
    """The ``timings`` entry of the compute seconds of the tasks named ``name``
    (``dask.utils.key_split`` of their keys; the processing tasks' is
    ``bag.process_task_name()``).

    >>> task_seconds_key("write-x-rows")
    'task_write_x_rows_s'
    """
    return "task_" + name.replace("-", "_") + "_s"


def seconds_by_task(records: list[dict]) -> dict[str, float]:
    """Compute seconds of each kind of task (summed over the workers):
    :func:`task_seconds_key` of their name."""
    from dask.utils import key_split

    out: dict[str, float] = {}
    for r in records:
        name = task_seconds_key(key_split(r["key"]))
        spent = sum(
            ss["stop"] - ss["start"] for ss in r.get("startstops", ()) if ss["action"] == "compute"
        )
        out[name] = out.get(name, 0.0) + spent
    return out


def busy_seconds(records: list[dict]) -> float:
    """Seconds during which at least one worker was computing a task."""
    spans = sorted(
        (ss["start"], ss["stop"])
        for r in records
        for ss in r.get("startstops", ())
        if ss.get("action") == "compute"
    )
    busy, end = 0.0, -np.inf
    for start, stop in spans:
        if stop <= end:
            continue
        busy += stop - max(start, end)
        end = stop
    return busy
