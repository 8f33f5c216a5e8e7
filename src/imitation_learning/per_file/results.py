"""The outputs for a block of rows (one file, a partition of files, or a whole run).

``FileResult`` is what the per-file step returns and what the Dask job concatenates:
the four outputs of ``docs/dataset.md`` plus the accounting (rows read, rejections, files done).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from imitation_learning.per_file.memory_pages import normal_pages
from splendor.errors import Rejection


@dataclass
class FileResult:
    df: pd.DataFrame
    features: np.ndarray  # float32 (n, F)
    labels: dict[str, np.ndarray]  # head -> int16 (n,)
    masks: dict[str, np.ndarray]  # head -> bool (n, classes)
    rejections: list[Rejection] = field(default_factory=list)
    rows_read: int = 0
    files_ok: list[str] = field(default_factory=list)  # files with at least their header read

    def __len__(self) -> int:
        return len(self.df)

    @property
    def rows_rejected(self) -> int:
        return sum(r.rows for r in self.rejections)

    @property
    def files_rejected(self) -> list[str]:
        return [r.file for r in self.rejections if r.file_level]

    def check_accounting(self) -> None:
        """Raise if a row went missing: rows read == rows kept + rows rejected."""
        if self.rows_read != len(self.df) + self.rows_rejected:
            raise AssertionError(
                f"row accounting broken: read {self.rows_read}, kept {len(self.df)}, "
                f"rejected {self.rows_rejected}"
            )

    def as_tuple(self) -> tuple[pd.DataFrame, np.ndarray, dict, dict]:
        return self.df, self.features, self.labels, self.masks

    @staticmethod
    def concat(
        parts: list[FileResult], *, release: bool = False, features_dtype=np.float32
    ) -> FileResult:
        """Concatenate in the given order (``parts`` must not be empty). The features come
        out as ``features_dtype`` whatever the parts carry (partitions hold them as uint8:
        :func:`pack_features`); ``None`` keeps the parts' common type.

        ``release=True`` empties the caller's list and frees each block once copied, so
        the peak memory is about 1.7x the result instead of 2x; the caller must then hold
        no other reference to the parts' arrays.
        """
        if not parts:
            raise ValueError("concat needs at least one part (use an empty result instead)")
        nonempty = [p for p in parts if len(p.df)] or parts[:1]
        heads = list(parts[0].labels)
        accounting = {
            "rejections": [r for p in parts for r in p.rejections],
            "rows_read": sum(p.rows_read for p in parts),
            "files_ok": [f for p in parts for f in p.files_ok],
        }
        dfs = [p.df for p in nonempty]
        features = [p.features for p in nonempty]
        labels = {h: [p.labels[h] for p in nonempty] for h in heads}
        masks = {h: [p.masks[h] for p in nonempty] for h in heads}
        if release:
            parts.clear()
        del nonempty

        with normal_pages():  # the outputs are written once: see memory_pages
            df = pd.concat(dfs, ignore_index=True) if len(dfs) > 1 else dfs[0]
        dfs.clear()
        return FileResult(
            df=df,
            features=_concat_popping(features, features_dtype),
            labels={h: _concat_popping(labels[h]) for h in heads},
            masks={h: _concat_popping(masks[h]) for h in heads},
            **accounting,
        )


#: Outputs from this size on are filled by several threads (numpy copies without the GIL).
_THREADED_COPY_BYTES = 16 * 2**20
_COPY_THREADS = min(4, os.cpu_count() or 1)


def _concat_popping(arrays: list[np.ndarray], dtype=None) -> np.ndarray:
    """``np.concatenate(arrays)`` (cast to ``dtype`` if given), emptying the list.

    Each input is dropped as soon as it is copied. A large output is filled by a few
    threads at once, one block each (the job's final concatenation runs when the workers
    are done, so the cores are free).
    """
    dtype = np.dtype(dtype) if dtype is not None else np.result_type(*arrays)
    if len(arrays) == 1:
        return arrays.pop().astype(dtype, copy=False)
    bounds = np.cumsum([0, *(len(a) for a in arrays)]).tolist()
    with normal_pages():  # written once: see memory_pages
        out = np.empty((bounds[-1], *arrays[0].shape[1:]), dtype=dtype)
    if out.nbytes >= _THREADED_COPY_BYTES and _COPY_THREADS > 1:

        def copy(i: int) -> None:
            out[bounds[i] : bounds[i + 1]] = arrays[i]
            arrays[i] = None  # dropped once copied, as in the serial loop

        with ThreadPoolExecutor(_COPY_THREADS) as pool:
            for _ in pool.map(copy, range(len(arrays))):
                pass
        arrays.clear()
        return out
    i = 0
    while arrays:
        block = arrays.pop(0)
        out[bounds[i] : bounds[i + 1]] = block
        i += 1
    return out


def pack_features(features: np.ndarray) -> np.ndarray:
    """The features as uint8 when that is exact, else unchanged.

    The strategic features are whole numbers from 0 to a few dozens (counts, distances,
    points, ranks), so a block of them fits uint8: a quarter of the bytes of float32 to
    hold in a partition, to send to the driver and to concatenate. Turning them back into
    float32 (:meth:`FileResult.concat`) gives the same values bit for bit. A block with
    any value that is not a whole number in 0..255 stays as it is.
    """
    if not features.size or features.dtype != np.float32:
        return features
    packed = features.astype(np.uint8)
    return packed if np.array_equal(packed, features) else features
