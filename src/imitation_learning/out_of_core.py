"""Out-of-core mode: partitions write shards, the driver assembles memory-mapped files.

In the default (in-memory) mode every partition sends its four outputs back to the driver,
which concatenates them, builds X and saves the dataset. With
``preprocessing.out_of_core: true`` (``splendor-il preprocess --out-of-core``):

- on the worker, :func:`process_partition_to_shard` runs the per-file step on its files,
  builds its rows of X (:func:`~imitation_learning.dataset.build_feature_matrix`) and
  writes X, the labels and the masks as one shard file into the shard folder next to the
  output (:func:`shard_dir_for`). It returns only its counts, game ids, player counts,
  rejections and the shard's path (a :class:`FileResult` with a two-column ``df``,
  features of shape ``(n, 0)``, no labels or masks, and ``shards=[path]``);
- on the driver, :func:`save_dataset_from_shards` splits by game, preallocates
  ``X_{split}.npy`` with ``np.lib.format.open_memmap`` in the save's temporary folder,
  copies every shard's rows into them in global row order, fits the scaler on the train
  file with the same blocks as the in-memory mode, standardises the files block by block
  in place, and finishes the save exactly as :func:`~imitation_learning.dataset.save_dataset`
  does (:func:`~imitation_learning.dataset.write_dataset`). X is never whole in memory, and
  the files are byte-identical to the in-memory mode's.

Shards are written atomically (a temporary name, then ``os.replace``) under a name derived
from the partition's content (its file paths and the configuration), and their bytes depend
only on that content: a task that Dask re-runs (a worker lost) rewrites the same file. The
shard folder is made empty at the start of a run and removed at its end, whatever happens;
the workers never create it, so a task still running after an interrupted run cannot leave
a shard behind. The workers must see the shard folder at the same path as the driver (the
job's own local cluster, or a filesystem shared with the cluster).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from imitation_learning.dataset import (
    CHUNK_ROWS,
    CONTINUOUS,
    NUM_FIXED_COLUMNS,
    SPLITS,
    Scaler,
    _fsync_path,
    _write_npz,
    build_feature_matrix,
    feature_columns,
    write_dataset,
)
from imitation_learning.results import FileResult
from splendor import columns as C

#: Rows per block when standardising the memory-mapped X files in place (elementwise, so
#: any block size gives the same bits; small blocks keep the driver's peak low).
SCALE_ROWS = 1_024

_SHARD_SUFFIX = ".npz"


# --------------------------------------------------------------------------- the shard folder


def shard_dir_for(out_dir: str | os.PathLike) -> Path:
    """The shard folder of the output folder ``out_dir``: ``.<name>.shards`` beside it
    (absolute, since the workers may run in another working directory)."""
    out = Path(os.path.abspath(os.fspath(out_dir)))
    return out.parent / f".{out.name}.shards"


@contextmanager
def shard_folder(out_dir: str | os.PathLike) -> Iterator[Path]:
    """The (empty) shard folder for a run writing ``out_dir``; removed on exit, whatever
    happens. Leftovers of an interrupted run are removed first."""
    folder = shard_dir_for(out_dir)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def shard_name(paths: Sequence[str], config: Mapping) -> str:
    """The shard file name of a partition: a hash of its file paths (in order) and of the
    configuration, so the same partition of the same run always gets the same name."""
    digest = hashlib.sha256()
    digest.update(json.dumps(config, sort_keys=True, default=str).encode())
    for path in paths:
        digest.update(b"\0" + os.fspath(path).encode())
    return f"shard-{len(paths):05d}-{digest.hexdigest()[:24]}{_SHARD_SUFFIX}"


# --------------------------------------------------------------------------- worker side


def write_shard(
    path: str | os.PathLike,
    X: np.ndarray,
    labels: Mapping[str, np.ndarray],
    masks: Mapping[str, np.ndarray],
) -> None:
    """Write a shard atomically: a temporary name in the same folder, then ``os.replace``.
    The bytes depend only on the arrays (fixed zip timestamps, no compression). The folder
    must exist (it is never created here)."""
    path = Path(path)
    tmp = path.parent / f".{path.name}.tmp-{uuid.uuid4().hex}"
    arrays = {"X": X}
    arrays.update({f"labels.{h}": labels[h] for h in C.HEADS})
    arrays.update({f"masks.{h}": masks[h] for h in C.HEADS})
    try:
        _write_npz(tmp, arrays, compress=False)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def read_shard(path: str | os.PathLike, *, with_x: bool = True) -> dict:
    """A shard's arrays: ``X`` (float32 (n, F), unscaled; left out with ``with_x=False``),
    ``labels`` and ``masks`` (head -> array)."""
    with np.load(path, allow_pickle=False) as z:
        out = {
            "labels": {h: z[f"labels.{h}"] for h in C.HEADS},
            "masks": {h: z[f"masks.{h}"] for h in C.HEADS},
        }
        if with_x:
            out["X"] = z["X"]
    return out


def process_partition_to_shard(
    paths: Sequence[str],
    config: dict,
    file_processor: Callable | None = None,
    on_file_done: Callable[[], None] | None = None,
    *,
    shard_dir: str,
) -> FileResult:
    """Process a partition (runs on a worker), write its shard into ``shard_dir`` and
    return its accounting only (see the module docstring)."""
    from imitation_learning.parallel_processor import FILE_INDEX_ATTR, process_partition

    result = process_partition(paths, config, file_processor, on_file_done)
    file_index = result.df.attrs.pop(FILE_INDEX_ATTR, None)
    X, _, _ = build_feature_matrix(result.df, result.features)
    path = os.path.join(shard_dir, shard_name(paths, config))
    write_shard(path, X, result.labels, result.masks)
    n = len(result.df)
    slim = result.df[["game_id", "num_players"]].copy()
    slim.attrs = {} if file_index is None else {FILE_INDEX_ATTR: file_index}
    return FileResult(
        df=slim,
        features=np.empty((n, 0), dtype=np.float32),
        labels={},
        masks={},
        rejections=result.rejections,
        rows_read=result.rows_read,
        files_ok=result.files_ok,
        shards=[path],
    )


# --------------------------------------------------------------------------- driver side


def _rows_window(path: Path, offset: int, width: int, start: int, stop: int, mode: str):
    """Rows ``[start, stop)`` of a float32 ``(rows, width)`` .npy file whose data begins at
    ``offset``, memory-mapped (only that window is mapped)."""
    return np.memmap(
        path,
        dtype=np.float32,
        mode=mode,
        offset=offset + start * width * 4,
        shape=(stop - start, width),
    )


def _fill_split_files(
    tmp: Path,
    shards: Sequence[str],
    split_masks: Mapping[str, np.ndarray],
    width: int,
) -> dict[str, tuple[Path, int, int]]:
    """Preallocate ``X_{split}.npy`` and copy the shards' rows into them (unscaled), split
    by split in global row order. ``split_masks`` are over the shards' rows (a row of no
    split is left out). Returns split -> (path, data offset, rows)."""
    files = {}
    for split in SPLITS:
        rows = int(np.count_nonzero(split_masks[split]))
        path = tmp / f"X_{split}.npy"
        mm = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(rows, width))
        files[split] = (path, int(mm.offset), rows)
        del mm  # unmapped; rows are written through small windows below
    filled = dict.fromkeys(SPLITS, 0)
    start = 0
    for shard in shards:
        X = read_shard(shard)["X"]
        if X.ndim != 2 or X.shape[1] != width:
            raise ValueError(f"shard {shard} has X of shape {X.shape}, expected (n, {width})")
        stop = start + len(X)
        for split in SPLITS:
            keep = np.asarray(split_masks[split][start:stop], dtype=bool)
            count = int(np.count_nonzero(keep))
            if count:
                path, offset, _ = files[split]
                at = filled[split]
                window = _rows_window(path, offset, width, at, at + count, "r+")
                np.compress(keep, X, axis=0, out=window)  # straight into the file
                window.flush()
                del window  # unmapped: its pages leave this process
                filled[split] = at + count
        start = stop
        del X
    for split, (_, _, rows) in files.items():
        if filled[split] != rows:
            raise AssertionError(f"X_{split}: {filled[split]} rows copied, {rows} expected")
    return files


def _blocks(path: Path, offset: int, width: int, rows: int, size: int, mode: str):
    for start in range(0, rows, size):
        yield start, _rows_window(path, offset, width, start, min(start + size, rows), mode)


def _fit_and_scale(
    files: Mapping[str, tuple[Path, int, int]], width: int, continuous: np.ndarray
) -> Scaler:
    """Fit the scaler on ``X_train.npy`` (blocks of ``CHUNK_ROWS`` rows, as the in-memory
    mode's ``Scaler.fit`` over the train rows) and standardise every split in place."""
    path, offset, rows = files["train"]
    train_blocks = (w for _, w in _blocks(path, offset, width, rows, CHUNK_ROWS, "r"))
    scaler = Scaler.fit_blocks(train_blocks, width, continuous)
    for split in SPLITS:
        path, offset, rows = files[split]
        for _, window in _blocks(path, offset, width, rows, SCALE_ROWS, "r+"):
            window[:] = scaler.transform(window)
            window.flush()
            del window
        _fsync_path(path)
    return scaler


def save_dataset_from_shards(
    out_dir: str | os.PathLike,
    *,
    shards: Sequence[str],
    split_masks: Mapping[str, np.ndarray],
    game_ids: np.ndarray,
    num_players: np.ndarray,
    strategic_width: int,
    shard_rows: np.ndarray | None = None,
    input_files: Sequence[str] = (),
    rejections: Sequence[Mapping] = (),
    rows_read: int | None = None,
    config: Mapping | None = None,
    timings: Mapping[str, float] | None = None,
) -> tuple[Path, int]:
    """Assemble the saved dataset from the shards (in row order) without holding X.

    ``split_masks`` / ``game_ids`` / ``num_players`` are over the rows kept, in order:
    ``shard_rows`` (indices over the shards' concatenated rows) says which those are, None
    meaning all of them (files the driver left out still have rows in their shard).
    ``strategic_width`` is the number of strategic feature columns (0 with
    feature engineering disabled). Returns ``(out_dir, number of columns of X)``. The files
    are those :func:`~imitation_learning.dataset.save_dataset` writes for the same rows.
    """
    names, kinds = feature_columns(strategic_width)
    width = len(names)
    if width != NUM_FIXED_COLUMNS + strategic_width:
        raise AssertionError(f"{width} columns for {strategic_width} strategic features")
    continuous = np.flatnonzero(np.asarray(kinds) == CONTINUOUS)

    # labels and masks are small (about 170 bytes a row against 5 KB of X): gathered whole
    parts = [read_shard(s, with_x=False) for s in shards]
    labels = {h: _concat([p["labels"][h] for p in parts], (0,), np.int16) for h in C.HEADS}
    masks = {h: _concat([p["masks"][h] for p in parts], (0, n), bool) for h, n in C.HEADS.items()}
    del parts
    total = len(labels["action_type"])
    shard_split_masks = split_masks
    if shard_rows is not None:  # some shard rows were left out: masks over all shard rows
        labels = {h: a[shard_rows] for h, a in labels.items()}
        masks = {h: a[shard_rows] for h, a in masks.items()}
        shard_split_masks = {}
        for split in SPLITS:
            full = np.zeros(total, dtype=bool)
            full[shard_rows] = split_masks[split]
            shard_split_masks[split] = full
    if len(labels["action_type"]) != len(game_ids):
        raise AssertionError(
            f"the shards hold {len(labels['action_type'])} rows, the job kept {len(game_ids)}"
        )

    def write_features(tmp: Path) -> Scaler:
        files = _fill_split_files(tmp, shards, shard_split_masks, width)
        return _fit_and_scale(files, width, continuous)

    path = write_dataset(
        out_dir,
        write_features=write_features,
        feature_names=names,
        column_kinds=kinds,
        split_masks=split_masks,
        labels=labels,
        masks=masks,
        game_ids=game_ids,
        num_players=num_players,
        input_files=input_files,
        rejections=rejections,
        rows_read=rows_read,
        config=config,
        timings=timings,
    )
    return path, width


def _concat(arrays: list[np.ndarray], empty_shape: tuple, dtype) -> np.ndarray:
    return np.concatenate(arrays) if arrays else np.empty(empty_shape, dtype=dtype)
