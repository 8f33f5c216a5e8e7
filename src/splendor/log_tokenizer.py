"""A numpy tokenizer for the data rows our exporter writes: a fast path in front of pyarrow.

Game logs written by :mod:`splendor.log_writer` use a tiny subset of CSV: every line ends with
``\\n``, cells are separated by ``,``, a number is written as plain decimal digits (``-`` in
front when negative), a missing value as an empty cell, and the one text column
(``action_type``) holds short unquoted words.
For that subset, tokenizing the whole body at once with numpy (find the separators, then
convert all one-digit cells in one step and the few longer ones by length) is several times
faster than a general CSV parser, which pays per column and per cell for options it does not
need here (a game log has 403 columns and only ~80 rows).

:func:`parse_plain_rows` either returns exactly what the pyarrow path of
:mod:`splendor.log_reader` gives for the same bytes, or ``None`` when the body uses anything
outside the subset (quotes, carriage returns, blank lines, ``+``, decimals, ``nan``, ragged
rows, cells longer than 18 characters...). ``None`` is not an error: the caller then parses
with pyarrow, which accepts everything else and names what is wrong. A test checks both paths
agree on generated and mutated files.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

import numpy as np

#: Longest cell converted here (sign included): 18 digits always fit an int64, and convert to the
#: float64 nearest to the decimal value (as pyarrow's parser rounds).
MAX_DIGITS = 18

_COMMA, _NEWLINE, _ZERO = ord(","), ord("\n"), ord("0")
_MINUS = np.uint8(ord("-") - _ZERO + 256)  # "-" after subtracting "0" from a uint8
_POW10 = 10 ** np.arange(MAX_DIGITS, dtype=np.int64)


def parse_plain_rows(
    body: bytes,
    num_columns: int,
    text_column: int,
    text_codes: Mapping[bytes, int],
    null_texts: Collection[bytes],
) -> tuple[np.ndarray, dict[int, str]] | None:
    """Tokenize ``body`` (the data rows, header excluded) when it is plain exporter output.

    Returns the float64 ``(rows, num_columns)`` block (NaN where a cell is empty) whose
    ``text_column`` holds the code of its word in ``text_codes`` (NaN when the cell is empty
    or one of ``null_texts``), and a dict from row index to the text of every word that is
    not in ``text_codes``. Returns ``None`` when the body is not in the plain subset.
    """
    if not body or body[:1] == b"\n" or b'"' in body or b"\r" in body or b"\n\n" in body:
        return None
    if body[-1:] != b"\n":  # the last line may lack its newline
        body += b"\n"
    buf = np.frombuffer(body, dtype=np.uint8)
    seps = np.flatnonzero((buf == _COMMA) | (buf == _NEWLINE))
    rows, ragged = divmod(len(seps), num_columns)
    # Every row has num_columns cells when the row count equals the newline count and each
    # num_columns-th separator is a newline.
    if (
        ragged
        or body.count(b"\n") != rows
        or (buf[seps[num_columns - 1 :: num_columns]] != _NEWLINE).any()
    ):
        return None

    starts = np.empty_like(seps)
    starts[0] = 0
    starts[1:] = seps[:-1] + 1
    lengths = seps - starts
    text_starts = starts[text_column::num_columns].tolist()
    text_lengths = lengths[text_column::num_columns].tolist()
    lengths[text_column::num_columns] = 0  # numbers only below; the words are decoded apart

    values = np.full(len(seps), np.nan)
    one = np.flatnonzero(lengths == 1)
    digits = buf[starts[one]] - np.uint8(_ZERO)  # wraps around for bytes below '0'
    if (digits > 9).any():
        return None
    values[one] = digits
    longer = np.flatnonzero(lengths > 1)
    if len(longer):
        longer_lengths = lengths[longer]
        for length in np.unique(longer_lengths).tolist():
            if length > MAX_DIGITS:
                return None
            cells = longer[longer_lengths == length]
            digits = buf[starts[cells, None] + np.arange(length)] - np.uint8(_ZERO)
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
            unknown[row] = word.decode("utf-8", errors="replace")
    return values, unknown
