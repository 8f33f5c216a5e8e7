"""The measurements of the benchmark suite; each returns a plain dict of figures (JSON-ready).

Rates are data rows read per second of wall time (``rows_read``: kept + rejected; the
simulated logs have no bad rows). Every job run is checked: it must account for every row
of the dataset, so a broken run cannot pass for a fast one.

- :func:`measure_parse_and_per_file`: bare pyarrow parse (one thread) and the per-file step
  ``process_single_file``, sequentially, pinned to one core, fastest of interleaved passes;
  also the per-file step on the same games written in the older exporters' dialect.
- :func:`measure_dask`: ``run_job`` as a user runs it (it starts its own cluster, has the
  workers import the per-file step, processes, stops the cluster); its own timings.
- :func:`measure_pool`: the same partitions through ``multiprocessing.Pool`` or
  ``concurrent.futures.ProcessPoolExecutor``, collected and concatenated as the job does.
- :func:`measure_driver_memory`: the job's driver peak RSS increase against the outputs' size,
  in a fresh subprocess (:mod:`bench.memprobe`); :func:`fresh_runs`, 1 against several
  workers with every run in a fresh interpreter.
- :func:`measure_selfplay`: ``splendor.simulate.simulate`` games/s and rows/s on one core.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import multiprocessing
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from itertools import accumulate, pairwise
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
#: The module every pool worker imports before the processing clock starts.
PER_FILE_MODULE = "imitation_learning.per_file.file_processing"
#: Pool processes are spawned, as Dask's worker processes are.
START_METHOD = "spawn"


def job_config(scheduler_address: str | None = None) -> dict:
    """The job configuration of the benchmarks: defaults (masks and features on), no fixed
    dashboard port (other users of the machine may hold 8787)."""
    from imitation_learning.config import validate_config

    return validate_config(
        {
            "preprocessing": {
                "dashboard_address": "127.0.0.1:0",
                "scheduler_address": scheduler_address,
            }
        }
    )


def _check_rows(result, expected_rows: int, what: str) -> None:
    result.check_accounting()
    if result.rows_read != expected_rows:
        raise AssertionError(f"{what}: read {result.rows_read} rows, expected {expected_rows}")


def _rates(rows: int, **seconds: float) -> dict:
    """The timings plus ``rows_per_s`` (over ``processing_s``) and ``us_per_row``."""
    out = {k: round(v, 4) for k, v in seconds.items()}
    out["rows_per_s"] = rows / seconds["processing_s"]
    out["us_per_row"] = seconds["processing_s"] / rows * 1e6
    return out


def _children_cpu_s() -> float:
    """CPU seconds of this process's children that have ended and been waited for (the
    worker processes of a local cluster or a pool, once it is shut down)."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def cpu_use(cpu_s: float, wall_s: float, processes: int) -> float:
    """Share of the CPUs a run could use that it did use: CPU seconds over wall seconds times
    ``min(processes, cores)``, ``processes`` counting the driver beside the workers. Near 1
    when every process was busy all the time and had its core; below 1 when processes
    waited (on each other: a 1-worker pool's driver mostly waits, so about 0.6 there) or
    when other programs on the (shared) machine took cores."""
    return cpu_s / (wall_s * min(processes, os.cpu_count() or 1))


# --------------------------------------------------------------------------- one core


@contextlib.contextmanager
def one_core():
    """Pin this process to one CPU (the first it may use) and restore the affinity after.

    Processes started inside the block inherit the pin, so start none there."""
    if not hasattr(os, "sched_setaffinity"):
        yield None
        return
    before = os.sched_getaffinity(0)
    cpu = min(before)
    os.sched_setaffinity(0, {cpu})
    try:
        yield cpu
    finally:
        os.sched_setaffinity(0, before)


