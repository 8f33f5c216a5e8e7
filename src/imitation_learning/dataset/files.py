"""The bytes of the dataset's files: .npy, .npz and .json written reproducibly and synced.

This module owns how one file of a dataset is written: X's rows scaled into a ``.npy``
block by block (:func:`write_npy_rows`), a ``.npz`` with fixed timestamps so that equal
arrays give equal bytes (:func:`write_npz`), JSON with numpy values (:func:`write_json`),
each flushed and ``fsync``-ed, and :func:`fsync_path` for a folder. Which files a dataset
holds is :mod:`imitation_learning.dataset.store`'s business.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from imitation_learning.dataset.npz_pieces import write_npz_stored
from imitation_learning.dataset.scaler import CHUNK_ROWS, Scaler


def fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_npy_rows(path: Path, X: np.ndarray, rows: np.ndarray, scaler: Scaler | None) -> None:
    """``X[rows]`` (scaled) as a .npy file, block by block: never a second copy of X.
    Same bytes as ``np.save`` of the whole array."""
    idx = np.flatnonzero(rows)
    header = {
        "descr": np.lib.format.dtype_to_descr(np.dtype(np.float32)),
        "fortran_order": False,
        "shape": (len(idx), X.shape[1]),
    }
    with open(path, "wb") as fh:
        np.lib.format.write_array_header_1_0(fh, header)
        for start in range(0, len(idx), CHUNK_ROWS):
            block = X[idx[start : start + CHUNK_ROWS]]
            block = scaler.transform(block) if scaler is not None else block.astype(np.float32)
            fh.write(memoryview(np.ascontiguousarray(block)).cast("B"))
        fh.flush()
        os.fsync(fh.fileno())


def write_npz(path: Path, arrays: Mapping[str, np.ndarray], compress: bool = True) -> None:
    """A .npz that ``np.load`` reads, with fixed timestamps so equal arrays give equal bytes
    (``np.savez`` stamps each member with the current time). ``compress=False``: stored
    members laid out as :mod:`~imitation_learning.dataset.npz_pieces` lays them out (the
    bytes of a file written there in pieces)."""
    if not compress:
        write_npz_stored(path, arrays)
        return
    method = zipfile.ZIP_DEFLATED
    with open(path, "wb") as fh:
        with zipfile.ZipFile(fh, "w", compression=method, allowZip64=True) as zf:
            for name, arr in arrays.items():
                buf = io.BytesIO()
                np.lib.format.write_array(buf, np.ascontiguousarray(arr), allow_pickle=False)
                info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
                info.compress_type = method
                info.external_attr = 0o644 << 16
                # level 1: fast, and labels / masks still shrink several-fold
                zf.writestr(info, buf.getbuffer(), compresslevel=1)
        fh.flush()
        os.fsync(fh.fileno())


def write_json(path: Path, obj) -> None:
    text = json.dumps(obj, indent=2, sort_keys=False, default=_json_default, allow_nan=False)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def _json_default(obj):
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    return str(obj)
