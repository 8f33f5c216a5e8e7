"""The two phases of the dataset's job, on an executor (:mod:`imitation_learning.job.
executors`), with the plan between them (:mod:`imitation_learning.job.plan`):

1. the job's bag (:mod:`imitation_learning.job.bag`): the game files mapped partition-wise
   through :func:`~imitation_learning.partition_rows.process_partition_rows` (the per-file
   step, the partition's rows of X spilled into the save's folder, their labels, masks and
   per-game statistics parked in a side file next to it), one task a partition;
   ``summarise-partition`` tasks (``client.map``) send the driver the summaries only,
   without the per-game statistics;
2. the scaler merged on the workers in the fixed tree of
   :mod:`~imitation_learning.dataset.moments_tree` (``bucket-leaves``: a partition's train
   games of a bucket; ``merge-bucket``; ``fit-scaler``);
3. ``write-x-rows`` (one per partition, ``client.map``): the partition's labels and masks
   written in pieces at their rows of the preallocated ``.npz`` files, its rows of X
   standardised and written at their offsets; ``write-labels-masks`` (one per split,
   ``client.submit``): that split's labels and masks files sealed, their statistics summed.

Phase 2 is plain Dask futures, not the bag: its tasks take the plan's offsets and the
scaler, which exist only once phase 1 is done. :class:`InProcess` runs both phases in
this process (one worker; or a small re-run, phase 2 on threads); :class:`OnCluster` on a
Dask cluster, whose workers keep the partitions between the phases. :func:`run_phases`
runs them on either.
"""

from __future__ import annotations

import dataclasses
import os
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from imitation_learning.cluster import results_as_completed
from imitation_learning.config import Settings
from imitation_learning.dataset.feature_matrix import feature_columns
from imitation_learning.dataset.files import fsync_path
from imitation_learning.dataset.moments_tree import Leaves, merge_bucket, scaler_from_buckets
from imitation_learning.dataset.scaler import Scaler
from imitation_learning.dataset.splits import SPLITS
from imitation_learning.job.bag import files_bag, partition_futures, processed_bag
from imitation_learning.job.partitions import chunks_of, file_weights, partition_sizes
from imitation_learning.job.plan import (
    Plan,
    fit_scaler_here,
    pieces,
    plan_assembly,
    preallocate,
    strategic_width,
    targets,
)
from imitation_learning.job.steps import strict_error
from imitation_learning.partition_rows import (
    PartitionRows,
    PartitionSummary,
    bucket_leaves,
    continuous_columns,
    process_partition_rows,
    rows_in_memory,
    summarise_partition,
)
from imitation_learning.partition_writes import (
    SplitFile,
    write_split_labels_masks,
    write_x_rows,
)
from imitation_learning.result_cache import CacheCounts, CacheSpec
from imitation_learning.watched_fetch import run_bounded

#: The subfolder of the save's temporary folder holding the spill files between the phases.
SPILL_FOLDER = ".spill"


def spill_folder(save_folder: Path) -> str:
    """The spill folder of a save (made here, by the driver: never by a task)."""
    folder = Path(save_folder) / SPILL_FOLDER
    folder.mkdir(exist_ok=True)
    return str(folder)


def _seal(folder: Path, plan: Plan, written) -> dict[str, tuple[dict, dict]]:
    """Every split's labels and masks files sealed (``written``: the partitions' writes)."""
    return {s: write_split_labels_masks(str(folder), s, plan.split_rows[s], *written)
            for s in SPLITS}


