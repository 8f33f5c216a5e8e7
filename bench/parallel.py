"""Benchmark of the Dask job: 1 vs 2 workers, Dask vs a plain multiprocessing pool, and
the driver's peak memory against the size of the outputs.

    uv run python bench/parallel.py [--games 300] [--workers 2] [--repeat 5] [--fresh 5]

The games are simulated once into ``bench/cache/games-<n>/`` (git-ignored). Every variant
processes the same files with the same config and the same partitions; the figures printed
are the best of ``--repeat`` runs (the machine may be shared). Cluster and pool start-up
are timed apart from the processing. ``--fresh``: also 1 vs 2 workers with each run in a
fresh interpreter, as the command line runs (``bench/memprobe.py``). Targets: 2 workers
>= 1.6x 1 worker; Dask within 10% of the pool; driver peak <= 2x the outputs.
"""

from __future__ import annotations

import argparse
import copy
import multiprocessing
import os
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

import dask
import numpy as np

from imitation_learning import parallel_processor as pp
from imitation_learning.cluster import LOCAL_CLUSTER_CONFIG
from imitation_learning.config import validate_config
from imitation_learning.per_file.results import FileResult

if __package__ in (None, ""):  # run as a script: the ``bench`` package from the repository
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

CACHE = Path(__file__).resolve().parent / "cache"


def games_root(num_games: int) -> Path:
    """``num_games`` greedy self-play games, simulated once and cached."""
    root = CACHE / f"games-{num_games}"
    if not (root / "manifest.csv").is_file():
        from splendor.simulate import simulate

        print(f"simulating {num_games} games into {root} (once) ...")
        simulate(num_games, players=(2, 3, 4), agent="greedy", seed=424242, out=root)
    return root


def output_nbytes(result: FileResult) -> int:
    """Size of the four outputs: the frame (deep) plus the arrays."""
    return (
        int(result.df.memory_usage(deep=True, index=True).sum())
        + result.features.nbytes
        + sum(a.nbytes for a in result.labels.values())
        + sum(a.nbytes for a in result.masks.values())
    )


def same(a: FileResult, b: FileResult) -> bool:
    return (
        a.df.equals(b.df)
        and np.array_equal(a.features, b.features)
        and all(np.array_equal(a.labels[h], b.labels[h]) for h in a.labels)
        and all(np.array_equal(a.masks[h], b.masks[h]) for h in a.masks)
    )


CLUSTER = {
    "threads_per_worker": 1,
    "processes": True,
    "host": "127.0.0.1",
    "dashboard_address": "127.0.0.1:0",
}


def ctx_pool(workers):
    """A pool of spawned worker processes (like Dask's nanny workers)."""
    return multiprocessing.get_context("spawn").Pool(workers)


def _pool_task(args):
    paths, config = args
    return pp.process_partition(paths, config, pack=True)  # as the job runs it


def _warm_up(_):
    import imitation_learning.per_file.file_processing  # noqa: F401  (import cost, not work)

    return os.getpid()


def pool_chunks(paths, config, workers):
    """The job's partitions, as ``(paths, config)`` tasks for the pool."""
    sizes = pp.partition_sizes(
        len(paths), workers, config["preprocessing"]["files_per_partition"], pp.file_weights(paths)
    )
    chunks, start = [], 0
    for size in sizes:
        chunks.append((paths[start : start + size], config))
        start += size
    return chunks


def run_pool(pool, chunks):
    """The same partitions through ``multiprocessing.Pool``, concatenated in order."""
    t0 = time.perf_counter()
    parts = pool.map(_pool_task, chunks, chunksize=1)
    result = FileResult.concat(parts)
    return result, {"processing_s": time.perf_counter() - t0}


def run_dask(paths, config, workers=None, address=None):
    cfg = copy.deepcopy(config)
    cfg["preprocessing"]["scheduler_address"] = address
    run = pp.run_job(paths, cfg, num_workers=workers, progress=False)
    return run.result, run.timings


