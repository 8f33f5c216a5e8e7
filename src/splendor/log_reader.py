"""Read one game-log CSV (``docs/input-format.md``) into a float64 block, fast and strictly.

This module owns the read of one file, end to end, and what it returns (:class:`GameLog`):
the bytes and header (:mod:`splendor.log_layout`), the data rows parsed
(:mod:`splendor.log_parsers`), the blind reserves normalised to the canonical base 12, the
rows checked (:mod:`splendor.row_checks`) and the bad ones turned into precise
:class:`~splendor.errors.Rejection` s. File-level problems (missing or unreadable file,
directory, binary content, a header that is not UTF-8, empty file, wrong header) raise
:class:`~splendor.errors.GameLogError`; a bad data row is dropped and recorded
(``on_bad_row="reject"``) or raised (``on_bad_row="raise"``). Every quirk of the older
exporters is accepted (``nan`` text and empty cells, integers written as floats, 402-column
files without ``current_player``, blind reserves written from a different base).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from splendor.columns import (
    CANONICAL_BLIND_BASE,
    CARD_RESERVATION_COL,
    LEGACY_COLUMNS,
    NUM_COLUMNS,
)
from splendor.errors import GameLogError, Rejection
from splendor.log_layout import (
    BOM,
    HEADER_LAYOUTS,
    count_rows,
    file_error,
    is_utf8,
    load_source,
    parse_header,
)
from splendor.log_parsers import parse_rows, tokenize_plain_body
from splendor.row_checks import validate_rows

__all__ = ["GameLog", "read_game_log"]


@dataclass
class GameLog:
    """One game log, read.

    ``values``: float64 ``(n, 403)`` in ``columns.COLUMNS`` order, NaN = missing, the
    ``action_type`` column holding the action code and ``card_reservation`` normalised to the
    blind base 12. ``line_numbers``: int64 ``(n,)`` 1-based file line of each kept row (the
    header is line 1). ``rows_read``: data rows seen (kept + rejected). ``rejections``: the rows
    dropped. ``num_columns``: 403, or 402 for a file without ``current_player``.
    """

    path: str
    values: np.ndarray
    line_numbers: np.ndarray
    rows_read: int
    rejections: list[Rejection] = field(default_factory=list)
    num_columns: int = NUM_COLUMNS

    def __len__(self) -> int:
        return len(self.values)


def read_game_log(
    source,
    *,
    blind_reserve_base: int = CANONICAL_BLIND_BASE,
    on_bad_row: str = "reject",
    label: str | None = None,
) -> GameLog:
    """Read one game log.

    ``source``: a path (str or PathLike), an fsspec URL (anything with ``://``), or the raw
    ``bytes`` of a file (``label`` names it in messages; it also overrides the name of a path).
    ``blind_reserve_base``: the file's first blind-reserve code (12 canonical, 11 for the older
    exporter); values >= it in ``card_reservation`` are shifted to the base 12.
    ``on_bad_row``: ``"reject"`` drops bad rows and records them in ``rejections``; ``"raise"``
    raises a :class:`GameLogError` for the first bad row. File-level problems always raise.
    """
    if on_bad_row not in ("reject", "raise"):
        raise ValueError(f"on_bad_row must be 'reject' or 'raise', not {on_bad_row!r}")
    if isinstance(blind_reserve_base, bool) or not isinstance(blind_reserve_base, int):
        raise ValueError(f"blind_reserve_base must be an int, not {blind_reserve_base!r}")

    data, name = load_source(source, label)
    if data.startswith(BOM):
        data = data[len(BOM) :]

    if not data or data.isspace():  # (strip() would copy the whole file)
        raise file_error(name, "empty file: no header")
    header_end = data.find(b"\n")
    header_end = len(data) if header_end < 0 else header_end
    # Bytes that are not UTF-8 (or NUL bytes) in the header make the file unreadable; in a
    # data row they only cost that row (the slow path names it).
    utf8 = data.isascii() or is_utf8(data)
    columns = HEADER_LAYOUTS.get(data[:header_end].rstrip(b"\r"))
    if columns is None:  # not byte for byte an exporter's header: parse it as a CSV row
        if b"\x00" in data:  # and not a game log's header: a binary file
            raise file_error(
                name, "binary content (NUL bytes), not a CSV text file", rows=count_rows(data)
            )
        columns = parse_header(data, header_end, name)

    body_offset = min(header_end + 1, len(data))
    plain = None
    if utf8:  # plain exporter output (either dialect): the numpy tokenizer, no pyarrow
        plain = tokenize_plain_body(data[body_offset:], columns)
    if plain is not None:
        values, unknown = plain
        rows_read = len(values)
        line_numbers = np.arange(2, rows_read + 2, dtype=np.int64)  # no blank lines
        rejections: list[Rejection] = []
    else:
        values, unknown, line_numbers, rows_read, rejections = parse_rows(
            data, body_offset, columns, utf8, name
        )
    if rows_read == 0:  # header only (pyarrow would call a body without rows an empty file)
        return GameLog(name, np.empty((0, NUM_COLUMNS)), line_numbers, 0, [], len(columns))

    # Decode: blind reserves to base 12.
    res = values[:, CARD_RESERVATION_COL]
    shift = res >= blind_reserve_base
    res[shift] += CANONICAL_BLIND_BASE - blind_reserve_base

    bad = np.zeros(len(values), dtype=bool)
    for i, text in unknown.items():
        bad[i] = True
        rejections.append(
            Rejection(name, int(line_numbers[i]), "action_type", f"unknown action type {text!r}")
        )
    for i, column, reason in validate_rows(values):
        if bad[i]:
            continue
        bad[i] = True
        if column == "current_player" and columns is LEGACY_COLUMNS:
            column = "player0_position"  # the file has no current_player: it came from here
        rejections.append(Rejection(name, int(line_numbers[i]), column, reason))

    rejections.sort(key=lambda r: r.line)
    if rejections and on_bad_row == "raise":
        raise GameLogError(rejections[0])
    if bad.any():
        values, line_numbers = values[~bad], line_numbers[~bad]
    return GameLog(
        path=name,
        values=values,
        line_numbers=line_numbers,
        rows_read=rows_read,
        rejections=rejections,
        num_columns=len(columns),
    )