class InProcess:
    """Both phases in this process. Between them, each partition's X waits in a spill file
    in the save's temporary folder (removed with it); its labels, masks and per-game
    statistics in a side file next to it.

    ``threads`` > 1: phase 2 runs that many partitions' writes at once (numpy's arithmetic
    and the writes leave Python's lock; phase 1, mostly Python, gains nothing from threads)."""

    def __init__(self, folder: Path, cache: CacheSpec | None = None, threads: int = 1):
        self.folder = folder
        self.cache = cache
        self.threads = max(1, threads)
        self.parts: list[PartitionRows] = []

    def process(self, paths, sizes, settings: Settings, bar) -> list[PartitionSummary]:
        for chunk in chunks_of(paths, sizes):
            self.parts.append(
                process_partition_rows(
                    chunk,
                    settings.step,
                    on_file_done=lambda: bar.update(1),
                    spill_dir=spill_folder(self.folder),
                    cache=self.cache.of(chunk) if self.cache else None,
                )
            )
        return [summarise_partition(r) for r in self.parts]

    def fit_scaler(self, plan: Plan) -> Scaler:
        return fit_scaler_here(plan, lambda p, g, pos: bucket_leaves(self.parts[p], g, pos))

    def write(self, plan: Plan, files: dict[str, SplitFile]) -> dict[str, tuple[dict, dict]]:
        def write_part(i: int) -> dict:
            rows = self.parts[i]
            self.parts[i] = None  # type: ignore[call-overload]  # freed once written
            return write_x_rows(rows, plan.group_split[i], targets(files, plan.first_row[i]),
                                plan.scaler, pieces(self.folder, plan, i))

        if self.threads == 1:  # a partition at a time
            return _seal(self.folder, plan, [write_part(i) for i in range(len(self.parts))])
        pool = ThreadPoolExecutor(self.threads)
        try:
            written = list(pool.map(write_part, range(len(self.parts))))
        finally:  # on an error or Ctrl-C, the writes not started yet never start
            pool.shutdown(wait=True, cancel_futures=True)
        return _seal(self.folder, plan, written)

    def close(self) -> None:
        self.parts.clear()


def process_files_task(files: list, step, cache: CacheSpec | None, spill_dir: str | None):
    """What a partition of the bag runs: :func:`process_partition_rows` on its files
    (with the cache: ``(path, content hash)`` pairs, the hashes the spec's contents)."""
    if cache is None:
        return process_partition_rows(files, step, spill_dir=spill_dir)
    spec = dataclasses.replace(cache, contents={p: c for p, c in files if c is not None})
    paths = [p for p, _ in files]
    return process_partition_rows(paths, step, cache=spec, spill_dir=spill_dir)


def summary_task(partition: list) -> PartitionSummary:
    """The ``summarise-partition`` task: a partition's summary (a partition of the bag
    holds one element, its :class:`PartitionRows`)."""
    (rows,) = partition
    return summarise_partition(rows)


def write_x_rows_task(partition: list, *args):
    """The ``write-x-rows`` task: :func:`write_x_rows` of a partition of the bag."""
    (rows,) = partition
    return write_x_rows(rows, *args)


def bucket_leaves_task(partition: list, groups, positions) -> Leaves:
    """The ``bucket-leaves`` task: :func:`bucket_leaves` of a partition of the bag."""
    (rows,) = partition
    return bucket_leaves(rows, groups, positions)


def rows_in_memory_task(partition: list) -> PartitionRows:
    (rows,) = partition
    return rows_in_memory(rows)


