"""A game log's data rows to the float64 block: the numpy tokenizer, pyarrow, the slow path.

This module owns parsing. A body in the exporters' plain subset (either dialect) goes through
the numpy tokenizer (:func:`tokenize_plain_body`, over
:func:`splendor.log_tokenizer.parse_plain_rows`); anything else is parsed whole by pyarrow
(:func:`arrow_block`: explicit column types, one thread), both giving the same ``(n, 403)``
block bit for bit, the ``action_type`` column holding the action code and the unknown action
texts returned apart. Only when pyarrow refuses the body (a ragged row, a cell that is not a
number, bytes that are not UTF-8) does :func:`parse_rows` split the lines with the ``csv``
module to reject exactly the lines at fault and parse the others.
"""

from __future__ import annotations

import csv
import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from splendor.columns import (
    ACTION_CODE,
    ACTION_COL,
    ACTION_TYPES,
    CARDS,
    COLUMNS,
    CURRENT_PLAYER_COL,
    LEGACY_COLUMNS,
    NUM_COLUMNS,
    PLAYER_POSITION,
)
from splendor.errors import Rejection
from splendor.log_layout import file_error, line_spans
from splendor.log_tokenizer import parse_plain_rows

#: Cell texts read as a missing value (besides pyarrow reading ``NaN`` as a float NaN).
NULL_VALUES = ("", "nan", "NaN", "NAN")

_ARROW_PARSE = pacsv.ParseOptions(delimiter=",")


def _convert_options(columns: list[str]) -> pacsv.ConvertOptions:
    types = {name: pa.float64() for name in columns}
    types["action_type"] = pa.string()
    return pacsv.ConvertOptions(
        column_types=types,
        null_values=list(NULL_VALUES),
        strings_can_be_null=True,
        quoted_strings_can_be_null=True,
    )


_CONVERT = {
    NUM_COLUMNS: _convert_options(COLUMNS),
    NUM_COLUMNS - 1: _convert_options(LEGACY_COLUMNS),
}
_ACTION_SET = pa.array(ACTION_TYPES)
_ACTION_WORDS = {name.encode(): code for name, code in ACTION_CODE.items()}
_NULL_WORDS = frozenset(text.encode() for text in NULL_VALUES)


def tokenize_plain_body(
    body: bytes, columns: list[str] = COLUMNS
) -> tuple[np.ndarray, dict[int, str]] | None:
    """The data rows (header excluded) of a file in the ``columns`` layout (``COLUMNS`` or
    ``LEGACY_COLUMNS``) by the numpy tokenizer (:func:`splendor.log_tokenizer.parse_plain_rows`):
    the same ``(n, 403)`` block and unknown actions as the pyarrow path (``current_player``
    copied from ``player0_position`` in a legacy layout), or ``None`` when the body is not
    plain exporter output, of either dialect."""
    if len(columns) == NUM_COLUMNS:
        return parse_plain_rows(body, NUM_COLUMNS, ACTION_COL, _ACTION_WORDS, _NULL_WORDS)
    plain = parse_plain_rows(body, NUM_COLUMNS - 1, ACTION_COL - 1, _ACTION_WORDS, _NULL_WORDS)
    if plain is None:
        return None
    legacy, unknown = plain
    values = np.empty((len(legacy), NUM_COLUMNS))
    values[:, :CURRENT_PLAYER_COL] = legacy[:, :CURRENT_PLAYER_COL]
    values[:, CURRENT_PLAYER_COL] = legacy[:, PLAYER_POSITION[0] - 1]
    values[:, CURRENT_PLAYER_COL + 1 :] = legacy[:, CURRENT_PLAYER_COL:]
    return values, unknown


# What pyarrow's float conversion accepts (after csv unquoting): decimal numbers with an
# optional exponent, inf/infinity/nan, surrounding spaces. The slow path uses it to name the
# cells pyarrow refused.
_NUMBER = re.compile(
    r"\s*[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|inf(?:inity)?|nan)\s*", re.IGNORECASE
)


class ParseError(Exception):
    """pyarrow refused the data rows (ragged row or a cell that is not a number)."""


def arrow_block(body: pa.Buffer, columns: list[str]) -> tuple[np.ndarray, dict[int, str]]:
    """Parse header-less data rows: the float64 (n, 403) block and the unknown action texts.

    The action column of the block is the code 0..3, NaN when the cell is missing or unknown;
    the dict maps the row index of each unknown action to its text.
    """
    read = pacsv.ReadOptions(use_threads=False, column_names=columns)
    try:
        table = pacsv.read_csv(
            body,
            read_options=read,
            parse_options=_ARROW_PARSE,
            convert_options=_CONVERT[len(columns)],
        )
    except pa.ArrowInvalid as exc:
        raise ParseError(str(exc)) from exc
    action_text = table.column("action_type")
    codes = pc.index_in(action_text, value_set=_ACTION_SET)  # null: missing or unknown
    # Put the codes where the text was (and current_player, from player0_position, into a
    # legacy table), so one conversion gives the (n, 403) block in COLUMNS order.
    action_col = ACTION_COL if len(columns) == NUM_COLUMNS else ACTION_COL - 1
    table = table.set_column(action_col, "action_type", pc.cast(codes, pa.float64()))
    if len(columns) != NUM_COLUMNS:
        player0 = table.column("player0_position")
        table = table.add_column(CURRENT_PLAYER_COL, "current_player", player0)
    if table.num_rows == 0:
        out = np.empty((0, NUM_COLUMNS))
    else:
        if table.column(0).num_chunks > 1:
            table = table.combine_chunks()
        (batch,) = table.to_batches()
        out = np.asarray(batch.to_tensor(null_to_nan=True, row_major=True))
    unknown: dict[int, str] = {}
    if codes.null_count != action_text.null_count:  # some text is not an action type
        is_unknown = pc.and_(pc.is_null(codes), pc.is_valid(action_text))
        for i in np.flatnonzero(is_unknown.to_numpy(zero_copy_only=False)):
            unknown[int(i)] = action_text[int(i)].as_py()
    return out, unknown


