"""A ``.npz`` written in pieces: its members' rows written at their offsets, by any number of
writers, in any order, then sealed.

The file is a ZIP archive whose members are stored (``ZIP_STORED``, uncompressed), each a
``.npy``, so every member's rows sit at a fixed offset that follows from the members'
dtypes and shapes alone (:class:`NpzLayout`). :func:`preallocate` writes everything but the
rows (the headers, the central directory; the rows' bytes left a hole), each writer writes
its rows with ``pwrite`` at their offset (:func:`write_rows`, which returns the CRC-32 of
what it wrote), and :func:`seal` puts each member's CRC-32, combined from its pieces' in row
order (:func:`crc32_combine`: zlib's, done here since Python does not expose it), into the
local header and the central directory. ``np.load`` (and any ZIP reader) reads the result as
any ``.npz``; the CRCs are checked as it reads.

The archive always uses the ZIP64 fields (sizes and offsets in 8 bytes), so a member or a
file larger than 4 GiB needs nothing else. Timestamps are fixed (1980-01-01): the same
arrays give the same bytes, however they were cut into pieces. :func:`write_npz_stored`
writes whole arrays the same way (the same bytes).
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

# --------------------------------------------------------------------------- CRC-32

_POLY = 0xEDB88320  # CRC-32 (ISO-HDLC, zlib's), reflected


def _multmodp(a: int, b: int) -> int:
    """a(x) * b(x) modulo the CRC polynomial (reflected bit order, as zlib's ``multmodp``)."""
    m = 1 << 31
    p = 0
    while True:
        if a & m:
            p ^= b
            if not a & (m - 1):
                break
        m >>= 1
        b = (b >> 1) ^ _POLY if b & 1 else b >> 1
    return p


def _x2n_table() -> list[int]:
    table, p = [], 1 << 30  # x^1
    for _ in range(32):
        table.append(p)
        p = _multmodp(p, p)
    return table


_X2N = _x2n_table()  # x^(2^n) modulo the polynomial


def _x8nmodp(n: int) -> int:
    """x^(8 n) modulo the polynomial."""
    p, k = 1 << 31, 3  # x^0; 8 n = n * 2^3
    while n:
        if n & 1:
            p = _multmodp(_X2N[k & 31], p)
        n >>= 1
        k += 1
    return p


def crc32_combine(crc1: int, crc2: int, len2: int) -> int:
    """The CRC-32 of ``A + B`` from ``crc1`` = crc32(A), ``crc2`` = crc32(B) and len(B)."""
    if len2 <= 0:
        return crc1
    return _multmodp(_x8nmodp(len2), crc1) ^ crc2


def crc32_of_pieces(first: int, pieces: Iterable[tuple[int, int]]) -> int:
    """``first`` (a CRC-32) extended by ``(crc, length)`` pieces, in order."""
    crc = first
    for piece_crc, length in pieces:
        crc = crc32_combine(crc, piece_crc, length)
    return crc


# --------------------------------------------------------------------------- the layout

_DOS_TIME, _DOS_DATE = 0, (0 << 9) | (1 << 5) | 1  # 1980-01-01 00:00:00
_VERSION = 45  # 4.5: ZIP64
_MADE_BY = (3 << 8) | _VERSION  # Unix
_ATTR = 0o644 << 16
_FF32 = 0xFFFFFFFF


@dataclass(frozen=True)
class Member:
    """One array of the archive: its name (``.npy`` added), dtype and shape."""

    name: str
    dtype: np.dtype
    shape: tuple[int, ...]

    @property
    def row_bytes(self) -> int:
        return int(np.dtype(self.dtype).itemsize * int(np.prod(self.shape[1:], dtype=np.int64)))

    def npy_header(self) -> bytes:
        import io

        buf = io.BytesIO()
        header = {
            "descr": np.lib.format.dtype_to_descr(np.dtype(self.dtype)),
            "fortran_order": False,
            "shape": tuple(int(n) for n in self.shape),
        }
        np.lib.format.write_array_header_1_0(buf, header)
        return buf.getvalue()


@dataclass(frozen=True)
class NpzLayout:
    """Where everything of the archive of ``members`` lies (a function of the members)."""

    members: tuple[Member, ...]
    local_offsets: tuple[int, ...]  # each member's local header
    npy_headers: tuple[bytes, ...]
    data_offsets: tuple[int, ...]  # each member's first row
    sizes: tuple[int, ...]  # each member's bytes (.npy header and rows)
    central_offset: int
    central_entry_offsets: tuple[int, ...]
    size: int  # of the whole file

    @classmethod
    def of(cls, members: Sequence[Member]) -> NpzLayout:
        members = tuple(members)
        local, headers, data, sizes = [], [], [], []
        at = 0
        for m in members:
            header = m.npy_header()
            if not m.shape:
                raise ValueError(f"{m.name}: a 0-d array has no rows")
            size = len(header) + m.row_bytes * int(m.shape[0])
            local.append(at)
            headers.append(header)
            at += 30 + len(_name(m)) + 20
            data.append(at + len(header))
            sizes.append(size)
            at += size
        central = at
        entries = []
        for m in members:
            entries.append(at)
            at += 46 + len(_name(m)) + 28
        at += 56 + 20 + 22  # ZIP64 end record, its locator, the end record
        return cls(members, tuple(local), tuple(headers), tuple(data), tuple(sizes), central,
                   tuple(entries), at)

    def index(self, name: str) -> int:
        for i, m in enumerate(self.members):
            if m.name == name:
                return i
        raise KeyError(name)

    def local_header(self, i: int, crc: int) -> bytes:
        m, size = self.members[i], self.sizes[i]
        name = _name(m)
        extra = struct.pack("<HHQQ", 1, 16, size, size)
        return struct.pack(
            "<IHHHHHIIIHH", 0x04034B50, _VERSION, 0, 0, _DOS_TIME, _DOS_DATE, crc, _FF32,
            _FF32, len(name), len(extra),
        ) + name + extra

    def central_entry(self, i: int, crc: int) -> bytes:
        m, size = self.members[i], self.sizes[i]
        name = _name(m)
        extra = struct.pack("<HHQQQ", 1, 24, size, size, self.local_offsets[i])
        return struct.pack(
            "<IHHHHHHIIIHHHHHII", 0x02014B50, _MADE_BY, _VERSION, 0, 0, _DOS_TIME, _DOS_DATE,
            crc, _FF32, _FF32, len(name), len(extra), 0, 0, 0, _ATTR, _FF32,
        ) + name + extra

    def end_records(self) -> bytes:
        n = len(self.members)
        central_size = self.size - 98 - self.central_offset
        end64_at = self.central_offset + central_size
        end64 = struct.pack(
            "<IQHHIIQQQQ", 0x06064B50, 44, _MADE_BY, _VERSION, 0, 0, n, n, central_size,
            self.central_offset,
        )
        locator = struct.pack("<IIQI", 0x07064B50, 0, end64_at, 1)
        end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 0xFFFF, 0xFFFF, _FF32, _FF32, 0)
        return end64 + locator + end