class OnCluster:
    """Both phases as Dask tasks (named, see :data:`TASK_NAMES`) on the client's cluster."""

    def __init__(self, client, folder: Path, cache: CacheSpec | None = None):
        self.client = client
        self.folder = folder
        self.cache = cache
        self.run = uuid.uuid4().hex[:16]  # keys of this run only
        self.rows: list = []
        self.held: list = []  # futures kept until the end: the dashboard shows them done
        self.scaler = None  # the fit-scaler future (fit_scaler), for the writes
        self.shared = False  # whether the workers see the save's folder

    def _key(self, name: str, i) -> str:
        return f"{name}-{self.run}-{i}"

    def process(self, paths, sizes, settings: Settings, bar) -> list[PartitionSummary]:
        client = self.client
        self.no_workers_timeout_s = settings.preprocessing.no_workers_timeout_s
        n = range(len(sizes))
        # X spilled into the save's folder when the workers see it (see partition_rows)
        self.shared = self.workers_see(self.folder)
        spill_dir = spill_folder(self.folder) if self.shared else None
        cache = contents = None
        if self.cache is not None:  # each file's content hash travels with its path
            cache = dataclasses.replace(self.cache, contents={})
            contents = [self.cache.contents.get(p) for p in paths]
        # the bag of the run's files, mapped partition-wise: one task a partition
        # (the workers get the per-file step's settings only)
        bag = processed_bag(files_bag(paths, sizes, contents), process_files_task, settings.step,
                            cache, spill_dir)
        self.rows = partition_futures(client, bag)
        summaries_f = client.map(
            summary_task, self.rows, key=[self._key("summarise-partition", i) for i in n]
        )
        position = {f.key: i for i, f in enumerate(summaries_f)}
        summaries: list[PartitionSummary | None] = [None] * len(sizes)
        summary = None
        self.held = summaries_f  # small; released at the end (a released summary, with no
        # task after it, would leave the scheduler and the dashboard's Progress panel)
        for future, summary in self._as_completed(summaries_f):
            i = position[future.key]
            summaries[i] = summary
            bar.update(sizes[i])
        del summary
        return summaries  # type: ignore[return-value]

    def _as_completed(self, futures):
        """``(future, result)`` as they finish; a lost cluster raises ClusterLostError."""
        return results_as_completed(
            self.client, futures, no_workers_timeout_s=self.no_workers_timeout_s
        )

    def workers_see(self, folder: Path) -> bool:
        """Whether every worker sees ``folder`` (the save's temporary folder, whose name
        is unique): the workers then write into it. A worker lost during the question is
        not counted (its replacement runs on the same machine, or fails its tasks)."""
        for _ in range(3):
            try:
                seen = run_bounded(self.client, os.path.isdir, str(folder))  # client.run, bounded
            except OSError:  # a connection closed under the call, or time-out: ask again
                continue
            return bool(seen) and all(seen.values())
        return False

    def fit_scaler(self, plan: Plan) -> Scaler:
        """The scaler, merged on the workers (``bucket-leaves``: a partition's train games of
        a bucket; ``merge-bucket``; ``fit-scaler``), its future kept for the writes."""
        client, width = self.client, len(plan.continuous)
        nodes = []
        for b, (first, stop, parts) in enumerate(plan.buckets):
            leaves = [
                client.submit(bucket_leaves_task, self.rows[p], groups, positions,
                              key=self._key("bucket-leaves", f"{p}-{b}"))
                for p, groups, positions in parts
            ]
            nodes.append(client.submit(merge_bucket, first, stop, width, *leaves,
                                       key=self._key("merge-bucket", b)))
        self.scaler = client.submit(scaler_from_buckets, plan.width, plan.continuous, *nodes,
                                    key=self._key("fit-scaler", 0))
        self.held.append(self.scaler)
        return next(iter(self._as_completed([self.scaler])))[1]

    def write(self, plan: Plan, files: dict[str, SplitFile]) -> dict[str, tuple[dict, dict]]:
        client = self.client
        if not self.shared:
            return self._write_from_driver(plan, files)
        n = len(self.rows)
        writes = client.map(
            write_x_rows_task,
            self.rows,
            plan.group_split,
            [targets(files, plan.first_row[i]) for i in range(n)],
            [self.scaler] * n,
            [pieces(self.folder, plan, i) for i in range(n)],
            key=[self._key("write-x-rows", i) for i in range(n)],
        )
        labels = [
            client.submit(
                write_split_labels_masks,
                str(self.folder),
                split,
                plan.split_rows[split],
                *writes,
                key=self._key("write-labels-masks", split),
            )
            for split in SPLITS
        ]
        # A partition's rows stay on its worker while its write waits (the scheduler keeps
        # them for it, and recomputes them if the worker is lost), then leave its memory:
        # the page cache the writes fill reuses it. The dashboard still counts them done.
        self.held += writes
        self.rows = []
        position = {future.key: i for i, future in enumerate(labels)}
        results: list = [None] * len(labels)
        for future, result in self._as_completed(labels):
            results[position[future.key]] = result
        return dict(zip(SPLITS, results, strict=True))

    def _write_from_driver(self, plan: Plan, files) -> dict[str, tuple[dict, dict]]:
        """The workers cannot see the output: the driver fetches one partition at a time
        and writes it (bounded memory, no shared filesystem needed)."""
        written = []
        for i, future in enumerate(self.rows):
            if self.cache is not None:  # rows mapped from the cache: read on the worker
                future = self.client.submit(
                    rows_in_memory_task, future, key=self._key("rows-in-memory", i)
                )
                rows = next(self._as_completed([future]))[1]  # future.result(), never hanging
            else:  # a partition of the bag: its one element
                (rows,) = next(self._as_completed([future]))[1]
            written.append(
                write_x_rows(rows, plan.group_split[i], targets(files, plan.first_row[i]),
                             plan.scaler, pieces(self.folder, plan, i))
            )
            del rows
            future.release()
        return _seal(self.folder, plan, written)

    def close(self) -> None:
        futures = self.rows + self.held
        if futures:
            self.client.cancel(futures)
        self.rows, self.held = [], []


