"""The numpy tokenizer of plain exporter rows agrees with the pyarrow path on every input it
takes, takes every file our exporter writes, and declines the rest."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from splendor import log_reader
from splendor.columns import ACTION_COL, ACTION_TYPES, COLUMNS
from splendor.log_reader import tokenize_plain_body
from splendor.log_tokenizer import MAX_DIGITS

NUM_COLUMNS = len(COLUMNS)
GAMES = Path(__file__).resolve().parents[1] / "data" / "games"
SAMPLE = sorted(GAMES.glob("*_games/*.csv"))


def _arrow(body: bytes):
    """What the pyarrow path makes of the same body, or ``None`` when it refuses it."""
    try:
        return log_reader._arrow_block(pa.py_buffer(body), COLUMNS)
    except log_reader._ParseError:
        return None


def _assert_same(plain, arrow) -> None:
    values, unknown = plain
    expected_values, expected_unknown = arrow
    assert values.dtype == np.float64 and values.shape == expected_values.shape
    assert np.array_equal(values, expected_values, equal_nan=True)
    both = ~np.isnan(values)
    assert np.array_equal(np.signbit(values[both]), np.signbit(expected_values[both]))  # -0.0
    assert unknown == expected_unknown


def _body(path: Path) -> bytes:
    data = path.read_bytes()
    return data[data.index(b"\n") + 1 :]


@pytest.mark.parametrize("path", SAMPLE[::3], ids=lambda p: f"{p.parent.name}/{p.name}")
def test_takes_exporter_files_and_agrees_with_pyarrow(path: Path) -> None:
    body = _body(path)
    plain = tokenize_plain_body(body)
    assert plain is not None, "an exporter-written file must take the fast path"
    _assert_same(plain, _arrow(body))


def test_read_game_log_gives_the_same_log_either_way(monkeypatch) -> None:
    fast = [log_reader.read_game_log(p) for p in SAMPLE[:6]]
    monkeypatch.setattr(log_reader, "tokenize_plain_body", lambda body: None)
    slow = [log_reader.read_game_log(p) for p in SAMPLE[:6]]
    for a, b in zip(fast, slow, strict=True):
        assert np.array_equal(a.values, b.values, equal_nan=True)
        assert np.array_equal(a.line_numbers, b.line_numbers)
        assert (a.rows_read, a.rejections) == (b.rows_read, b.rejections)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"\n",
        b'"1",' * (NUM_COLUMNS - 1) + b"1\n",
        b"1," * (NUM_COLUMNS - 1) + b"1\r\n",
        b"1," * NUM_COLUMNS + b"1\n",  # a cell too many
        b"1," * (NUM_COLUMNS - 2) + b"1\n",  # a cell too few
        b"1," * (NUM_COLUMNS - 1) + b"1\n\n" + b"1," * (NUM_COLUMNS - 1) + b"1\n",
        b"1.5," * (NUM_COLUMNS - 1) + b"1\n",
        b"nan," * (NUM_COLUMNS - 1) + b"1\n",
        b"+1," * (NUM_COLUMNS - 1) + b"1\n",
        b"1" * (MAX_DIGITS + 1) + b",1" * (NUM_COLUMNS - 1) + b"\n",
    ],
    ids=[
        "empty",
        "blank",
        "quotes",
        "crlf",
        "extra",
        "short",
        "blank-line",
        "decimal",
        "nan",
        "plus",
        "19-digits",
    ],
)
def test_declines_anything_outside_the_plain_subset(body: bytes) -> None:
    assert tokenize_plain_body(body) is None


# --- property: on mutated real rows, the tokenizer either declines or agrees with pyarrow ---

_BASE_ROWS = _body(SAMPLE[0]).splitlines()[:4]

_CELLS = st.one_of(
    st.sampled_from(
        [
            "",
            "0",
            "7",
            "10",
            "-1",
            "-0",
            "007",
            "-",
            "--1",
            "+3",
            "1.0",
            "1e3",
            " 2",
            "2 ",
            "nan",
            "NaN",
            "inf",
            "x",
            '"4"',
            "é",
            "\x00",
        ]
    ),
    st.integers(-(10**20), 10**20).map(str),
    st.text("0123456789-", max_size=22),
)
_WORDS = st.one_of(
    st.sampled_from([*ACTION_TYPES, "", "nan", "NAN", "Build", "take 1 token", " build", "é"]),
    st.text("abcdefghijklmnopqrstuvwxyz 0123456789", max_size=15),
)


@st.composite
def _bodies(draw) -> bytes:
    rows = [row.split(b",") for row in draw(st.lists(st.sampled_from(_BASE_ROWS), max_size=4))]
    for cells in rows:
        for _ in range(draw(st.integers(0, 4))):
            column = draw(st.integers(0, NUM_COLUMNS - 1))
            text = draw(_WORDS if column == ACTION_COL else _CELLS)
            cells[column] = text.encode()
        if draw(st.integers(0, 9)) == 0:  # now and then a ragged row
            del cells[draw(st.integers(0, len(cells) - 1))]
    lines = [b",".join(cells) for cells in rows]
    end = draw(st.sampled_from([b"\n", b"\n", b"\n", b""]))
    return b"\n".join(lines) + (end if lines else b"")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_bodies())
def test_agrees_with_pyarrow_whenever_it_takes_a_body(body: bytes) -> None:
    plain = tokenize_plain_body(body)
    if plain is None:
        return
    arrow = _arrow(body)
    assert arrow is not None, "the tokenizer took a body pyarrow refuses"
    _assert_same(plain, arrow)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, len(_BASE_ROWS) - 1),
            st.integers(0, NUM_COLUMNS - 1),
            st.integers(1 - 10**17, 10**17 - 1),  # up to 18 characters
        ),
        max_size=6,
    )
)
def test_takes_plain_numbers_anywhere(edits) -> None:
    rows = [row.split(b",") for row in _BASE_ROWS]
    for row, column, number in edits:
        if column != ACTION_COL:
            rows[row][column] = str(number).encode()
    body = b"\n".join(b",".join(cells) for cells in rows) + b"\n"
    plain = tokenize_plain_body(body)
    assert plain is not None
    _assert_same(plain, _arrow(body))
