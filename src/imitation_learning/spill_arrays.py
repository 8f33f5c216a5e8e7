"""Arrays parked in a file between the job's two phases, so that a worker's memory does not
grow with the partitions it holds.

:func:`park` writes some arrays once into a new file (under a temporary name renamed into
place: a reader of an earlier copy keeps reading whole arrays) and gives them back as
:class:`Parked` arrays: a place in that file, read (a copy) each time they are indexed, so
that nothing of them stays in the worker's memory, nor mapped into it, between uses. :func:`append_block` / :func:`read_blocks` do the same
for a matrix written block by block, each block stored in the smallest of int8 or float32
that holds it exactly (X before scaling is mostly small integers: a quarter of the bytes).
Blocks are 64-byte aligned.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import numpy as np

ALIGN = 64


def _padded(n: int) -> int:
    return -(-n // ALIGN) * ALIGN


def _write_all(fd: int, data) -> None:
    view = memoryview(data).cast("B") if len(memoryview(data)) else b""
    done = 0
    while done < len(view):
        done += os.write(fd, view[done:])


class Parked:
    """An array parked in a file: ``a[key]`` and ``np.asarray(a)`` read it (a copy); a
    missing file raises :class:`FileNotFoundError`. Pickled as its place in the file."""

    def __init__(self, path: str, offset: int, dtype, shape: tuple[int, ...]):
        self.path, self.offset = path, offset
        self.dtype, self.shape = np.dtype(dtype), tuple(shape)

    def __len__(self) -> int:
        return self.shape[0]

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape)) * self.dtype.itemsize

    def read(self) -> np.ndarray:
        out = np.empty(self.shape, dtype=self.dtype)
        if not out.size:
            return out
        view = memoryview(out.reshape(-1).view(np.uint8))
        with open(self.path, "rb", buffering=0) as f:
            done = 0
            while done < len(view):
                got = os.preadv(f.fileno(), [view[done:]], self.offset + done)
                if not got:
                    raise OSError(f"{self.path}: ends before its parked array")
                done += got
        return out

    def __getitem__(self, key) -> np.ndarray:
        return self.read()[key]

    def __array__(self, dtype=None, copy=None):
        out = self.read()
        return out if dtype is None else out.astype(dtype, copy=False)


@contextmanager
def new_file(path: str | os.PathLike) -> Iterator[int]:
    """A descriptor open for writing the new file ``path``, whose folder must exist (never
    made here: a task still running after its run was stopped leaves nothing behind).
    Written under a temporary name, renamed over ``path`` when the block ends without an
    error, else removed: a reader of an earlier copy (Dask running a task twice) keeps
    reading whole data."""
    tmp = f"{os.fspath(path)}.tmp-{uuid.uuid4().hex}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        try:
            yield fd
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def park(path: str | os.PathLike, arrays: Mapping[str, np.ndarray]) -> dict[str, Parked]:
    """Write ``arrays`` into the new file ``path`` (its folder must exist: never made here)
    and return them as :class:`Parked` arrays of it."""
    path = os.fspath(path)
    places = {}
    with new_file(path) as fd:
        at = 0
        for name, a in arrays.items():
            a = np.ascontiguousarray(a)
            places[name] = (at, a.dtype, a.shape)
            data = a.reshape(-1).view(np.uint8)
            _write_all(fd, data)
            pad = _padded(len(data)) - len(data)
            _write_all(fd, b"\0" * pad)
            at += len(data) + pad
    return {name: Parked(path, at, dtype, shape) for name, (at, dtype, shape) in places.items()}


def compact(block: np.ndarray) -> np.ndarray:
    """``block`` (float32) as int8 when every value converts to int8 and back to the very
    same float32 bits, else itself."""
    block = np.ascontiguousarray(block, dtype=np.float32)
    with np.errstate(invalid="ignore"):  # nan, inf or out of range: caught by the check
        small = block.astype(np.int8)
    same = np.array_equal(small.astype(np.float32).view(np.uint32), block.view(np.uint32))
    return small if same else block


def append_block(fd: int, block: np.ndarray) -> tuple[int, str]:
    """Write ``block`` (float32 rows) at the end of the open file ``fd``, compacted (see
    :func:`compact`) and padded; (its rows, its stored dtype) for :func:`read_blocks`."""
    stored = compact(block)
    data = stored.reshape(-1).view(np.uint8)
    _write_all(fd, data)
    _write_all(fd, b"\0" * (_padded(len(data)) - len(data)))
    return len(stored), stored.dtype.str


def read_blocks(
    path: str | os.PathLike, blocks, width: int, as_stored: bool = False
) -> Iterator[tuple[int, np.ndarray]]:
    """The blocks :func:`append_block` wrote into ``path`` (``blocks``: what it returned,
    in order) as ``(first row, rows)``, mapped; float32 unless ``as_stored``."""
    at = first = 0
    for rows, dtype in blocks:
        dtype = np.dtype(dtype)
        nbytes = rows * width * dtype.itemsize
        if rows and width:
            block = np.memmap(path, dtype=dtype, mode="r", offset=at, shape=(rows, width))
        else:
            block = np.empty((rows, width), dtype=dtype)
        yield first, block if as_stored or dtype == np.float32 else block.astype(np.float32)
        at += _padded(nbytes)
        first += rows