def _name(m: Member) -> bytes:
    return f"{m.name}.npy".encode()


def members_of(arrays: Mapping[str, np.ndarray]) -> list[Member]:
    return [Member(k, np.asarray(a).dtype, tuple(np.shape(a))) for k, a in arrays.items()]


# --------------------------------------------------------------------------- writing


def _pwrite_all(fd: int, data, offset: int) -> None:
    view = memoryview(data).cast("B")
    done = 0
    while done < len(view):
        done += os.pwrite(fd, view[done:], offset + done)


def write_bytes_at(path: str | os.PathLike, offset: int, data) -> None:
    """Write ``data`` (any buffer) at ``offset`` of the existing file ``path`` (never
    created here: a task still running after its run was stopped leaves nothing behind)."""
    fd = os.open(path, os.O_WRONLY)
    try:
        _pwrite_all(fd, data, offset)
    finally:
        os.close(fd)


def preallocate(path: str | os.PathLike, layout: NpzLayout) -> None:
    """Create ``path`` at its full size with everything but the rows (CRCs left 0)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.ftruncate(fd, layout.size)
        for i in range(len(layout.members)):
            _pwrite_all(fd, layout.local_header(i, 0) + layout.npy_headers[i],
                        layout.local_offsets[i])
        central = b"".join(layout.central_entry(i, 0) for i in range(len(layout.members)))
        _pwrite_all(fd, central + layout.end_records(), layout.central_offset)
    finally:
        os.close(fd)


def write_rows(
    path: str | os.PathLike, layout: NpzLayout, i: int, first_row: int, rows: np.ndarray
) -> tuple[int, int]:
    """Write ``rows`` (of member ``i``'s dtype and row shape) from row ``first_row`` of the
    existing file ``path`` (never created here); (their CRC-32, their bytes)."""
    m = layout.members[i]
    block = np.ascontiguousarray(rows, dtype=m.dtype)
    if block.shape[1:] != tuple(m.shape[1:]) or first_row + len(block) > m.shape[0]:
        raise ValueError(f"{m.name}: rows {block.shape} at {first_row} do not fit {m.shape}")
    data = memoryview(block.reshape(-1).view(np.uint8))
    if not len(data):
        return 0, 0
    write_bytes_at(path, layout.data_offsets[i] + first_row * m.row_bytes, data)
    return zlib.crc32(data), len(data)


def seal(
    path: str | os.PathLike, layout: NpzLayout, pieces: Sequence[Sequence[tuple[int, int]]]
) -> None:
    """Put each member's CRC-32 in place: ``pieces[i]`` are member ``i``'s ``(crc, bytes)``
    in row order, covering all its rows (checked)."""
    fd = os.open(path, os.O_WRONLY)
    try:
        for i, member_pieces in enumerate(pieces):
            header = layout.npy_headers[i]
            written = sum(length for _, length in member_pieces)
            if len(header) + written != layout.sizes[i]:
                raise AssertionError(
                    f"{layout.members[i].name}: {written} bytes written, "
                    f"{layout.sizes[i] - len(header)} expected"
                )
            crc = crc32_of_pieces(zlib.crc32(header), member_pieces)
            _pwrite_all(fd, struct.pack("<I", crc), layout.local_offsets[i] + 14)
            _pwrite_all(fd, struct.pack("<I", crc), layout.central_entry_offsets[i] + 16)
        os.fsync(fd)
    finally:
        os.close(fd)


def write_npz_stored(path: str | os.PathLike, arrays: Mapping[str, np.ndarray]) -> None:
    """``arrays`` as a stored ``.npz`` laid out as :class:`NpzLayout` (one piece each)."""
    layout = NpzLayout.of(members_of(arrays))
    preallocate(path, layout)
    pieces = []
    for i, a in enumerate(arrays.values()):
        a = np.asarray(a)
        pieces.append([write_rows(path, layout, i, 0, a)])
    seal(path, layout, pieces)