def best_of_interleaved(
    fns: dict[str, Callable[[str], object]],
    paths: Sequence[str],
    repeat: int,
    paths_of: dict[str, Sequence[str]] | None = None,
) -> dict[str, float]:
    """Fastest pass (seconds) of each per-file function over ``paths`` (or over
    ``paths_of[name]`` for the functions named there); the passes alternate between the
    functions so that a change in the machine's load hits them alike.

    (``bench/experiments/per_file_stages.py`` has its own loop, tied to its per-stage breakdown.)
    """
    best = dict.fromkeys(fns, float("inf"))
    paths_of = paths_of or {}
    for _ in range(repeat):
        for name, fn in fns.items():
            files = paths_of.get(name, paths)
            start = time.perf_counter()
            for path in files:
                fn(path)
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def typed_convert_options():
    """The column types the game-log reader gives pyarrow: float64 everywhere, the action a
    string; the same null texts."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    from splendor.columns import COLUMNS
    from splendor.log_parsers import NULL_VALUES

    types = {name: pa.float64() for name in COLUMNS}
    types["action_type"] = pa.string()
    return pacsv.ConvertOptions(
        column_types=types, null_values=list(NULL_VALUES), strings_can_be_null=True
    )


def tokenize_plain(path: str) -> None:
    """The reader's fast path alone: read the bytes, tokenize the body with numpy (in the
    layout the header announces: 403 columns, or 402 without ``current_player``)."""
    from splendor.columns import COLUMNS, LEGACY_COLUMNS
    from splendor.log_parsers import tokenize_plain_body

    with open(path, "rb") as f:
        data = f.read()
    end = data.index(b"\n")
    columns = COLUMNS if b",current_player," in data[:end] else LEGACY_COLUMNS
    if tokenize_plain_body(data[end + 1 :], columns) is None:
        raise AssertionError(f"{path}: not plain exporter output")


def measure_parse_and_per_file(
    paths: Sequence[str],
    rows: int,
    config: dict,
    repeat: int = 3,
    with_per_file: bool = True,
    legacy_paths: Sequence[str] | None = None,
    legacy_config: dict | None = None,
) -> dict:
    """Bare parse against the per-file step, on one core, on the same files.

    ``bare_inferred``: ``pyarrow.csv.read_csv`` with one thread and type inference;
    ``bare_typed``: the same with the column types given (what the reader asks for). The
    faster of the two is the practical limit (``bare_best``). ``plain_tokenizer``: reading the
    bytes and running the project's own numpy tokenizer of plain exporter rows (the reader's
    fast path; not a general CSV reader, so shown for comparison, not as the baseline).
    ``per_file``:
    ``process_single_file`` on each file in turn (read, checks, masks, labels, compaction,
    features); left out when ``with_per_file`` is false. ``per_file_legacy`` and
    ``plain_tokenizer_legacy``: the same on ``legacy_paths``, the same games written in the
    older exporters' dialect (read with ``legacy_config``), when given with the per-file
    step; ``legacy_vs_current`` is the ratio of the per-file rates. Each figure is the
    fastest of ``repeat`` passes, interleaved.
    """
    import pyarrow.csv as pacsv

    from imitation_learning.parallel_processor import process_single_file

    read_options = pacsv.ReadOptions(use_threads=False)
    typed = typed_convert_options()
    fns = {
        "bare_inferred": lambda p: pacsv.read_csv(p, read_options=read_options),
        "bare_typed": lambda p: pacsv.read_csv(p, read_options=read_options, convert_options=typed),
        "plain_tokenizer": tokenize_plain,
    }
    with one_core() as cpu:
        # Warm-up (imports, page cache) and the check that the step reads every row.
        read = sum(process_single_file(p, config)[0].attrs["rows_read"] for p in paths)
        if read != rows:
            raise AssertionError(f"per-file step read {read} rows, expected {rows}")
        paths_of = {}
        if with_per_file:
            fns["per_file"] = lambda p: process_single_file(p, config)
            if legacy_paths is not None:
                read = sum(
                    process_single_file(p, legacy_config)[0].attrs["rows_read"]
                    for p in legacy_paths
                )
                if read != rows:
                    raise AssertionError(f"per-file step read {read} legacy rows, expected {rows}")
                fns["plain_tokenizer_legacy"] = tokenize_plain
                fns["per_file_legacy"] = lambda p: process_single_file(p, legacy_config)
                paths_of = dict.fromkeys(
                    ("plain_tokenizer_legacy", "per_file_legacy"), legacy_paths
                )
        t0, c0 = time.perf_counter(), time.process_time()
        best = best_of_interleaved(fns, paths, repeat, paths_of)
        use = cpu_use(time.process_time() - c0, time.perf_counter() - t0, 1)
    out: dict = {"cpu": cpu, "files": len(paths), "rows": rows, "repeat": repeat, "cpu_use": use}
    for name, seconds in best.items():
        out[name] = {"seconds": round(seconds, 4), "rows_per_s": rows / seconds}
    bare_best = max(("bare_inferred", "bare_typed"), key=lambda k: out[k]["rows_per_s"])
    out["bare_best"] = bare_best
    if with_per_file:
        out["per_file_vs_bare"] = out["per_file"]["rows_per_s"] / out[bare_best]["rows_per_s"]
    if "per_file_legacy" in out:
        out["legacy_vs_current"] = (
            out["per_file_legacy"]["rows_per_s"] / out["per_file"]["rows_per_s"]
        )
    return out


# --------------------------------------------------------------------------- Dask


def measure_dask(
    paths: Sequence[str],
    rows: int,
    num_workers: int,
    min_seconds: float = 3.0,
    max_repeat: int = 3,
) -> dict:
    """``run_job`` as the command line runs it: its own local cluster of ``num_workers``
    processes, started (workers import the per-file step) and stopped by the job; one
    worker runs in this process. The job's own timings (``cluster_start_s``,
    ``processing_s``, ``total_s``) of its fastest run (by processing time) out of up to
    ``max_repeat`` runs; repeats stop once ``min_seconds`` of processing have been spent.
    ``driver_cpu_s``: CPU time of this process (all its threads: the scheduler of a local
    cluster runs here) over the whole ``run_job`` call; ``cpu_use``: :func:`cpu_use` of the
    call, driver and workers together."""
    from imitation_learning.parallel_processor import run_job

    runs = []
    while len(runs) < max_repeat and sum(t["processing_s"] for t in runs) < min_seconds:
        cpu0, children0 = time.process_time(), _children_cpu_s()
        with contextlib.redirect_stderr(io.StringIO()):  # the job's "N files on a pool" line
            run = run_job(list(paths), job_config(), num_workers, progress=False)
        cpu = time.process_time() - cpu0
        workers_cpu = _children_cpu_s() - children0
        _check_rows(run.result, rows, f"Dask job, {num_workers} workers")
        mode = "in-process" if run.num_workers == 1 else "local cluster"
        processes = 1 if mode == "in-process" else run.num_workers + 1
        use = cpu_use(cpu + workers_cpu, run.timings["total_s"], processes)
        runs.append({**run.timings, "driver_cpu_s": cpu, "cpu_use": use})
        del run
    best = min(runs, key=lambda t: t["processing_s"])
    out = _rates(
        rows,
        cluster_start_s=best["cluster_start_s"],
        processing_s=best["processing_s"],
        total_s=best["total_s"],
        driver_cpu_s=best["driver_cpu_s"],
        cpu_use=best["cpu_use"],
    )
    out["mode"] = mode
    out["runs"] = len(runs)
    return out


# --------------------------------------------------------------------------- process pools


def _run_partition(task: tuple[int, list[str], dict]):
    """Pool task: one partition through the job's per-partition function."""
    from imitation_learning.parallel_processor import process_partition

    index, paths, config = task
    return index, process_partition(paths, config, pack=True)  # as the job runs it


