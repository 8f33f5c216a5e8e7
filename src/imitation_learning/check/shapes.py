"""Opening a saved dataset, and the checks that read no X: shapes, labels, labels in masks.

This module owns :func:`open_dataset` (X memory-mapped; :class:`DatasetNotFoundError` when
the folder holds none), ``shapes`` (:func:`check_shapes`: the arrays agree with the names,
classes and counts of the small files, and the :class:`Layout` it leaves says what the other
checks may read), ``labels_valid`` and ``labels_in_masks``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from imitation_learning.check.report import PASS, CheckResult
from imitation_learning.dataset.atomic_dir import is_dataset_dir
from imitation_learning.dataset.splits import SPLITS
from imitation_learning.dataset.store import load_dataset
from splendor import columns as C


class DatasetNotFoundError(FileNotFoundError):
    """The folder does not hold a dataset (no ``stats.json`` / ``feature_names.json``)."""


@dataclass
class Layout:
    """What the shape check found usable: X per split with its column names, and the
    (split, head) pairs whose labels and masks have X's rows and the head's classes."""

    rows: dict[str, int] = field(default_factory=dict)
    x_named: dict[str, bool] = field(default_factory=dict)  # X 2-D with one column per name
    heads: dict[tuple[str, str], bool] = field(default_factory=dict)
    kinds: list[str] | None = None
    scaler_ok: bool = False


def open_dataset(path: str | os.PathLike) -> dict:
    """:func:`load_dataset` with X memory-mapped; :class:`DatasetNotFoundError` when the
    folder holds no dataset (any other error: the dataset is there but broken)."""
    if not Path(path).is_dir():
        raise DatasetNotFoundError(f"{path}: no such folder")
    if not is_dataset_dir(path):
        raise DatasetNotFoundError(f"{path}: not a dataset (no stats.json / feature_names.json)")
    return load_dataset(path, mmap=True)


def check_shapes(ds: dict) -> tuple[CheckResult, Layout]:
    res = CheckResult("shapes")
    layout = Layout()
    names = ds["feature_names"]
    width = len(names)
    classes = {head: len(table) for head, table in ds["label_classes"].items()}
    stats = ds["stats"]

    if set(classes) != set(C.HEADS) or any(classes[h] != n for h, n in C.HEADS.items()):
        res.problem(
            f"label_classes.json has heads {classes}, this version's heads are {dict(C.HEADS)}"
        )
    kinds = stats.get("feature_kinds")
    if not isinstance(kinds, dict) or list(kinds) != list(names):
        res.problem("stats.json feature_kinds does not list the columns of feature_names.json")
    else:
        layout.kinds = list(kinds.values())
    scaler = ds["scaler"]
    if scaler.mean.shape != (width,) or scaler.scale.shape != (width,):
        res.problem(
            f"scaler.npz mean / scale of shapes {scaler.mean.shape} / {scaler.scale.shape} "
            f"for {width} columns"
        )
    elif scaler.columns.size and (scaler.columns.min() < 0 or scaler.columns.max() >= width):
        res.problem("scaler.npz columns outside X")
    else:
        layout.scaler_ok = True

    for split in SPLITS:
        X = ds[f"X_{split}"]
        fig: dict = {"X": list(X.shape), "dtype": str(X.dtype)}
        ok_x = X.ndim == 2 and X.dtype == np.float32
        if not ok_x:
            res.problem(f"X_{split} is {X.dtype} of shape {X.shape}, not 2-D float32")
        elif X.shape[1] != width:
            res.problem(f"X_{split} has {X.shape[1]} columns, feature_names.json {width} names")
        layout.x_named[split] = ok_x and X.shape[1] == width
        n = X.shape[0] if X.ndim >= 1 else 0
        layout.rows[split] = n
        saved_rows = stats.get("splits", {}).get(split, {}).get("rows")
        if saved_rows != n:
            res.problem(f"X_{split} has {n} rows, stats.json says {saved_rows}")
        for head, k in classes.items():
            ok = True
            lab = ds[f"labels_{split}"].get(head)
            msk = ds[f"masks_{split}"].get(head)
            if lab is None or msk is None:
                res.problem(f"{split}: no {'labels' if lab is None else 'masks'} for head {head}")
                ok = False
            else:
                if lab.ndim != 1 or lab.shape[0] != n or not np.issubdtype(lab.dtype, np.integer):
                    res.problem(f"{split} {head}: labels {lab.dtype} {lab.shape} for {n} rows")
                    ok = False
                if msk.ndim != 2 or msk.shape != (n, k) or not _is_boolean(msk):
                    res.problem(
                        f"{split} {head}: masks {msk.dtype} {msk.shape}, expected ({n}, {k}) 0/1"
                    )
                    ok = False
            layout.heads[(split, head)] = ok
        extra = set(ds[f"labels_{split}"]) - set(classes) | set(ds[f"masks_{split}"]) - set(classes)
        if extra:
            res.problem(f"{split}: heads {sorted(extra)} not in label_classes.json")
        res.per_split[split] = fig
    res.summary = (
        f"{width} columns, {len(classes)} heads, rows "
        + ", ".join(f"{s} {layout.rows[s]}" for s in SPLITS)
        if res.status == PASS
        else "shapes disagree"
    )
    return res, layout


def _is_boolean(arr: np.ndarray) -> bool:
    if arr.dtype == bool:
        return True
    return bool(np.isin(np.unique(arr), (0, 1)).all())


def _count_per_head(ds: dict, layout: Layout, res: CheckResult, key: str, count) -> tuple:
    """Run ``count(split, head, classes, labels as int64) -> (bad, checked)`` on every head
    whose arrays passed the shape check; ``res.per_split[split][key]`` gets each head's
    ``bad``. Returns the totals ``(bad, checked)``."""
    total = checked = 0
    for split in SPLITS:
        per_head = {}
        for head, k in C.HEADS.items():
            if layout.heads.get((split, head)):
                lab = np.asarray(ds[f"labels_{split}"][head]).astype(np.int64)
                bad, seen = count(split, head, k, lab)
                per_head[head] = bad
                total += bad
                checked += seen
        res.per_split[split] = {key: per_head}
    return total, checked


def check_labels_valid(ds: dict, layout: Layout) -> CheckResult:
    res = CheckResult("labels_valid")

    def count(split: str, head: str, k: int, lab: np.ndarray) -> tuple[int, int]:
        bad = np.flatnonzero((lab < -1) | (lab >= k))
        if len(bad):
            res.problem(f"{split} row {bad[0]}, {head}: label {lab[bad[0]]} (classes 0..{k - 1})")
        return int(len(bad)), len(lab)

    total, checked = _count_per_head(ds, layout, res, "invalid_labels", count)
    res.summary = (
        f"{checked} labels" if res.status == PASS else f"{total} of {checked} labels out of range"
    )
    return note_unchecked(res, layout)


def check_labels_in_masks(ds: dict, layout: Layout) -> CheckResult:
    res = CheckResult("labels_in_masks")

    def count(split: str, head: str, k: int, lab: np.ndarray) -> tuple[int, int]:
        msk = np.asarray(ds[f"masks_{split}"][head]).astype(bool)
        rows = np.flatnonzero((lab >= 0) & (lab < k))  # out-of-range: labels_valid's
        illegal = rows[~msk[rows, lab[rows]]]
        if len(illegal):
            r = illegal[0]
            legal = np.flatnonzero(msk[r]).tolist()
            res.problem(f"{split} row {r}, {head}: label {lab[r]} not in legal {legal}")
        return int(len(illegal)), len(rows)

    total, checked = _count_per_head(ds, layout, res, "labels_outside_mask", count)
    res.summary = (
        f"{checked} labels other than -1"
        if res.status == PASS
        else f"{total} of {checked} labels outside their mask"
    )
    return note_unchecked(res, layout)


def note_unchecked(res: CheckResult, layout: Layout) -> CheckResult:
    missing = [f"{s} {h}" for (s, h), ok in layout.heads.items() if not ok]
    if missing:
        res.summary += f" (not checked, see shapes: {', '.join(missing)})"
    return res