@dataclass
class Phases:
    """What :func:`run_phases` did: the plan, each split's label and mask statistics
    (``heads``), X's column names and kinds, the cache's counts summed over the partitions
    (None without a cache)."""

    plan: Plan
    heads: dict[str, tuple[dict, dict]]
    names: list[str]
    kinds: list[str]
    counts: CacheCounts | None


def run_phases(runner, paths, settings: Settings, workers, tmp, progress, timings) -> Phases:
    """Phase 1, the plan, phase 2, the flush of X (``preprocessing.durable``), on
    ``runner`` (:class:`InProcess` or :class:`OnCluster`), closed at the end."""
    prep, data = settings.preprocessing, settings.data
    sizes = partition_sizes(len(paths), workers, prep.files_per_partition, file_weights(paths))
    try:
        t0 = time.perf_counter()
        with tqdm(total=len(paths), unit="file", disable=not progress) as bar:
            summaries = runner.process(paths, sizes, settings, bar)
        t1 = time.perf_counter()
        timings["processing_s"] = t1 - t0
        counts = None
        if runner.cache is not None:
            counts = CacheCounts()
            for s in summaries:
                if s.cache is not None:
                    counts.add(s.cache)
        names, kinds = feature_columns(
            strategic_width(summaries, prep.enable_feature_engineering)
        )
        width = len(names)
        for s in summaries:
            if s.rows and s.width != width:
                raise AssertionError(f"partition X has {s.width} columns, expected {width}")
        ratios = (data.train_ratio, data.val_ratio, data.test_ratio)
        plan = plan_assembly(summaries, paths, ratios, settings.seed, width,
                             continuous_columns(kinds))
        del summaries
        if prep.strict and plan.rejections:  # a duplicate game (others stop on a worker)
            raise strict_error(plan.rejections[0])
        t_scaler = time.perf_counter()
        plan.scaler = runner.fit_scaler(plan)
        timings["scaler_s"] = time.perf_counter() - t_scaler
        files = preallocate(tmp, plan.split_rows, width)
        t2 = time.perf_counter()
        timings["plan_s"] = t2 - t1
        heads = runner.write(plan, files)
        t3 = time.perf_counter()
        timings["write_s"] = t3 - t2
        if prep.durable:
            for f in files.values():
                fsync_path(Path(f.path))
        timings["flush_s"] = time.perf_counter() - t3
    finally:
        runner.close()
    return Phases(plan, heads, names, kinds, counts)