def _warm_worker(_: int) -> int:
    importlib.import_module(PER_FILE_MODULE)
    time.sleep(0.02)  # let the other workers take tasks too
    return os.getpid()


def _until_all_warm(map_fn, num_workers: int, timeout_s: float = 60.0) -> None:
    """Run warm-up tasks until every one of the ``num_workers`` processes has run one."""
    seen: set[int] = set()
    deadline = time.perf_counter() + timeout_s
    while len(seen) < num_workers:
        if time.perf_counter() > deadline:
            raise TimeoutError(f"only {len(seen)} of {num_workers} pool workers answered")
        seen.update(map_fn(_warm_worker, range(4 * num_workers)))


def measure_pool(paths: Sequence[str], rows: int, num_workers: int, kind: str) -> dict:
    """The job's partitions through a plain process pool (``kind``: ``"multiprocessing"`` or
    ``"futures"``), spawned like Dask's workers.

    (a pool's ``map`` would gather in order at the end;
    here the partitions are gathered as they finish, like the job's ``as_completed``, and
    every worker is known to be warm before the clock starts.)

    ``pool_start_s``: start the processes and have each import the per-file step (as the
    job's start-up does). ``processing_s``: submit the partitions (the
    job's own split, :func:`partition_sizes`), collect them as they finish, put them back in
    path order and concatenate (:meth:`FileResult.concat`), as the job does.
    ``driver_cpu_s``: CPU time of this process during the processing; ``cpu_use``:
    :func:`cpu_use` of the whole run (start-up included), driver and workers together.
    """
    from imitation_learning.parallel_processor import (
        check_accounting,
        file_weights,
        partition_sizes,
    )
    from imitation_learning.per_file.results import FileResult

    config = job_config()
    paths = list(paths)
    sizes = partition_sizes(
        len(paths), num_workers, config["preprocessing"]["files_per_partition"], file_weights(paths)
    )
    bounds = pairwise([0, *accumulate(sizes)])
    tasks = [(i, paths[a:b], config) for i, (a, b) in enumerate(bounds)]
    parts: list = [None] * len(tasks)
    context = multiprocessing.get_context(START_METHOD)

    t0, c0, children0 = time.perf_counter(), time.process_time(), _children_cpu_s()
    if kind == "multiprocessing":
        with context.Pool(num_workers) as pool:
            _until_all_warm(pool.map, num_workers)
            t1, c1 = time.perf_counter(), time.process_time()
            for i, part in pool.imap_unordered(_run_partition, tasks):
                parts[i] = part
            result = FileResult.concat(parts)
            t2, c2 = time.perf_counter(), time.process_time()
    elif kind == "futures":
        with ProcessPoolExecutor(num_workers, mp_context=context) as pool:
            _until_all_warm(pool.map, num_workers)
            t1, c1 = time.perf_counter(), time.process_time()
            futures = [pool.submit(_run_partition, task) for task in tasks]
            for future in as_completed(futures):
                i, part = future.result()
                parts[i] = part
            del futures
            result = FileResult.concat(parts)
            t2, c2 = time.perf_counter(), time.process_time()
    else:
        raise ValueError(f"unknown pool kind {kind!r}")
    cpu = time.process_time() - c0 + _children_cpu_s() - children0  # the pool has ended
    use = cpu_use(cpu, time.perf_counter() - t0, num_workers + 1)
    check_accounting(result, paths)
    _check_rows(result, rows, f"{kind} pool, {num_workers} workers")
    return _rates(
        rows,
        pool_start_s=t1 - t0,
        processing_s=t2 - t1,
        driver_cpu_s=c2 - c1,
        cpu_use=use,
        partitions=len(tasks),
    )


