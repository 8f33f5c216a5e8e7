"""How the in-memory job submits its partitions: one keyed task each (``client.submit``, as
``parallel_processor._collect`` does) against a Dask bag of the same partitions
(``db.from_sequence(chunks, npartitions=len(chunks)).map(...)``, which Dask runs as one
task a partition plus the alias task its fusion adds after each), on one warm cluster.

    uv run python -m bench.keyed_tasks [--games 300] [--workers 2] [--repeat 7]

Both gather the partitions as they finish and concatenate them in path order, as the job
does. Interleaved runs; best and median printed. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from bench.datasets import get_dataset
from imitation_learning import parallel_processor as pp
from imitation_learning.cluster import pool_client
from imitation_learning.config import validate_config
from imitation_learning.per_file.results import FileResult


class _NoBar:
    def update(self, n: int) -> None:
        pass


def with_bag(client, paths, cfg, sizes) -> FileResult:
    import dask.bag as db
    from distributed import as_completed

    bounds = np.cumsum([0, *sizes]).tolist()
    chunks = [paths[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    task, step = pp._partition_task(), pp._file_processor()
    bag = db.from_sequence(chunks, npartitions=len(chunks)).map(task, cfg, step)
    futures = client.compute(bag.to_delayed())
    position = {f.key: i for i, f in enumerate(futures)}
    parts: list = [None] * len(futures)
    for future, part in as_completed(futures, with_results=True, loop=client.loop):
        parts[position[future.key]] = part[0]  # a bag partition is a list of one result
        future.release()
    index = [entry for p in parts for entry in pp._pop_file_index(p)]
    return pp.reject_duplicate_games(FileResult.concat(parts, release=True), index)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.keyed_tasks")
    parser.add_argument("--games", type=int, default=300)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args(argv)
    ds = get_dataset(args.games)
    paths, cfg = list(ds.paths), validate_config({})
    sizes = pp.partition_sizes(len(paths), args.workers, None, pp.file_weights(paths))
    runners = {
        "keyed tasks (client.submit)": lambda c: pp._collect(c, paths, cfg, sizes, _NoBar()),
        "bag (from_sequence + map)": lambda c: with_bag(c, paths, cfg, sizes),
    }
    times: dict[str, list[float]] = {name: [] for name in runners}
    with pool_client(args.workers, dashboard_address=None, worker_setup=pp._import_file_step) as c:
        for run in runners.values():
            run(c)  # warm-up
        for _ in range(args.repeat):
            for name, run in runners.items():
                t0 = time.perf_counter()
                result = run(c)
                times[name].append(time.perf_counter() - t0)
                assert len(result.df) == ds.rows
    print(f"{ds.key}: {len(paths)} files, {ds.rows:,} rows, {len(sizes)} partitions, "
          f"{args.workers} workers")
    for name, ts in times.items():
        print(f"  {name:<28} best {min(ts):.3f} s, median {statistics.median(ts):.3f} s")


if __name__ == "__main__":
    main()
