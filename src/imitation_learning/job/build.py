"""The command line's job: game logs -> the saved dataset (:func:`build_dataset`).

The files go through the two phases of :mod:`imitation_learning.job.phases` on the
executor of :mod:`imitation_learning.job.executors`, inside the save's temporary folder
(:class:`~imitation_learning.dataset.AtomicDir`: any error, strict-mode stop or Ctrl-C
removes it); then the driver writes the small files (names, scaler, stats, rejections) and
swaps the folder in. The driver never holds X or the labels and masks. Whatever the
executor, the saved bytes are the same.

With a result cache (``cache_dir``, :mod:`imitation_learning.result_cache`), phase 1 takes
each file's share of its partition from the cache when the file's key is there and runs the
per-file step on the others only; a run whose inputs, configuration and code are those of
the run that saved the output (the output untouched since) leaves it as it is. A re-run
with few files to process (:data:`SMALL_RERUN_SHARE`) starts no cluster: it runs in this
process, the writes of phase 2 on as many threads as workers were asked for.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from imitation_learning.config import Settings
from imitation_learning.dataset.atomic_dir import AtomicDir
from imitation_learning.dataset.splits import SPLITS
from imitation_learning.dataset.store import write_metadata
from imitation_learning.job.bag import PROCESS_TASK
from imitation_learning.job.executors import (
    THREADS,
    open_executor,
    resolve_num_workers,
    resolve_scheduler_address,
    say,
)
from imitation_learning.job.phases import SPILL_FOLDER, InProcess, OnCluster, run_phases
from imitation_learning.result_cache import (
    CacheCounts,
    CacheSpec,
    cache_size,
    config_key,
    hash_files,
    output_up_to_date,
    record_output,
    run_key,
)

#: Task name prefixes, as the dashboard and the performance report show them.
TASK_NAMES = (
    PROCESS_TASK,
    "summarise-partition",
    "bucket-leaves",
    "merge-bucket",
    "fit-scaler",
    "write-x-rows",
    "write-labels-masks",
)


@dataclass
class BuildRun:
    """What :func:`build_dataset` did."""

    output_dir: Path
    files: int
    files_rejected: int
    rows_read: int
    rows_rejected: int
    rows_per_split: dict[str, int]
    rejections: list[dict]
    num_features: int
    num_workers: int
    dashboard_link: str | None
    timings: dict[str, float] = field(default_factory=dict)
    cache: dict | None = None  # the result cache's figures (None: run without a cache)
    in_process: bool = False  # the run went in this process, without a cluster


def build_dataset(
    files: Sequence[str],
    config: Settings | dict,
    *,
    progress: bool = True,
    t_start: float | None = None,
    timings: dict[str, float] | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> BuildRun:
    """Process ``files`` and save the dataset to ``data.processed_dir`` (atomically: on
    any error, strict-mode stop or Ctrl-C, nothing is written). See the module docstring.

    ``cache_dir``: the folder of the per-file result cache
    (:mod:`imitation_learning.result_cache`; made when the first entry is written, and
    seen by the workers at that path); None runs without a cache. The saved files are the
    same either way. With a cache, a run whose inputs, configuration and code are those of
    the run that saved the output, the output untouched since, leaves it as it is."""
    t_start = time.perf_counter() if t_start is None else t_start
    settings = Settings.of(config)  # validated once
    prep, data = settings.preprocessing, settings.data
    paths = [os.fspath(p) for p in files]
    if not paths:
        raise ValueError("no game file to process")
    workers = resolve_num_workers(prep.num_workers, settings)
    timings = {**(timings or {}), "cluster_start_s": 0.0}
    cache = key = None
    if cache_dir is not None:
        # made by the first entry's write, on the worker (nothing is left by a run that
        # fails before any file is processed)
        t0 = time.perf_counter()
        contents = hash_files(paths)  # once: the partitions' lookups take them from here
        key = run_key(paths, contents, settings.as_dict())
        timings["run_key_s"] = time.perf_counter() - t0
        folder = os.path.abspath(os.fspath(cache_dir))
        cache = CacheSpec(folder, config_key(settings.step), dict(zip(paths, contents, strict=True)))
        if key is not None and output_up_to_date(cache.folder, data.processed_dir, key):
            return unchanged(paths, settings, cache, timings, t_start)

    address = resolve_scheduler_address(settings)
    threads = threads_for_small_rerun(paths, cache, workers, address, prep.report)
    with AtomicDir(Path(data.processed_dir)) as tmp:
        with open_executor(len(paths), settings, workers, timings=timings, threads=threads,
                           record_tasks=True) as executor:
            if executor.in_process:
                runner = InProcess(tmp, cache, executor.workers if executor.kind == THREADS else 1)
            else:
                runner = OnCluster(executor.client, tmp, cache)
            done = run_phases(runner, paths, settings, executor.workers, tmp, progress, timings)
        t_save = time.perf_counter()
        plan = done.plan
        # The spill folder goes before the swap: a partition that Dask ran again after its
        # write (a worker lost late in the run, the task left running on an existing
        # cluster) finds no folder to write into, and nothing of it reaches the output.
        shutil.rmtree(tmp / SPILL_FOLDER, ignore_errors=True)
        write_metadata(
            tmp,
            stats={
                "splits": plan.splits,
                "label_counts": {s: done.heads[s][0] for s in SPLITS},
                "mask_stats": {s: done.heads[s][1] for s in SPLITS},
            },
            feature_names=done.names,
            column_kinds=done.kinds,
            scaler=plan.scaler,
            rows_kept=plan.rows_kept,
            input_files=paths,
            rejections=[r.to_dict() for r in plan.rejections],
            rows_read=plan.rows_read,
            config=settings.as_dict(),
            timings={**timings, "total_s": time.perf_counter() - t_start},
        )
        timings["metadata_s"] = time.perf_counter() - t_save
    figures = None
    if cache is not None and done.counts is not None:
        if key is not None:
            try:
                record_output(cache.folder, data.processed_dir, key)
            except OSError:  # the next run assembles the output again
                pass
        figures = cache_figures(cache, done.counts, output_unchanged=False)
    timings["total_s"] = time.perf_counter() - t_start
    return BuildRun(
        output_dir=Path(data.processed_dir),
        files=len(paths),
        files_rejected=sum(1 for r in plan.rejections if r.file_level),
        rows_read=plan.rows_read,
        rows_rejected=sum(r.rows for r in plan.rejections),
        rows_per_split=dict(plan.split_rows),
        rejections=[r.to_dict() for r in plan.rejections],
        num_features=len(done.names),
        num_workers=executor.workers,
        dashboard_link=executor.dashboard_link,
        timings=timings,
        cache=figures,
        in_process=executor.in_process,
    )


#: A re-run with the result cache whose files to process (no entry in the cache) are at
#: most this share of its files runs in this process, without a cluster. Its work is then
#: mostly reading entries and writing X: starting and stopping the local cluster (1.2-1.3 s
#: of a 6.7 s re-run after 1% new games, docs/benchmarks.md) costs more than processes save.
SMALL_RERUN_SHARE = 0.05


def threads_for_small_rerun(
    paths, cache: CacheSpec | None, workers: int, address: str | None, report: str | None
) -> int:
    """The threads to run a small re-run with in this process (:data:`SMALL_RERUN_SHARE`),
    0 to run as usual: always on a cluster given by address, with a performance report
    (it needs one), or with one worker or one file (in this process already)."""
    if cache is None or address is not None or report is not None:
        return 0
    if workers == 1 or len(paths) == 1:
        return 0
    fresh = len(cache.missing(paths))
    if fresh > SMALL_RERUN_SHARE * len(paths):
        return 0
    say(
        f"{len(paths) - fresh} of {len(paths)} files in the result cache, {fresh} to process: "
        f"run in this process ({workers} threads), no cluster needed"
    )
    return workers


def unchanged(paths, settings: Settings, cache: CacheSpec, timings: dict, t_start: float) -> BuildRun:
    """The output already holds this very run's dataset (same inputs, configuration and
    code, its files untouched since: :func:`~imitation_learning.result_cache.output_up_to_date`):
    it is left as it is, and the run's figures are read from it."""
    out = Path(settings.data.processed_dir)
    stats = json.loads((out / "stats.json").read_text(encoding="utf-8"))
    rejections = json.loads((out / "rejections.json").read_text(encoding="utf-8"))
    timings["total_s"] = time.perf_counter() - t_start
    return BuildRun(
        output_dir=out,
        files=len(paths),
        files_rejected=sum(1 for r in rejections if r.get("line") is None),
        rows_read=int(stats["rows_read"]),
        rows_rejected=int(stats["rows_rejected"]),
        rows_per_split={s: int(stats["splits"][s]["rows"]) for s in SPLITS},
        rejections=rejections,
        num_features=int(stats["num_features"]),
        num_workers=0,
        dashboard_link=None,
        timings=timings,
        cache=cache_figures(cache, CacheCounts(cached=len(paths)), output_unchanged=True),
    )


def cache_figures(cache: CacheSpec, counts: CacheCounts, output_unchanged: bool) -> dict:
    """What the run's summary says of the cache: its counts, and its entries and size."""
    entries, size = cache_size(cache.folder)
    return {
        "dir": cache.folder,
        "files_cached": counts.cached,
        "files_processed": counts.processed,
        "not_stored": counts.not_stored,
        "damaged": list(counts.damaged),
        "entries": entries,
        "bytes": size,
        "output_unchanged": output_unchanged,
    }