# --------------------------------------------------------------------------- memory


def measure_driver_memory(data_root: str | os.PathLike, num_workers: int) -> dict:
    """Run :mod:`bench.memprobe` in a fresh interpreter: the job on ``data_root`` with
    ``num_workers``, its driver's peak RSS increase and the size of the four outputs."""
    command = [sys.executable, "-m", "bench.memprobe", os.fspath(data_root), str(num_workers)]
    env = {k: v for k, v in os.environ.items() if k != "DASK_SCHEDULER_ADDRESS"}
    done = subprocess.run(
        command, cwd=REPO_ROOT, env=env, check=True, capture_output=True, text=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def fresh_runs(data_root: str | os.PathLike, workers: int, rounds: int) -> dict[int, list[float]]:
    """Processing seconds of the job run as the command line runs it, each in a fresh
    interpreter (:func:`measure_driver_memory`), 1 and ``workers`` workers alternating,
    ``rounds`` times."""
    times: dict[int, list[float]] = {1: [], workers: []}
    for _ in range(rounds):
        for w in times:
            times[w].append(measure_driver_memory(data_root, w)["processing_s"])
    return times


# --------------------------------------------------------------------------- self-play


def measure_selfplay(agent: str, games: int, players: tuple[int, ...], seed: int) -> dict:
    """``splendor.simulate.simulate`` (play, encode, write the logs) in this process, into a
    temporary folder: games/s and rows/s per CPU second of this process, and per wall second."""
    from splendor.simulate import simulate

    with tempfile.TemporaryDirectory() as out:
        t0, c0 = time.perf_counter(), time.process_time()
        entries = simulate(games, players=players, agent=agent, seed=seed, out=out, progress=False)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    rows = sum(int(e["rows"]) for e in entries)
    return {
        "agent": agent,
        "games": len(entries),
        "rows": rows,
        "cpu_s": round(cpu, 4),
        "wall_s": round(wall, 4),
        "games_per_s": len(entries) / cpu,
        "rows_per_s": rows / cpu,
        "games_per_wall_s": len(entries) / wall,
    }
