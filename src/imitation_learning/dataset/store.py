"""Save and load: which files a dataset holds, written into an atomic folder, read back.

This module owns the dataset's files as a whole (the layout in
:mod:`imitation_learning.dataset`): :func:`save_dataset` and :func:`write_dataset` write
X, the labels and masks of every split and the small files (:func:`write_metadata`:
names, classes, scaler, rejections, ``preprocessing_stats.json``, ``stats.json`` last) into an
:class:`~imitation_learning.dataset.atomic_dir.AtomicDir`; :func:`load_dataset` reads
them back, for training code and ``splendor-il check``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from imitation_learning.dataset.atomic_dir import AtomicDir, is_dataset_dir
from imitation_learning.dataset.feature_matrix import KINDS
from imitation_learning.dataset.files import write_json, write_npy_rows, write_npz
from imitation_learning.dataset.npz_pieces import Member, NpzLayout
from imitation_learning.dataset.scaler import Scaler
from imitation_learning.dataset.splits import SPLITS
from imitation_learning.dataset.stats import (
    TRAINING_SUMMARY_FILE,
    dataset_stats,
    file_sizes,
    package_versions,
    training_summary,
)
from splendor import columns as C


def save_dataset(
    out_dir: str | os.PathLike,
    *,
    X: np.ndarray,
    scaler: Scaler,
    **fields,
) -> Path:
    """Write the dataset atomically to ``out_dir`` (see the module docstring for the files).

    ``X`` is the UNSCALED feature matrix of all rows; ``scaler`` is applied while each
    split is written. ``fields`` are the keyword arguments of :func:`write_dataset` other
    than ``write_features`` (``feature_names``, ``column_kinds``, ``split_masks``: split ->
    bool mask over the rows of X, ``labels`` / ``masks``: head -> arrays over the same rows,
    ``game_ids``, ``num_players``, and optionally ``input_files``, ``rejections``
    (``Rejection.to_dict()`` records), ``rows_read``, ``config``, ``timings``). Writing
    the same inputs twice gives the same bytes. Returns ``out_dir``.
    """
    if X.shape[1] != len(fields["feature_names"]):
        raise ValueError(f"X has {X.shape[1]} columns, {len(fields['feature_names'])} names")

    def write_features(tmp: Path) -> Scaler:
        for split in SPLITS:
            sel = np.asarray(fields["split_masks"][split], dtype=bool)
            write_npy_rows(tmp / f"X_{split}.npy", X, sel, scaler)
        return scaler

    return write_dataset(out_dir, write_features=write_features, **fields)


def write_dataset(
    out_dir: str | os.PathLike,
    *,
    write_features: Callable[[Path], Scaler],
    feature_names: Sequence[str],
    column_kinds: Sequence[str],
    split_masks: Mapping[str, np.ndarray],
    labels: Mapping[str, np.ndarray],
    masks: Mapping[str, np.ndarray],
    game_ids: np.ndarray,
    num_players: np.ndarray,
    input_files: Sequence[str] = (),
    rejections: Sequence[Mapping] = (),
    rows_read: int | None = None,
    config: Mapping | None = None,
    timings: Mapping[str, float] | None = None,
) -> Path:
    """The save of a dataset held in memory (labels, masks and X's writer).

    Everything goes into a temporary sibling folder swapped in at the end (``AtomicDir``).
    ``write_features(tmp)`` writes ``tmp/X_{split}.npy`` (standardised float32, rows in
    global order) and returns the scaler it applied; then the labels, masks, names, scaler,
    rejections and stats are written. ``game_ids`` / ``num_players`` / ``labels`` /
    ``masks`` / ``split_masks`` are over all the rows kept.
    """
    stats = dataset_stats(split_masks, game_ids, num_players, labels, masks)
    with AtomicDir(Path(out_dir)) as tmp:
        scaler = write_features(tmp)
        for split in SPLITS:
            sel = np.asarray(split_masks[split], dtype=bool)
            write_labels_and_masks(
                tmp,
                split,
                {h: np.asarray(labels[h])[sel] for h in C.HEADS},
                {h: np.asarray(masks[h])[sel] for h in C.HEADS},
            )
        write_metadata(
            tmp,
            stats=stats,
            feature_names=feature_names,
            column_kinds=column_kinds,
            scaler=scaler,
            rows_kept=len(game_ids),
            input_files=input_files,
            rejections=rejections,
            rows_read=rows_read,
            config=config,
            timings=timings,
        )
    return Path(out_dir)


def write_labels_and_masks(
    folder: Path, split: str, labels: Mapping[str, np.ndarray], masks: Mapping[str, np.ndarray]
) -> None:
    """``labels_{split}.npz`` (int16) and ``masks_{split}.npz`` (bool) of one split's rows:
    stored (uncompressed) members, laid out as :func:`labels_masks_layouts` says, so that the
    job can write them in pieces (the same bytes)."""
    write_npz(folder / f"labels_{split}.npz", {h: labels[h].astype(np.int16) for h in C.HEADS},
              compress=False)
    write_npz(folder / f"masks_{split}.npz", {h: masks[h].astype(bool) for h in C.HEADS},
              compress=False)


#: The two files of a split's labels and masks, in the order of :func:`labels_masks_layouts`.
LABELS_MASKS = ("labels", "masks")


def labels_masks_layouts(rows: int) -> dict[str, NpzLayout]:
    """``labels`` / ``masks`` -> the layout of ``{labels,masks}_{split}.npz`` of a split of
    ``rows`` rows (one member a head, in :data:`~splendor.columns.HEADS` order)."""
    return {
        "labels": NpzLayout.of([Member(h, np.dtype(np.int16), (rows,)) for h in C.HEADS]),
        "masks": NpzLayout.of(
            [Member(h, np.dtype(bool), (rows, n)) for h, n in C.HEADS.items()]
        ),
    }


def write_metadata(
    folder: Path,
    *,
    stats: Mapping,
    feature_names: Sequence[str],
    column_kinds: Sequence[str],
    scaler: Scaler,
    rows_kept: int,
    input_files: Sequence[str] = (),
    rejections: Sequence[Mapping] = (),
    rows_read: int | None = None,
    config: Mapping | None = None,
    timings: Mapping[str, float] | None = None,
) -> None:
    """The small files of a dataset: names, classes, scaler, rejections,
    ``preprocessing_stats.json`` (:func:`training_summary`, for training code) and
    ``stats.json`` (``stats``: splits, label counts and mask statistics, as
    :func:`dataset_stats` gives them; the rest is added here). ``stats.json`` is written
    last: it marks a dataset."""
    feature_names = list(feature_names)
    column_kinds = list(column_kinds)
    if len(column_kinds) != len(feature_names):
        raise ValueError(f"{len(feature_names)} feature names but {len(column_kinds)} kinds")
    rejections = [dict(r) for r in rejections]
    stats = dict(stats)
    stats["num_features"] = len(feature_names)
    stats["column_kinds"] = {k: int(column_kinds.count(k)) for k in KINDS}
    stats["feature_kinds"] = dict(zip(feature_names, column_kinds, strict=True))
    stats["rows_kept"] = int(rows_kept)
    stats["rows_read"] = int(rows_read) if rows_read is not None else None
    stats["rows_rejected"] = int(sum(r.get("rows", 1) for r in rejections))
    stats["input_files"] = file_sizes(input_files)
    stats["rejected_files"] = [r for r in rejections if r.get("line") is None]
    stats["rejected_rows"] = [r for r in rejections if r.get("line") is not None]
    stats["config"] = config
    stats["versions"] = package_versions()
    stats["timings"] = dict(timings or {})

    write_json(folder / "feature_names.json", feature_names)
    write_json(folder / "label_classes.json", C.class_tables())
    write_npz(folder / "scaler.npz", scaler.to_arrays(), compress=False)
    write_json(folder / "rejections.json", rejections)
    write_json(folder / TRAINING_SUMMARY_FILE, training_summary(stats, len(feature_names)))
    write_json(folder / "stats.json", stats)  # last: its presence marks a dataset


def load_dataset(path: str | os.PathLike, *, mmap: bool = False) -> dict:
    """Read a saved dataset; the keys follow the file names.

    ``X_{train,val,test}`` (float32, standardised), ``labels_{split}`` and ``masks_{split}``
    (head -> array dicts), ``feature_names``, ``label_classes``, ``scaler``
    (:class:`Scaler`), ``stats``, ``rejections``, and ``preprocessing_stats`` (the summary
    training code reads; absent from a dataset saved before it existed).
    ``mmap=True`` memory-maps the X arrays.
    """
    path = Path(path)
    if not is_dataset_dir(path):
        raise FileNotFoundError(f"no dataset in {path}")
    out: dict = {}
    for split in SPLITS:
        out[f"X_{split}"] = np.load(
            path / f"X_{split}.npy", mmap_mode="r" if mmap else None, allow_pickle=False
        )
        for part in ("labels", "masks"):
            with np.load(path / f"{part}_{split}.npz", allow_pickle=False) as z:
                out[f"{part}_{split}"] = {h: z[h] for h in z.files}
    with np.load(path / "scaler.npz", allow_pickle=False) as z:
        out["scaler"] = Scaler.from_arrays({k: z[k] for k in z.files})
    for name in ("feature_names", "label_classes", "stats", "rejections"):
        out[name] = json.loads((path / f"{name}.json").read_text(encoding="utf-8"))
    summary = path / TRAINING_SUMMARY_FILE
    if summary.is_file():
        out["preprocessing_stats"] = json.loads(summary.read_text(encoding="utf-8"))
    return out
