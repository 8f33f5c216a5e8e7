"""The command line's job: game logs -> the saved dataset, every step that grows with the
number of rows running on the workers.

``build_dataset(files, config)`` (used by ``run_preprocessing``, hence ``splendor-il
preprocess``) runs in two phases of Dask tasks, named so that the dashboard tells them
apart (:mod:`imitation_learning.partition_rows` has the task functions):

1. ``process-partition`` (one per partition of files): the per-file step and the
   partition's rows of X, kept in the worker's memory (the futures are held until the end
   of the run, so a lost worker's results are recomputed by Dask, and the dashboard's
   Progress panel fills up); ``summarise-partition`` sends the driver the accounting, the
   file index and float64 partial statistics per game.
2. On the driver, from the summaries alone (work proportional to the number of files and
   games, not rows): games present in two files are left out, the accounting is checked,
   the split by game is made (:func:`~imitation_learning.dataset.split_by_game`: it depends
   only on the set of game ids and the seed), the scaler is merged from the train games'
   statistics in game-id order (so it does not depend on the partitioning), every
   partition's first row in each split is known, and ``X_{split}.npy`` are preallocated in
   the save's temporary folder (``numpy.lib.format.open_memmap``).
3. ``write-x-rows`` (one per partition): standardise the partition's rows and write them at
   their offsets; ``write-labels-masks`` (one per split): that split's labels and masks.
4. The driver writes the small files (names, scaler, stats, rejections), flushes the X
   files and swaps the folder in (:class:`~imitation_learning.dataset.AtomicDir`).

The driver never holds X or the labels and masks. The workers must see the output folder's
parent at the same path (the job's own local cluster does); on a cluster whose workers do
not, step 3 runs in the driver instead, one partition at a time (slower, as little memory).
One worker (and no scheduler address) runs everything in this process; the rows of X then
wait in a spill file per partition inside the save's temporary folder between the phases.
Whatever the path, the saved bytes are the same.

With a result cache (``cache_dir``, :mod:`imitation_learning.result_cache`), phase 1 takes
each file's share of its partition (rows of X, labels, masks, game statistics, report)
from the cache when the file's key is there and runs the per-file step on the others only;
a cached partition's rows are mapped from the cache entries by its writes (no spill file).
The plan and phase 2 are unchanged, and so are the saved bytes. A re-run with few files to
process (:data:`SMALL_RERUN_SHARE`) starts no local cluster: it runs in this process, the
writes of phase 2 on as many threads as workers were asked for.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from imitation_learning import parallel_processor as pp
from imitation_learning.cluster import results_as_completed
from imitation_learning.config import validate_config
from imitation_learning.dataset.atomic_dir import AtomicDir
from imitation_learning.dataset.feature_matrix import feature_columns
from imitation_learning.dataset.files import fsync_path
from imitation_learning.dataset.moments_tree import (
    bucket_bounds,
    merge_bucket,
    scaler_from_buckets,
)
from imitation_learning.dataset.npz_pieces import preallocate as npz_preallocate
from imitation_learning.dataset.scaler import Scaler
from imitation_learning.dataset.splits import SPLITS, split_by_game
from imitation_learning.dataset.stats import split_stats
from imitation_learning.dataset.store import labels_masks_layouts, write_metadata
from imitation_learning.partition_rows import (
    PartitionRows,
    PartitionSummary,
    SplitFile,
    SplitPieces,
    bucket_leaves,
    continuous_columns,
    process_partition_rows,
    rows_in_memory,
    summarise_partition,
    write_split_labels_masks,
    write_x_rows,
)
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
from splendor.errors import Rejection

#: Task name prefixes, as the dashboard and the performance report show them.
TASK_NAMES = (
    "process-partition",
    "summarise-partition",
    "bucket-leaves",
    "merge-bucket",
    "fit-scaler",
    "write-x-rows",
    "write-labels-masks",
)


@dataclass
class Plan:
    """What the driver decides between the two phases (from the summaries only)."""

    rejections: list[Rejection]
    rows_read: int
    rows_kept: int
    group_split: list[np.ndarray]  # per partition: split index of each game group, -1 = out
    first_row: list[dict[str, int]]  # per partition: split -> its first row in X_{split}
    split_rows: dict[str, int]
    splits: dict  # stats.json "splits"
    # the scaler's tree (dataset.moments_tree): per bucket, its leaves [first, stop) and
    # (partition, its game groups in the bucket, their leaf positions)
    buckets: list[tuple[int, int, list[tuple[int, np.ndarray, np.ndarray]]]] = field(
        default_factory=list
    )
    width: int = 0
    continuous: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    scaler: Scaler | None = None  # fitted on the workers (the runners' fit_scaler)


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


# --------------------------------------------------------------------------- the plan


def plan_assembly(
    summaries: Sequence[PartitionSummary],
    paths: Sequence[str],
    ratios: Sequence[float],
    seed: int,
    width: int,
    continuous: np.ndarray,
) -> Plan:
    """Duplicates left out, accounting checked, split, offsets and scaler (see the module
    docstring). ``summaries`` are in partition (path) order."""
    file_index = [entry for s in summaries for entry in s.file_index]
    duplicates = pp.duplicate_files(file_index)
    rejections = pp.merge_rejections(
        [r for s in summaries for r in s.rejections], duplicates, file_index
    )
    rows_read = sum(s.rows_read for s in summaries)
    files_ok = [f for s in summaries for f in s.files_ok if f not in duplicates]

    # every game group of every partition, with the partition it is in
    part_of_group, kept_groups = [], []
    game_ids, rows, order_in_part = [], [], []
    for p, s in enumerate(summaries):
        g = s.groups
        dropped = np.array([s.file_index[f][0] in duplicates for f in g.file], dtype=bool)
        part_of_group.append(np.full(len(g), p))
        kept_groups.append(~dropped)
        game_ids.append(g.game_id)
        rows.append(g.rows)
        order_in_part.append(np.arange(len(g)))
    part_of_group = np.concatenate(part_of_group) if part_of_group else np.empty(0, int)
    kept = np.concatenate(kept_groups) if kept_groups else np.empty(0, bool)
    game_ids = np.concatenate(game_ids) if game_ids else np.empty(0, np.int64)
    rows = np.concatenate(rows) if rows else np.empty((0, 3), np.int64)
    order_in_part = np.concatenate(order_in_part) if order_in_part else np.empty(0, int)
    group_rows = rows.sum(axis=1)

    rows_kept = int(group_rows[kept].sum())
    check_accounting(rows_read, rows_kept, rejections, files_ok, paths)

    # split by game: a function of the set of kept game ids and the seed
    kept_ids = game_ids[kept]
    if len(np.unique(kept_ids)) != len(kept_ids):
        raise AssertionError("a game id in two kept groups: duplicates were not left out")
    group_split = np.full(len(game_ids), -1, dtype=np.int64)
    masks = split_by_game(kept_ids, ratios, seed=seed)
    for i, split in enumerate(SPLITS):
        group_split[np.flatnonzero(kept)[masks[split]]] = i

    # offsets: partitions in order, each one's rows of a split after the previous ones'
    n_parts = len(summaries)
    per_part = np.zeros((n_parts, len(SPLITS)), dtype=np.int64)
    for i in range(len(SPLITS)):
        sel = group_split == i
        per_part[:, i] = np.bincount(part_of_group[sel], group_rows[sel], minlength=n_parts)
    starts = np.cumsum(per_part, axis=0) - per_part
    first_row = [{s: int(starts[p, i]) for i, s in enumerate(SPLITS)} for p in range(n_parts)]
    split_rows = {s: int(per_part[:, i].sum()) for i, s in enumerate(SPLITS)}

    # the scaler's leaves: the train games in game-id order, in buckets (merged on the
    # workers, from the statistics they hold: moments_tree)
    train = np.flatnonzero(group_split == 0)
    train = train[np.argsort(game_ids[train], kind="stable")]
    position = np.arange(len(train))
    buckets = []
    for first, stop in bucket_bounds(len(train)):
        in_bucket = train[first:stop]
        parts = part_of_group[in_bucket]
        buckets.append((first, stop, [
            (int(p), order_in_part[in_bucket[parts == p]], position[first:stop][parts == p])
            for p in np.unique(parts).tolist()
        ]))

    return Plan(
        rejections=rejections,
        rows_read=rows_read,
        rows_kept=rows_kept,
        group_split=[group_split[part_of_group == p] for p in range(n_parts)],
        first_row=first_row,
        split_rows=split_rows,
        splits=split_stats(group_split[kept], rows[kept], game_ids[kept]),
        buckets=buckets,
        width=width,
        continuous=np.asarray(continuous, dtype=np.int64),
    )


def check_accounting(
    rows_read: int,
    rows_kept: int,
    rejections: Sequence[Rejection],
    files_ok: Sequence[str],
    paths: Sequence[str],
) -> None:
    """Raise if a row or a file went missing (see ``parallel_processor.check_accounting``)."""
    rejected = sum(r.rows for r in rejections)
    if rows_read != rows_kept + rejected:
        raise AssertionError(
            f"row accounting broken: read {rows_read}, kept {rows_kept}, rejected {rejected}"
        )
    pp.check_file_accounting(files_ok, [r.file for r in rejections if r.file_level], paths)


def preallocate(folder: Path, split_rows: dict[str, int], width: int) -> dict[str, SplitFile]:
    """``X_{split}.npy`` of the right shape in ``folder`` (their data not written yet), and
    ``labels_{split}.npz`` / ``masks_{split}.npz`` laid out for their rows (written in pieces
    by the partitions, then sealed: :mod:`~imitation_learning.dataset.npz_pieces`)."""
    out = {}
    for split in SPLITS:
        for name, layout in labels_masks_layouts(split_rows[split]).items():
            npz_preallocate(folder / f"{name}_{split}.npz", layout)
        path = folder / f"X_{split}.npy"
        mm = np.lib.format.open_memmap(
            path, mode="w+", dtype=np.float32, shape=(split_rows[split], width)
        )
        out[split] = SplitFile(str(path), int(mm.offset), 0)
        del mm
    return out


def _targets(files: dict[str, SplitFile], first_row: dict[str, int]) -> dict[str, SplitFile]:
    return {s: SplitFile(f.path, f.data_offset, first_row[s]) for s, f in files.items()}


def _pieces(folder: Path, plan: Plan, i: int) -> dict[str, SplitPieces]:
    """Where partition ``i``'s labels and masks of each split go."""
    return {s: SplitPieces(str(folder), s, plan.split_rows[s], plan.first_row[i][s])
            for s in SPLITS}


