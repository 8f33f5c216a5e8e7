"""The cache's entries: one file per game file's result, its format, and how it is
written (atomically) and read (mapped, its checksum verified).

An entry (``<cache>/entries/<key[:2]>/<key>.entry``) is ``MAGIC | header length (8 bytes,
little-endian) | header (JSON) | arrays | CRC-32``: the header holds the key, the row
counts, game ids, rejections (without the file's name) and the arrays' layout; the arrays
are raw and 64-byte aligned (X's rows as int8 when exact, masks as packed bits). Nothing
here knows about keys or runs (:mod:`.keys`, :mod:`.lookup`).
"""

from __future__ import annotations

import json
import math
import mmap
import os
import uuid
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from splendor.errors import Rejection

#: The entry format (part of the step version).
FORMAT = 3
MAGIC = b"SPLENDOR-IL-RC\x00\x02"
CHECK_BYTES = 4  # bytes of the CRC-32 at the end of an entry
ENTRIES = "entries"
SUFFIX = ".entry"


def entry_path(folder: str | os.PathLike, key: str) -> Path:
    return Path(entry_file(folder, key))


def entry_file(folder: str | os.PathLike, key: str) -> str:
    """:func:`entry_path` as a string (cheaper to make: read once per file per run)."""
    return os.path.join(folder, ENTRIES, key[:2], f"{key}{SUFFIX}")



class DamagedEntry(ValueError):
    """An entry that cannot be trusted (never used)."""


@dataclass(frozen=True)
class MappedRows:
    """A file's rows of X in its cache entry, mapped only while they are used: a partition
    waiting for its writes holds no file open (there may be thousands)."""

    entry: str
    offset: int  # of the rows in the entry, bytes
    shape: tuple[int, int]
    stat: tuple[int, int, int, int]  # device, inode, size, mtime (ns) of the entry verified
    dtype: str = "<f4"  # as stored: float32, or int8 when that holds every value exactly

    def __len__(self) -> int:
        return self.shape[0]

    def load(self, as_stored: bool = False) -> np.ndarray | None:
        """The rows as float32 (a read-only view of the mapped entry when stored so), or
        None when the entry is no longer the file whose checksum was verified (replaced or
        removed since). ``as_stored``: the rows as stored, int8 or float32, always a view
        (every stored value is exactly the float32 one: arithmetic on them gives the same
        results)."""
        if not self.shape[0]:
            return np.empty(self.shape, dtype=np.float32)
        try:
            with open(self.entry, "rb") as f:
                st = os.fstat(f.fileno())
                if (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns) != self.stat:
                    return None
                data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except OSError:
            return None
        count = self.shape[0] * self.shape[1]
        rows = np.frombuffer(data, np.dtype(self.dtype), count, self.offset).reshape(self.shape)
        return rows if as_stored else as_float32(rows)


@dataclass
class Piece:
    """One file's share of a partition, as :func:`process_partition_rows` assembles it
    (what an entry holds). ``row_group`` and ``groups.file`` are local to the file (its
    game groups numbered from 0, file 0)."""

    rows_read: int
    game_ids: list[int]  # the file index's game ids, in order of appearance
    rejections: list[Rejection]
    file_ok: bool
    strategic_width: int
    X: np.ndarray | MappedRows  # float32 (n, F), unscaled
    row_group: np.ndarray  # int32 (n,)
    labels: dict[str, np.ndarray]
    masks: dict[str, np.ndarray]
    group_game_id: np.ndarray
    group_rows: np.ndarray
    group_mean: np.ndarray
    group_m2: np.ndarray

    @property
    def rows(self) -> int:
        return len(self.X)


ALIGN = 64


def compact_rows(X: np.ndarray) -> np.ndarray:
    """X's rows as stored in an entry: int8 when every value converts to int8 and back to
    the very same float32 bits (X before scaling holds counts, flags, positions and small
    differences: a quarter of the bytes), else X itself."""
    with np.errstate(invalid="ignore"):  # nan, inf or out of range: caught by the check
        small = X.astype(np.int8)
    same = np.array_equal(small.astype(np.float32).view(np.uint32), X.view(np.uint32))
    return small if same else X


def as_float32(rows: np.ndarray) -> np.ndarray:
    """Stored rows back as the float32 rows they were made from (exact)."""
    return rows if rows.dtype == np.float32 else rows.astype(np.float32)


