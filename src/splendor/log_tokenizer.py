"""A numpy tokenizer for the data rows the exporters write: a fast path in front of pyarrow.

Game logs use a tiny subset of CSV: lines end with ``\\n`` or ``\\r\\n``, cells are separated
by ``,``, a number is written as decimal digits (``-`` in front when negative), possibly
followed by a ``.`` and zeros (the older exporters write integers as floats, ``3.0``), a
missing value as an empty cell or one of the null texts (``nan``), and the one text column
(``action_type``) holds short unquoted words. That covers both dialects of
:mod:`splendor.log_writer` (this project's exporter and the older ones).
For that subset, tokenizing the whole body at once with numpy (find the separators, then
convert all one-digit cells in one step and the few longer ones by length) is several times
faster than a general CSV parser, which pays per column and per cell for options it does not
need here (a game log has 403 columns and only ~80 rows).

:func:`parse_plain_rows` either returns exactly what the pyarrow path of
:mod:`splendor.log_parsers` gives for the same bytes (bit for bit: ``-0`` is ``-0.0``, a
missing cell the same NaN), or ``None`` when the body uses anything outside the subset
(quotes, a carriage return that does not end a line, blank lines, ``+``, exponents, decimals
other than zeros after the point, null texts other than the given ones, ragged rows, integer
parts longer than 18 characters...). ``None`` is not an error: the caller then parses with
pyarrow, which accepts everything else and names what is wrong. Tests check both paths agree
on generated and mutated files of both dialects.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

import numpy as np

#: Longest integer part converted here (sign included): 18 digits always fit an int64, and
#: convert to the float64 nearest to the decimal value (as pyarrow's parser rounds).
MAX_DIGITS = 18

_COMMA, _NEWLINE, _RETURN, _ZERO, _DOT = (ord(c) for c in ",\n\r0.")
_MINUS = np.uint8(ord("-") - _ZERO + 256)  # "-" after subtracting "0" from a uint8
_POW10 = 10 ** np.arange(MAX_DIGITS, dtype=np.int64)
_DIGIT_VALUES = np.full(256, np.nan)  # by byte minus "0": the digits' values, else NaN
_DIGIT_VALUES[:10] = np.arange(10)


def _gather(buf: np.ndarray, starts: np.ndarray, length: int) -> np.ndarray:
    """``(len(starts), length)`` uint8: the ``length`` bytes from each start."""
    return buf[starts[:, None] + np.arange(length)]


class _CellBytes:
    """The ``i``-th byte of every cell, gathered once when first asked for (past a cell's
    end: the bytes that follow it, so compare with the cell's length)."""

    def __init__(self, buf: np.ndarray, starts: np.ndarray):
        self.buf, self.starts = buf, starts
        self.gathered = [buf.take(starts)]

    def __getitem__(self, i: int) -> np.ndarray:
        while len(self.gathered) <= i:  # the buffer shifted by i, indexed by the starts
            self.gathered.append(self.buf[len(self.gathered) :].take(self.starts))
        return self.gathered[i]


def _null_cells(
    chars: _CellBytes, lengths: np.ndarray, null_texts: Collection[bytes]
) -> np.ndarray | None:
    """bool over the cells: the cell is one of the non-empty ``null_texts`` (an older
    exporter's ``nan``: about half the cells of its files, so compared for all at once);
    ``None`` when there is none."""
    found = None
    for text in null_texts:
        if not text:
            continue
        same = chars[0] == text[0]
        if not same.any():
            continue
        same &= lengths == len(text)
        for i in range(1, len(text)):
            same &= chars[i] == text[i]
        found = same if found is None else found | same
    return found


def _drop_zero_fractions(
    buf: np.ndarray,
    seps: np.ndarray,
    chars: _CellBytes,
    lengths: np.ndarray,
    num_columns: int,
    text_column: int,
) -> np.ndarray | None:
    """Shorten every number cell written ``<integer>.<zeros>`` (an integer written as a
    float, ``3.0``) to its integer part, in ``lengths``, except the one-digit ``d.0`` cells:
    returns their mask instead (they are the most common; the caller reads them as one-digit
    cells). ``None`` when a number cell has a point that is not of that form (no integer
    part, two points, a non-zero digit or another byte after the point).

    The usual forms, ``d.0`` and ``dd.0`` / ``-d.0``, are found by comparing bytes for all
    cells at once; only when the body holds other points are they located one by one."""
    short = (lengths == 3) & (chars[1] == _DOT) & (chars[2] == _ZERO)  # d.0
    # Every point is one of those cells' when the counts agree (each has one at least).
    points = np.count_nonzero(buf == _DOT) - np.count_nonzero(short)
    wide = np.empty(0, dtype=np.int64)
    if points:
        wide = np.flatnonzero((lengths == 4) & (chars[2] == _DOT))  # dd.0, -d.0
        wide = wide[chars.buf[chars.starts[wide] + 3] == _ZERO]
    if points != len(wide):
        starts = chars.starts
        dots = np.flatnonzero(buf == _DOT)
        cells = np.searchsorted(seps, dots)  # the separator after the point ends its cell
        numbers = cells % num_columns != text_column  # points in action words are text
        dots, cells = dots[numbers], cells[numbers]
        whole = dots - starts[cells]
        if not whole.all():
            return None  # ".5" and the like
        # (A cell with two points fails below: its first point is followed by the other.)
        fraction = starts[cells] + lengths[cells] - dots - 1
        for length in np.unique(fraction).tolist():
            if length:
                tails = _gather(buf, dots[fraction == length] + 1, length)
                if (tails != _ZERO).any():
                    return None
        lengths[cells] = whole
    lengths[wide] = 2
    return short


def parse_plain_rows(
    body: bytes,
    num_columns: int,
    text_column: int,
    text_codes: Mapping[bytes, int],
    null_texts: Collection[bytes],
) -> tuple[np.ndarray, dict[int, str]] | None:
    """Tokenize ``body`` (the data rows, header excluded) when it is plain exporter output.

    Returns the float64 ``(rows, num_columns)`` block (NaN where a cell is empty or one of
    ``null_texts``) whose ``text_column`` holds the code of its word in ``text_codes`` (NaN
    when the cell is empty or one of ``null_texts``), and a dict from row index to the text of
    every word that is not in ``text_codes``. Returns ``None`` when the body is not in the
    plain subset. ``num_columns`` is at least 2 (so that a blank line is a ragged row).
    """
    if not body or body[:1] == b"\n" or b'"' in body:
        return None
    # The last line's newline when it lacks one, then padding to read the first bytes of
    # any cell (a null text, a float) without going past the end.
    newline = b"" if body[-1:] == b"\n" else b"\n"
    size = len(body) + len(newline)
    pad = max(4, *(len(text) for text in null_texts))
    buf = np.frombuffer(body + newline + bytes(pad), dtype=np.uint8)
    newlines = buf == _NEWLINE
    seps = np.flatnonzero((buf == _COMMA) | newlines)
    rows, ragged = divmod(len(seps), num_columns)
    # Every row has num_columns cells when the row count equals the newline count and each
    # num_columns-th separator is a newline.
    row_ends = seps[num_columns - 1 :: num_columns]
    if ragged or np.count_nonzero(newlines) != rows or (buf[row_ends] != _NEWLINE).any():
        return None

    starts = np.empty_like(seps)
    starts[0] = 0
    np.add(seps[:-1], 1, out=starts[1:])
    # Cell lengths as bytes (numpy compares 8 times as many per step), modulo 256: every
    # byte is a separator or in one cell, so a total short of that means a longer cell.
    lengths = np.empty(len(seps), dtype=np.uint8)
    np.subtract(seps, starts, out=lengths, casting="unsafe")
    if lengths.sum(dtype=np.int64) != size - len(seps):
        return None
    returns = b"\r" in body
    if returns:  # CRLF line endings: the carriage return is not part of the last cell
        lengths[num_columns - 1 :: num_columns] -= buf[row_ends - 1] == _RETURN
        # Any other carriage return is in a cell, where it is not a digit, a point or a null
        # text, so the checks below decline the body (the action words are checked apart).
    text_starts = starts[text_column::num_columns].tolist()
    text_lengths = lengths[text_column::num_columns].tolist()
    lengths[text_column::num_columns] = 0  # numbers only below; the words are decoded apart
    chars = _CellBytes(buf, starts)
    missing = _null_cells(chars, lengths, null_texts)  # read as empty cells
    if b"." in body:
        short = _drop_zero_fractions(buf, seps, chars, lengths, num_columns, text_column)
        if short is None:
            return None
        single = (lengths == 1) | short  # cells read from their first byte
        longer = (lengths > 1) & ~short
    else:
        single, longer = lengths == 1, lengths > 1
    if missing is not None:
        longer &= ~missing
        if any(len(text) == 1 for text in null_texts):
            single &= ~missing
    digits = chars[0] - np.uint8(_ZERO)  # wraps around for bytes below '0'
    if ((digits > 9) & single).any():
        return None
    # The value of each one-digit cell, NaN elsewhere: a table lookup of the digit, or of a
    # code above 15 for the other cells (faster than selecting between float arrays).
    digits |= (~single).view(np.uint8) << np.uint8(4)
    values = _DIGIT_VALUES.take(digits)
    longer = np.flatnonzero(longer)
    if len(longer):
        longer_lengths = lengths[longer]
        for length in np.unique(longer_lengths).tolist():
            if length > MAX_DIGITS:
                return None
            cells = longer[longer_lengths == length]
            digits = _gather(buf, starts[cells], length) - np.uint8(_ZERO)
            negative = digits[:, 0] == _MINUS
            digits[negative, 0] = 0
            if (digits > 9).any():
                return None
            numbers = (digits @ _POW10[length - 1 :: -1]).astype(np.float64)
            np.negative(numbers, out=numbers, where=negative)  # -0 stays -0.0, as in pyarrow
            values[cells] = numbers

    values = values.reshape(rows, num_columns)
    codes = values[:, text_column]
    unknown: dict[int, str] = {}
    for row, (start, length) in enumerate(zip(text_starts, text_lengths, strict=True)):
        word = body[start : start + length]
        code = text_codes.get(word)
        if code is not None:
            codes[row] = code
        elif word not in null_texts:
            if returns and b"\r" in word:
                return None  # a line break for pyarrow
            unknown[row] = word.decode("utf-8", errors="replace")
    return values, unknown
