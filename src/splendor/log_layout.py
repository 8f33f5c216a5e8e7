r"""A game log's bytes and layout: loading a file, its lines, its header.

This module owns what is decided before any data row is parsed: reading the raw bytes of a
path, fsspec URL or ``bytes`` (a directory or unreadable file is a
:class:`~splendor.errors.GameLogError`), the byte-order mark, the lines' spans, the UTF-8
test, and the header: byte for byte an exporter's (:data:`HEADER_LAYOUTS`) or parsed as a
CSV row and compared with ``COLUMNS`` / ``LEGACY_COLUMNS`` (the 402-column layout), a
mismatch named by its first differing column.

>>> header_problem(["game_id", "players"])[1]
"header column 2 is 'players', expected 'num_players'"
>>> line_spans(b"a,b\r\nc\n")
(array([0, 5]), array([3, 6]))
"""

from __future__ import annotations

import csv
import os
import stat

import numpy as np

from splendor.columns import COLUMNS, LEGACY_COLUMNS, NUM_COLUMNS
from splendor.errors import GameLogError, Rejection

BOM = b"\xef\xbb\xbf"


def line_spans(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Start and end offsets (``\\n`` and a trailing ``\\r`` excluded) of every line."""
    buf = np.frombuffer(data, dtype=np.uint8)
    newlines = np.flatnonzero(buf == 10)
    starts = np.concatenate([[0], newlines + 1])
    ends = np.concatenate([newlines, [len(data)]])
    if starts[-1] == len(data):  # the file ends with a newline: no line after it
        starts, ends = starts[:-1], ends[:-1]
    cr = (ends > starts) & (buf[np.maximum(ends - 1, 0)] == 13)
    return starts, ends - cr


def file_error(file: str, reason: str, column: str | None = None, rows: int = 0) -> GameLogError:
    return GameLogError(Rejection(file, None, column, reason, rows=rows))


def load_source(source, label: str | None) -> tuple[bytes, str]:
    """The raw bytes of ``source`` and the name to use in messages."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source), label or "<bytes>"
    name = label or os.fspath(source)
    path = os.fspath(source)
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if "://" in path:
        import fsspec

        try:
            with fsspec.open(path, "rb") as f:
                return f.read(), name
        except IsADirectoryError:
            raise file_error(name, "not a regular file (a directory)") from None
        except (OSError, ValueError) as exc:
            fs, inner = fsspec.core.url_to_fs(path)
            if fs.isdir(inner):
                raise file_error(name, "not a regular file (a directory)") from None
            raise file_error(name, f"unreadable: {exc}") from None
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):
            kind = "a directory" if stat.S_ISDIR(st.st_mode) else "not a file"
            raise file_error(name, f"not a regular file ({kind})")
        with open(path, "rb") as f:
            return f.read(), name
    except OSError as exc:
        raise file_error(name, f"unreadable: {exc.strerror or exc}") from None


def header_problem(found: list[str]) -> tuple[str, str] | None:
    """``(column, reason)`` when the header is neither ``COLUMNS`` nor ``LEGACY_COLUMNS``."""
    if found == COLUMNS or found == LEGACY_COLUMNS:
        return None
    # Compare with the layout it resembles most: legacy when current_player is absent.
    expected = COLUMNS if "current_player" in found else LEGACY_COLUMNS
    for i, (want, got) in enumerate(zip(expected, found, strict=False)):
        if want != got:
            return got, f"header column {i + 1} is {got!r}, expected {want!r}"
    if len(found) < len(expected):
        missing = expected[len(found)]
        return missing, f"header has {len(found)} columns: column {missing!r} and after are missing"
    extra = found[len(expected)]
    return extra, f"header has {len(found)} columns: unexpected column {extra!r} after the last one"


#: The header lines the exporters write, byte for byte, and the layout each announces.
HEADER_LAYOUTS = {
    ",".join(COLUMNS).encode(): COLUMNS,
    ",".join(LEGACY_COLUMNS).encode(): LEGACY_COLUMNS,
}


def parse_header(data: bytes, header_end: int, name: str) -> list[str]:
    """The layout of a header that is not byte for byte an exporter's (quoted names...).

    Raises :class:`GameLogError` when the header is not UTF-8, not a CSV row, or names
    other columns than ``COLUMNS`` / ``LEGACY_COLUMNS``.
    """
    try:
        header_text = data[:header_end].decode("utf-8").rstrip("\r")
    except UnicodeDecodeError as exc:
        raise file_error(
            name, f"not UTF-8 text (header, byte offset {exc.start})", rows=count_rows(data)
        ) from None
    try:
        header = next(csv.reader([header_text]), [])
    except csv.Error as exc:  # e.g. a carriage return inside the header line
        raise file_error(name, f"header is not a CSV row: {exc}", rows=count_rows(data)) from None
    problem = header_problem(header)
    if problem is not None:
        raise file_error(name, problem[1], column=problem[0], rows=count_rows(data))
    return COLUMNS if len(header) == NUM_COLUMNS else LEGACY_COLUMNS


def is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def count_rows(data: bytes) -> int:
    """Data rows of a file that is rejected as a whole (non-blank lines after the first,
    which is the header even when blank)."""
    starts, ends = line_spans(data)
    return int(np.count_nonzero(ends[1:] > starts[1:]))