def encode(piece: Piece, key: str, *, x_stored: list | None = None) -> list[bytes | memoryview]:
    """The entry of ``piece``, as the buffers to write one after the other; ``x_stored``
    (a list) receives the offset of X's rows in the entry and their stored dtype."""
    arrays: dict[str, np.ndarray] = {
        "X": compact_rows(np.ascontiguousarray(piece.X, dtype=np.float32)),
        "row_group": piece.row_group,
        "group_game_id": piece.group_game_id,
        "group_rows": piece.group_rows,
        "group_mean": piece.group_mean,
        "group_m2": piece.group_m2,
    }
    classes = {}
    for h, a in piece.labels.items():
        arrays[f"label:{h}"] = a
    for h, m in piece.masks.items():
        arrays[f"mask:{h}"] = np.packbits(m, axis=1)
        classes[h] = int(m.shape[1])
    layout, offset = [], 0
    for name, a in arrays.items():
        layout.append([name, a.dtype.str, list(a.shape), offset])
        offset += -(-a.nbytes // ALIGN) * ALIGN
    header = json.dumps(
        {
            "key": key,
            "rows_read": int(piece.rows_read),
            "game_ids": [int(g) for g in piece.game_ids],
            "file_ok": bool(piece.file_ok),
            "strategic_width": int(piece.strategic_width),
            "rejections": [[r.line, r.column, r.reason, r.rows] for r in piece.rejections],
            "mask_classes": classes,
            "arrays": layout,
            "payload": offset,
        }
    ).encode()
    head = MAGIC + len(header).to_bytes(8, "little") + header
    head += bytes(-len(head) % ALIGN)
    buffers: list[bytes | memoryview] = [head]
    if x_stored is not None:
        x_stored += [len(head), arrays["X"].dtype.str]  # X is the first array
    for a in arrays.values():
        data = memoryview(np.ascontiguousarray(a).reshape(-1).view(np.uint8))
        buffers.append(data)
        if -len(data) % ALIGN:
            buffers.append(bytes(-len(data) % ALIGN))
    crc = 0
    for b in buffers:
        crc = zlib.crc32(b, crc)
    buffers.append(crc.to_bytes(CHECK_BYTES, "little"))
    return buffers


def decode(data, path: str, key: str, *, x_offset: list | None = None) -> Piece:
    """The piece stored in an entry, for the file ``path``; :class:`DamagedEntry` if the
    entry is not whole and sound. Its arrays are read-only views of ``data`` (a buffer);
    ``x_offset`` (a list) receives the offset of X's rows in the entry and their stored
    dtype, and X is then left as stored (the caller maps it later) while the other arrays
    are views of one copy of their bytes (they keep nothing of ``data``); without it, X is
    the float32 rows (a copy when they were stored as int8)."""
    view = memoryview(data)
    if len(data) < len(MAGIC) + 8 + CHECK_BYTES or bytes(view[: len(MAGIC)]) != MAGIC:
        raise DamagedEntry("not a cache entry (bad magic or truncated)")
    if zlib.crc32(view[:-CHECK_BYTES]) != int.from_bytes(view[-CHECK_BYTES:], "little"):
        raise DamagedEntry("checksum mismatch (damaged or truncated)")
    start = len(MAGIC) + 8
    size = int.from_bytes(view[len(MAGIC) : start], "little")
    try:
        header = json.loads(bytes(view[start : start + size]))
        if header["key"] != key:
            raise DamagedEntry("entry holds another key")
        base = start + size
        base += -base % ALIGN
        if base + header["payload"] + CHECK_BYTES != len(data):
            raise DamagedEntry("entry's length does not match its header")
        arrays = {}
        layout = header["arrays"]
        owned, start_owned = data, 0
        if x_offset is not None:  # X stays in the entry: the rest is copied, in one piece
            start_owned = base + min((o for n, _, _, o in layout if n != "X"), default=0)
            owned = bytes(view[start_owned : base + header["payload"]])
        for name, dtype, shape, offset in layout:
            dt = np.dtype(dtype)
            count = math.prod(shape)
            if name == "X" and x_offset is not None:  # a view of the entry, mapped later
                x_offset += [base + offset, dtype]
                arrays[name] = np.frombuffer(data, dt, count, base + offset).reshape(shape)
                continue
            at = base + offset - start_owned
            arrays[name] = np.frombuffer(owned, dt, count, at).reshape(shape)
        classes = header["mask_classes"]
        return Piece(
            rows_read=int(header["rows_read"]),
            game_ids=list(header["game_ids"]),
            rejections=[Rejection(path, *r) for r in header["rejections"]],
            file_ok=bool(header["file_ok"]),
            strategic_width=int(header["strategic_width"]),
            X=arrays["X"] if x_offset is not None else as_float32(arrays["X"]),
            row_group=arrays["row_group"],
            labels={n[6:]: a for n, a in arrays.items() if n.startswith("label:")},
            masks={
                n[5:]: np.unpackbits(a, axis=1, count=classes[n[5:]]).view(bool)
                for n, a in arrays.items()
                if n.startswith("mask:")
            },
            group_game_id=arrays["group_game_id"],
            group_rows=arrays["group_rows"],
            group_mean=arrays["group_mean"],
            group_m2=arrays["group_m2"],
        )
    except DamagedEntry:
        raise
    except Exception as exc:  # a sound checksum over a header that does not add up
        raise DamagedEntry(f"unreadable entry ({type(exc).__name__}: {exc})") from None


def storable(rejections: Sequence[Rejection], path: str) -> bool:
    """Whether a file's result can be kept under its content alone: none of its
    rejections names the path in its text (it would be wrong for a renamed copy)."""
    return all(r.file == path and path not in r.reason for r in rejections)


def read_entry(folder: str | os.PathLike, key: str, path: str) -> Piece | None:
    """The stored piece (None if absent); :class:`DamagedEntry` if it is damaged.

    The entry is mapped, not read: its arrays are views of the file's pages in the system's
    file cache. Entries are only ever replaced by a rename, never written in place, so a
    mapped entry keeps its bytes even when another run replaces or prunes it meanwhile."""
    entry = entry_file(folder, key)
    try:
        with open(entry, "rb") as f:
            st = os.fstat(f.fileno())
            if st.st_size < len(MAGIC) + 8 + CHECK_BYTES:
                raise DamagedEntry("not a cache entry (bad magic or truncated)")
            data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise DamagedEntry(f"cannot read the entry ({exc})") from None
    where: list[int] = []
    piece = decode(data, path, key, x_offset=where)
    # nothing keeps the mapping (and its file descriptor) once this returns: the small
    # arrays are a copy already, X's rows are mapped again when they are written
    piece = mapped_piece(piece, entry, where, st, copy=False)
    del data
    return piece


def mapped_piece(
    piece: Piece,
    entry: str | os.PathLike,
    x_stored: Sequence,
    st: os.stat_result,
    *,
    copy: bool = True,
) -> Piece:
    """``piece`` with its rows of X as :class:`MappedRows` of its entry (``x_stored``: their
    offset and stored dtype; ``st``: the entry's stat) and, with ``copy``, copies of its
    other arrays, so that it keeps no view of the buffer it was read or made from."""
    piece.X = MappedRows(
        str(entry),
        x_stored[0],
        tuple(piece.X.shape),
        (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns),
        x_stored[1],
    )
    if not copy:
        return piece
    piece.row_group = piece.row_group.copy()
    piece.labels = {h: a.copy() for h, a in piece.labels.items()}
    piece.masks = {h: a.copy() for h, a in piece.masks.items()}
    for name in ("group_game_id", "group_rows", "group_mean", "group_m2"):
        setattr(piece, name, getattr(piece, name).copy())
    return piece


def write_entry(folder: str | os.PathLike, key: str, buffers: Sequence) -> os.stat_result:
    """Write an entry atomically: a unique temporary file in the entry's folder, renamed
    over the final name (a concurrent reader sees no entry or a whole one). Returns the
    entry's stat as written."""
    final = entry_path(folder, key)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f"{final.name}.tmp-{uuid.uuid4().hex}")
    try:
        with open(tmp, "xb") as f:
            for b in [buffers] if isinstance(buffers, (bytes, memoryview)) else buffers:
                f.write(b)
            f.flush()
            st = os.fstat(f.fileno())
        os.replace(tmp, final)
        return st
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