def parse_rows(data: bytes, body_offset: int, columns: list[str], utf8: bool, name: str):
    """The data rows by pyarrow (the slow path names the lines it refuses): the block, the
    unknown actions, line numbers, rows read and row rejections."""
    starts, ends = line_spans(data)
    nonblank = np.flatnonzero(ends > starts)
    nonblank = nonblank[nonblank > 0]  # line index 0 is the header
    line_numbers = (nonblank + 1).astype(np.int64)
    rows_read = len(nonblank)

    if rows_read == 0:
        return np.empty((0, NUM_COLUMNS)), {}, line_numbers, 0, []

    rejections: list[Rejection] = []
    try:
        if not utf8:
            raise ParseError("not UTF-8")
        values, unknown = arrow_block(pa.py_buffer(data)[body_offset:], columns)
        if len(values) != rows_read:  # pyarrow and the line count disagree: be precise
            raise ParseError("row count mismatch")
    except ParseError:
        values, unknown, line_numbers, rejections = _slow_path(
            data, starts[nonblank], ends[nonblank], line_numbers, columns, name
        )
    return values, unknown, line_numbers, rows_read, rejections


def _slow_path(
    data: bytes,
    starts: np.ndarray,
    ends: np.ndarray,
    line_numbers: np.ndarray,
    columns: list[str],
    name: str,
) -> tuple[np.ndarray, dict[int, str], np.ndarray, list[Rejection]]:
    """Find the lines pyarrow refused, reject them, and parse the others with pyarrow.

    Each physical line is one record (as in the fast path, which does not allow newlines in
    values). Returns the block, the unknown-action texts, the kept line numbers, rejections.
    """
    ncols = len(columns)
    action_index = columns.index("action_type")
    good: list[int] = []
    rejections: list[Rejection] = []
    for k, (start, end) in enumerate(zip(starts.tolist(), ends.tolist(), strict=True)):
        line = int(line_numbers[k])
        raw = data[start:end]
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            cell = raw[: exc.start].count(b",")
            column = columns[cell] if cell < ncols else None
            byte = f"0x{raw[exc.start]:02x}"
            reason = f"not UTF-8 text (byte {byte} at offset {exc.start} of the line)"
            rejections.append(Rejection(name, line, column, reason))
            continue
        if "\r" in text:  # a line break (for pyarrow) in the middle of the row
            cell = text[: text.index("\r")].count(",")
            column = columns[cell] if cell < ncols else None
            reason = "carriage return inside the row: a line break in the middle of a cell"
            rejections.append(Rejection(name, line, column, reason))
            continue
        try:  # strict: an unclosed quote is an error here, as it is for pyarrow (for which
            # it swallows the line breaks after it), not an empty last cell
            cells = next(csv.reader([text], strict=True), [])
        except csv.Error as exc:
            rejections.append(Rejection(name, line, None, f"not a CSV row: {exc}"))
            continue
        if len(cells) != ncols:
            if len(cells) < ncols:
                column = columns[len(cells)]
                reason = f"too few cells: expected {ncols}, found {len(cells)}"
            else:
                column = None
                reason = f"too many cells: expected {ncols}, found {len(cells)}"
                if len(cells) - ncols == CARDS.shape[1]:  # as many as a card has
                    reason += f" ({CARDS.shape[1]} extra cells: a 4th reserved card?)"
            rejections.append(Rejection(name, line, column, reason))
            continue
        for j, cell in enumerate(cells):
            if j != action_index and cell not in NULL_VALUES and not _NUMBER.fullmatch(cell):
                rejections.append(Rejection(name, line, columns[j], f"not a number: {cell!r}"))
                break
        else:
            good.append(k)

    if not good:
        return np.empty((0, NUM_COLUMNS)), {}, line_numbers[:0], rejections
    body = b"\n".join(data[starts[k] : ends[k]] for k in good)
    try:
        values, unknown = arrow_block(pa.py_buffer(body), columns)
    except ParseError as exc:  # the line checks above should have caught it
        raise file_error(name, f"unparseable: {exc}", rows=len(starts)) from None
    if len(values) != len(good):
        raise file_error(
            name, "unparseable: row count mismatch after dropping bad lines", rows=len(starts)
        )
    return values, unknown, line_numbers[good], rejections