def fresh_runs(root: Path, workers: int, rounds: int) -> dict[int, list[float]]:
    """Processing times of runs each in a fresh interpreter (:mod:`bench.memprobe`), for
    1 and ``workers`` workers, alternating."""
    from bench.measure import measure_driver_memory

    times: dict[int, list[float]] = {1: [], workers: []}
    for _ in range(rounds):
        for w in times:
            times[w].append(measure_driver_memory(root, w)["processing_s"])
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--games", type=int, default=300)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--fresh", type=int, default=5, help="rounds of runs in fresh interpreters (0: none)"
    )
    args = parser.parse_args()
    os.environ.pop("DASK_SCHEDULER_ADDRESS", None)
    from distributed import LocalCluster

    paths = pp.discover_csv_files(games_root(args.games))
    config = validate_config({"preprocessing": {"dashboard_address": "127.0.0.1:0"}})
    n = args.workers
    sizes = pp.partition_sizes(len(paths), n, None, pp.file_weights(paths))
    print(
        f"{len(paths)} games; {len(sizes)} partitions of {min(sizes)}-{max(sizes)} files "
        f"(the job's split for {n} workers, by file size); {os.cpu_count()} cores; "
        f"load average {os.getloadavg()[0]:.1f}"
    )

    # The in-process run first, with no cluster in this process: an idle local cluster's
    # scheduler threads would share the interpreter with it (as they never do in a real
    # one-worker run). The n-worker job starts (and stops) its own cluster every run, as
    # the command line does; its start-up is timed apart (run.timings). Each run's outputs
    # are compared with the first in-process run's, then dropped: keeping every run's
    # outputs alive would make each later run write into fresh memory.
    timings: dict[str, list[dict]] = {}
    reference = None

    def measure(name: str, variant) -> None:
        nonlocal reference
        result, run_timings = variant()
        if reference is None:
            reference = result
        elif not same(reference, result):
            raise AssertionError(f"{name}: outputs differ from the in-process run's")
        timings.setdefault(name, []).append(run_timings)

    for _ in range(args.repeat):
        measure("run_job, 1 worker, in process", lambda: run_dask(paths, config, 1))
    t0 = time.perf_counter()
    with ctx_pool(n) as pool:
        pool.map(_warm_up, range(n), chunksize=1)
        pool_start = time.perf_counter() - t0
        chunks = pool_chunks(paths, config, n)
        with dask.config.set(LOCAL_CLUSTER_CONFIG), LocalCluster(n_workers=1, **CLUSTER) as c1:
            variants = {
                f"run_job, {n} workers (own cluster)": lambda: run_dask(paths, config, n),
                "run_job on a 1-worker LocalCluster": lambda: run_dask(
                    paths, config, None, c1.scheduler_address
                ),
                f"multiprocessing.Pool({n})": lambda: run_pool(pool, chunks),
            }
            for _ in range(args.repeat):  # interleaved: a busy moment hits every variant
                for name, variant in variants.items():
                    measure(name, variant)
    results = {name: min(t, key=lambda r: r["processing_s"]) for name, t in timings.items()}
    rows = len(reference)

    print(f"{rows} rows; processing time, best of {args.repeat} (start-up apart):")
    for name, best_timings in results.items():
        s = best_timings["processing_s"]
        print(f"  {name:<34} {s:6.2f} s  {rows / s:9,.0f} rows/s  {len(paths) / s:6,.0f} files/s")
    own = results[f"run_job, {n} workers (own cluster)"]
    starts = [t["cluster_start_s"] for t in timings[f"run_job, {n} workers (own cluster)"]]
    print(
        f"  start-up: run_job's {n}-worker cluster {min(starts):.2f}-{max(starts):.2f} s "
        f"(not in the processing times); pool {pool_start:.2f} s"
    )
    one = results["run_job, 1 worker, in process"]["processing_s"]
    one_cluster = results["run_job on a 1-worker LocalCluster"]["processing_s"]
    many = own["processing_s"]
    pool_s = results[f"multiprocessing.Pool({n})"]["processing_s"]
    print(
        f"  speed-up {n} workers vs 1: {one / many:.2f}x vs in process, "
        f"{one_cluster / many:.2f}x vs a 1-worker cluster (target >= 1.6x)"
    )
    print(f"  Dask / Pool processing time: {many / pool_s:.2f} (target <= 1.10)")

    # As the command line runs: each run in a fresh interpreter. The in-process runs above
    # reuse the memory the previous run freed, which a 2-worker job's new workers never can.
    if args.fresh:
        fresh = fresh_runs(games_root(args.games), n, args.fresh)
        best = {w: min(t) for w, t in fresh.items()}
        median = {w: statistics.median(t) for w, t in fresh.items()}
        print(
            f"  fresh interpreter per run ({args.fresh} each): 1 worker {best[1]:.2f} s best, "
            f"{median[1]:.2f} s median; {n} workers {best[n]:.2f} s best, {median[n]:.2f} s "
            f"median; speed-up {best[1] / best[n]:.2f}x (best), "
            f"{median[1] / median[n]:.2f}x (median)"
        )

    # Driver memory: a separate run under tracemalloc (it slows allocations down). The
    # modules the job imports (distributed, bokeh for the dashboard: tens of MiB of code
    # objects) are imported first, so that the peak is the job's data, not its code.
    import bokeh.plotting  # noqa: F401
    import distributed.dashboard.scheduler  # noqa: F401
    from dask import bag  # noqa: F401

    tracemalloc.start()
    run = pp.run_job(paths, config, num_workers=n, progress=False)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    out = output_nbytes(run.result)
    print(
        f"  driver peak (tracemalloc, {n}-worker run): {peak / 2**20:.1f} MiB; outputs "
        f"{out / 2**20:.1f} MiB; ratio {peak / out:.2f} (target <= 2)"
    )


if __name__ == "__main__":
    main()