def _seal(folder: Path, plan: Plan, written) -> dict[str, tuple[dict, dict]]:
    return {s: write_split_labels_masks(str(folder), s, plan.split_rows[s], *written)
            for s in SPLITS}


def fit_scaler_here(plan: Plan, leaves_of) -> Scaler:
    """The scaler by the tree of :mod:`~imitation_learning.dataset.moments_tree`, in this
    process; ``leaves_of(partition, groups, positions)`` gives a partition's leaves."""
    nodes = [
        merge_bucket(first, stop, len(plan.continuous),
                     *(leaves_of(p, groups, positions) for p, groups, positions in parts))
        for first, stop, parts in plan.buckets
    ]
    return scaler_from_buckets(plan.width, plan.continuous, *nodes)


# --------------------------------------------------------------------------- runners


#: The subfolder of the save's temporary folder holding the spill files between the phases.
SPILL_FOLDER = ".spill"


def spill_folder(save_folder: Path) -> str:
    """The spill folder of a save (made here, by the driver: never by a task)."""
    folder = Path(save_folder) / SPILL_FOLDER
    folder.mkdir(exist_ok=True)
    return str(folder)


class InProcess:
    """Both phases in this process. Between them, each partition's X waits in a spill file
    in the save's temporary folder (removed with it); its labels and masks in memory.

    ``threads`` > 1: phase 2 runs that many partitions' writes at once (numpy's arithmetic
    and the writes leave Python's lock; phase 1, mostly Python, gains nothing from threads)."""

    def __init__(self, folder: Path, cache: CacheSpec | None = None, threads: int = 1):
        self.folder = folder
        self.cache = cache
        self.threads = max(1, threads)
        self.parts: list[PartitionRows] = []

    def process(self, chunks, cfg, bar) -> list[PartitionSummary]:
        for chunk in chunks:
            self.parts.append(
                process_partition_rows(
                    chunk,
                    cfg,
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
            return write_x_rows(rows, plan.group_split[i], _targets(files, plan.first_row[i]),
                                plan.scaler, _pieces(self.folder, plan, i))

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


def _process_partition(paths, cfg, cache: CacheSpec | None, **spill) -> PartitionRows:
    """The ``process-partition`` task: :func:`process_partition_rows` with the partition's
    own cache spec (each task gets the content hashes of its paths only)."""
    return process_partition_rows(paths, cfg, cache=cache, **spill)


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

    def process(self, chunks, cfg, bar) -> list[PartitionSummary]:
        client = self.client
        self.no_workers_timeout_s = cfg["preprocessing"]["no_workers_timeout_s"]
        n = range(len(chunks))
        # X spilled into the save's folder when the workers see it (see partition_rows)
        self.shared = self.workers_see(self.folder)
        spill = {"spill_dir": spill_folder(self.folder)} if self.shared else {}
        # one message to the scheduler for each kind of task, not one a task
        self.rows = client.map(
            _process_partition,
            chunks,
            [cfg] * len(chunks),
            [self.cache.of(chunk) if self.cache else None for chunk in chunks],
            key=[self._key("process-partition", i) for i in n],
            **spill,
        )
        summaries_f = client.map(
            summarise_partition, self.rows, key=[self._key("summarise-partition", i) for i in n]
        )
        position = {f.key: i for i, f in enumerate(summaries_f)}
        summaries: list[PartitionSummary | None] = [None] * len(chunks)
        summary = None
        self.held = summaries_f  # small; released at the end (a released summary, with no
        # task after it, would leave the scheduler and the dashboard's Progress panel)
        for future, summary in self._as_completed(summaries_f):
            i = position[future.key]
            summaries[i] = summary
            bar.update(len(chunks[i]))
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
                seen = self.client.run(os.path.isdir, str(folder), on_error="ignore")
            except OSError:  # a worker's connection closed under the call: ask again
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
                client.submit(bucket_leaves, self.rows[p], groups, positions,
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
            write_x_rows,
            self.rows,
            plan.group_split,
            [_targets(files, plan.first_row[i]) for i in range(n)],
            [self.scaler] * n,
            [_pieces(self.folder, plan, i) for i in range(n)],
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
                    rows_in_memory, future, key=self._key("rows-in-memory", i)
                )
            rows = future.result()
            written.append(
                write_x_rows(rows, plan.group_split[i], _targets(files, plan.first_row[i]),
                             plan.scaler, _pieces(self.folder, plan, i))
            )
            del rows
            future.release()
        return _seal(self.folder, plan, written)

    def close(self) -> None:
        futures = self.rows + self.held
        if futures:
            self.client.cancel(futures)
        self.rows, self.held = [], []


# --------------------------------------------------------------------------- the job


def build_dataset(
    files: Sequence[str],
    config: dict,
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
    cfg = validate_config(config)
    prep, data = cfg["preprocessing"], cfg["data"]
    paths = [os.fspath(p) for p in files]
    if not paths:
        raise ValueError("no game file to process")
    workers = pp.resolve_num_workers(prep.get("num_workers"), cfg)
    address = pp.resolve_scheduler_address(cfg)
    timings = {**(timings or {}), "cluster_start_s": 0.0}
    info = {"workers": 1, "link": None, "in_process": True}
    cache = key = None
    if cache_dir is not None:
        # made by the first entry's write, on the worker (nothing is left by a run that
        # fails before any file is processed)
        t0 = time.perf_counter()
        contents = hash_files(paths)  # once: the partitions' lookups take them from here
        key = run_key(paths, contents, cfg)
        timings["run_key_s"] = time.perf_counter() - t0
        folder = os.path.abspath(os.fspath(cache_dir))
        cache = CacheSpec(folder, config_key(cfg), dict(zip(paths, contents, strict=True)))
        if key is not None and output_up_to_date(cache.folder, data["processed_dir"], key):
            return _unchanged(paths, cfg, cache, timings, t_start)

    threads = _threads_for_small_rerun(paths, cache, workers, address, prep)
    with AtomicDir(Path(data["processed_dir"])) as tmp:
        if threads:
            run = _phases(InProcess(tmp, cache, threads), paths, cfg, workers, tmp, progress,
                          timings)
            info["workers"] = threads
        elif len(paths) == 1 or (workers == 1 and address is None):  # as run_job does
            if prep.get("report") is not None:
                pp._say("no performance report: the job runs in this process, without a cluster")
            run = _phases(InProcess(tmp, cache), paths, cfg, 1, tmp, progress, timings)
        else:
            t0 = time.perf_counter()
            with pp.pool_client(
                workers,
                scheduler_address=address,
                dashboard_address=prep["dashboard_address"],
                worker_setup=pp._import_file_step,
            ) as client:
                timings["cluster_start_s"] = time.perf_counter() - t0
                info["in_process"] = False
                info["workers"] = len(client.nthreads()) or workers
                info["link"] = pp._dashboard_link(client)
                where = f"existing cluster at {address}" if address else "local cluster"
                pp._say(
                    f"{len(paths)} files on a pool of {info['workers']} worker processes "
                    f"({where}); Dask dashboard: {info['link'] or 'none (disabled)'}"
                )
                report = (
                    pp._performance_report(prep["report"])
                    if prep.get("report") is not None
                    else nullcontext()
                )
                with _unless_failing(report), _unless_failing(_task_stream(client)) as stream:
                    run = _phases(
                        OnCluster(client, tmp, cache),
                        paths,
                        cfg,
                        info["workers"],
                        tmp,
                        progress,
                        timings,
                    )
                t_closing = time.perf_counter()
                timings["cluster_up_s"] = t_closing - t0 - timings["cluster_start_s"]
            timings["cluster_close_s"] = time.perf_counter() - t_closing
            timings["workers_busy_s"] = _busy_seconds(stream.data)
            timings.update(_seconds_by_task(stream.data))
        t_save = time.perf_counter()
        plan, heads, names, kinds, counts = run
        # The spill folder goes before the swap: a partition that Dask ran again after its
        # write (a worker lost late in the run, the task left running on an existing
        # cluster) finds no folder to write into, and nothing of it reaches the output.
        shutil.rmtree(tmp / SPILL_FOLDER, ignore_errors=True)
        write_metadata(
            tmp,
            stats={
                "splits": plan.splits,
                "label_counts": {s: heads[s][0] for s in SPLITS},
                "mask_stats": {s: heads[s][1] for s in SPLITS},
            },
            feature_names=names,
            column_kinds=kinds,
            scaler=plan.scaler,
            rows_kept=plan.rows_kept,
            input_files=paths,
            rejections=[r.to_dict() for r in plan.rejections],
            rows_read=plan.rows_read,
            config=cfg,
            timings={**timings, "total_s": time.perf_counter() - t_start},
        )
        timings["metadata_s"] = time.perf_counter() - t_save
    cache_figures = None
    if cache is not None and counts is not None:
        if key is not None:
            try:
                record_output(cache.folder, data["processed_dir"], key)
            except OSError:  # the next run assembles the output again
                pass
        cache_figures = _cache_figures(cache, counts, output_unchanged=False)
    timings["total_s"] = time.perf_counter() - t_start
    rejections = [r.to_dict() for r in plan.rejections]
    return BuildRun(
        output_dir=Path(data["processed_dir"]),
        files=len(paths),
        files_rejected=sum(1 for r in plan.rejections if r.file_level),
        rows_read=plan.rows_read,
        rows_rejected=sum(r.rows for r in plan.rejections),
        rows_per_split=dict(plan.split_rows),
        rejections=rejections,
        num_features=len(names),
        num_workers=info["workers"],
        dashboard_link=info["link"],
        timings=timings,
        cache=cache_figures,
        in_process=bool(info["in_process"]),
    )


#: A re-run with the result cache whose files to process (no entry in the cache) are at
#: most this share of its files runs in this process, without a cluster. Its work is then
#: mostly reading entries and writing X: starting and stopping the local cluster (1.2-1.3 s
#: of a 6.7 s re-run after 1% new games, docs/benchmarks.md) costs more than processes save.
SMALL_RERUN_SHARE = 0.05


def _threads_for_small_rerun(paths, cache: CacheSpec | None, workers: int, address, prep) -> int:
    """The threads to run a small re-run with in this process (:data:`SMALL_RERUN_SHARE`),
    0 to run as usual: always on a cluster given by address, with a performance report
    (it needs one), or with one worker or one file (in this process already)."""
    if cache is None or address is not None or prep.get("report") is not None:
        return 0
    if workers == 1 or len(paths) == 1:
        return 0
    fresh = len(cache.missing(paths))
    if fresh > SMALL_RERUN_SHARE * len(paths):
        return 0
    pp._say(
        f"{len(paths) - fresh} of {len(paths)} files in the result cache, {fresh} to process: "
        f"run in this process ({workers} threads), no cluster needed"
    )
    return workers


def _unchanged(paths, cfg, cache: CacheSpec, timings: dict, t_start: float) -> BuildRun:
    """The output already holds this very run's dataset (same inputs, configuration and
    code, its files untouched since: :func:`~imitation_learning.result_cache.output_up_to_date`):
    it is left as it is, and the run's figures are read from it."""
    import json

    out = Path(cfg["data"]["processed_dir"])
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
        cache=_cache_figures(cache, CacheCounts(cached=len(paths)), output_unchanged=True),
    )


def _cache_figures(cache: CacheSpec, counts: CacheCounts, output_unchanged: bool) -> dict:
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


def _phases(runner, paths, cfg, workers, tmp, progress, timings):
    """Phase 1, the plan, phase 2, the flush of X (durable): (plan, heads, names, kinds,
    cache counts), ``heads`` the label and mask statistics of each split, the cache counts
    summed over the partitions (None without a cache)."""
    prep, data = cfg["preprocessing"], cfg["data"]
    sizes = pp.partition_sizes(
        len(paths), workers, prep["files_per_partition"], pp.file_weights(paths)
    )
    bounds = np.cumsum([0, *sizes]).tolist()
    chunks = [paths[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    try:
        t0 = time.perf_counter()
        with tqdm(total=len(paths), unit="file", disable=not progress) as bar:
            summaries = runner.process(chunks, cfg, bar)
        t1 = time.perf_counter()
        timings["processing_s"] = t1 - t0
        counts = None
        if runner.cache is not None:
            counts = CacheCounts()
            for s in summaries:
                if s.cache is not None:
                    counts.add(s.cache)
        names, kinds = feature_columns(_strategic_width(summaries, prep))
        width = len(names)
        for s in summaries:
            if s.rows and s.width != width:
                raise AssertionError(f"partition X has {s.width} columns, expected {width}")
        ratios = (data["train_ratio"], data["val_ratio"], data["test_ratio"])
        plan = plan_assembly(summaries, paths, ratios, cfg["seed"], width, continuous_columns(kinds))
        del summaries
        if prep["strict"] and plan.rejections:  # a duplicate game (others stop on a worker)
            raise pp._strict_error(plan.rejections[0])
        t_scaler = time.perf_counter()
        plan.scaler = runner.fit_scaler(plan)
        timings["scaler_s"] = time.perf_counter() - t_scaler
        files = preallocate(tmp, plan.split_rows, width)
        t2 = time.perf_counter()
        timings["plan_s"] = t2 - t1
        heads = runner.write(plan, files)
        t3 = time.perf_counter()
        timings["write_s"] = t3 - t2
        if prep["durable"]:
            for f in files.values():
                fsync_path(Path(f.path))
        timings["flush_s"] = time.perf_counter() - t3
    finally:
        runner.close()
    return plan, heads, names, kinds, counts


def _strategic_width(summaries: Sequence[PartitionSummary], prep: dict) -> int:
    """The strategic features' width: the partitions', else (no row kept) the configured."""
    for s in summaries:
        if s.rows:
            return s.strategic_width
    from imitation_learning.per_file.features import NUM_FEATURES

    return NUM_FEATURES if prep["enable_feature_engineering"] else 0


@contextmanager
def _unless_failing(manager):
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


def _task_stream(client):
    """The cluster's task stream over the block (``.data``: one record per task)."""
    from distributed import get_task_stream

    return get_task_stream(client=client)


def _seconds_by_task(records: list[dict]) -> dict[str, float]:
    """Compute seconds of each kind of task (summed over the workers): ``task_<name>_s``."""
    from dask.utils import key_split

    out: dict[str, float] = {}
    for r in records:
        name = "task_" + key_split(r["key"]).replace("-", "_") + "_s"
        spent = sum(
            ss["stop"] - ss["start"] for ss in r.get("startstops", ()) if ss["action"] == "compute"
        )
        out[name] = out.get(name, 0.0) + spent
    return out


def _busy_seconds(records: list[dict]) -> float:
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

