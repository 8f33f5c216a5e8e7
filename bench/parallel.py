"""Benchmark of the Dask job: 1 vs 2 workers, Dask vs a plain multiprocessing pool, and
the driver's peak memory against the size of the outputs.

    uv run python bench/parallel.py [--games 300] [--workers 2] [--repeat 3]

The games are simulated once into ``bench/cache/games-<n>/`` (git-ignored). Every variant
processes the same files with the same config and the same partitions; the figures printed
are the best of ``--repeat`` runs (the machine may be shared). Cluster and pool start-up
are timed apart from the processing. Targets: 2 workers >= 1.6x 1 worker; Dask within 10%
of the pool; driver peak <= 2x the outputs.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import time
import tracemalloc
from pathlib import Path

import numpy as np

from imitation_learning import parallel_processor as pp
from imitation_learning.config import validate_config
from imitation_learning.results import FileResult

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


def _pool_task(args):
    paths, config = args
    return pp.process_partition(paths, config)


def _warm_up(_):
    import imitation_learning.file_processing  # noqa: F401  (import cost, not work)

    return os.getpid()


def run_pool(paths, config, workers):
    """The same partitions, through ``multiprocessing.Pool`` (spawned workers, like Dask's)."""
    sizes = pp.partition_sizes(len(paths), workers, config["preprocessing"]["files_per_partition"])
    chunks, start = [], 0
    for size in sizes:
        chunks.append((paths[start : start + size], config))
        start += size
    ctx = multiprocessing.get_context("spawn")
    t0 = time.perf_counter()
    with ctx.Pool(workers) as pool:
        pool.map(_warm_up, range(workers), chunksize=1)
        t1 = time.perf_counter()
        parts = pool.map(_pool_task, chunks, chunksize=1)
        result = FileResult.concat(parts)
        t2 = time.perf_counter()
    return result, {"start_s": t1 - t0, "processing_s": t2 - t1}


def best(runs, key="processing_s"):
    return min(runs, key=lambda r: r[1][key])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--games", type=int, default=300)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    os.environ.pop("DASK_SCHEDULER_ADDRESS", None)

    paths = pp.discover_csv_files(games_root(args.games))
    config = validate_config({"preprocessing": {"dashboard_address": "127.0.0.1:0"}})
    n = args.workers
    config["preprocessing"]["files_per_partition"] = pp.partition_sizes(len(paths), n)[0]
    print(
        f"{len(paths)} games; partitions of "
        f"{config['preprocessing']['files_per_partition']} files; {os.cpu_count()} cores; "
        f"load average {os.getloadavg()[0]:.1f}"
    )

    def dask_run(workers):
        run = pp.run_job(paths, config, num_workers=workers, progress=False)
        return run.result, run.timings

    one = [dask_run(1) for _ in range(args.repeat)]  # in process: the 1-worker path
    many = [dask_run(n) for _ in range(args.repeat)]
    pool = [run_pool(paths, config, n) for _ in range(args.repeat)]
    r1, t1 = best(one)
    rn, tn = best(many)
    rp, tp = best(pool)
    assert same(r1, rn) and same(r1, rp), "outputs differ between variants"
    rows = len(r1)

    def line(name, timings, start_key):
        s = timings["processing_s"]
        return (
            f"  {name:<28} start-up {timings[start_key]:6.2f} s   processing {s:6.2f} s "
            f"  {rows / s:9,.0f} rows/s  {len(paths) / s:7,.0f} files/s"
        )

    print(f"{rows} rows; best of {args.repeat}:")
    print(line("run_job, 1 worker (in proc)", t1, "cluster_start_s"))
    print(line(f"run_job, {n} workers (Dask)", tn, "cluster_start_s"))
    print(line(f"multiprocessing.Pool({n})", tp, "start_s"))
    speedup = t1["processing_s"] / tn["processing_s"]
    vs_pool = tn["processing_s"] / tp["processing_s"]
    print(f"  speed-up {n} workers vs 1: {speedup:.2f}x (target >= 1.6x)")
    print(f"  Dask / Pool processing time: {vs_pool:.2f} (target <= 1.10)")

    # Driver memory: a separate run under tracemalloc (it slows allocations down). The
    # modules the job imports (distributed, bokeh for the dashboard: tens of MiB of code
    # objects) are imported first, so that the peak is the job's data, not its code.
    import bokeh.plotting  # noqa: F401
    import dask.bag  # noqa: F401
    import distributed.dashboard.scheduler  # noqa: F401

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
