"""The numpy tokenizer of plain exporter rows agrees with the pyarrow path, bit for bit, on
every input it takes, in both dialects (this exporter's, and the older exporters' ``nan``
cells, float integers, CRLF lines and 402 columns); takes every file either exporter writes;
and declines the rest.

The property tests generate inside the fast path's subset most of the time and assert that
most examples reach the comparison; the inputs the tokenizer must decline have a strategy of
their own."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from game_data import LEGACY_LOGS
from splendor import log_reader
from splendor.columns import ACTION_COL, ACTION_TYPES, COL, COLUMNS, LEGACY_COLUMNS
from splendor.log_parsers import ParseError, arrow_block, tokenize_plain_body
from splendor.log_reader import read_game_log
from splendor.log_tokenizer import MAX_DIGITS
from splendor.simulate import simulate

NUM_COLUMNS = len(COLUMNS)
GAMES = Path(__file__).resolve().parents[1] / "data" / "games"
SAMPLE = sorted(GAMES.glob("*_games/*.csv"))
LEGACY_SAMPLE = sorted(LEGACY_LOGS.glob("*_games/*.csv"))
LAYOUTS = {"current": COLUMNS, "legacy": COLUMNS, "legacy-402": LEGACY_COLUMNS}


def _arrow(body: bytes, columns: list[str] = COLUMNS):
    """What the pyarrow path makes of the same body, or ``None`` when it refuses it."""
    try:
        return arrow_block(pa.py_buffer(body), columns)
    except ParseError:
        return None


def _assert_same(plain, arrow) -> None:
    """Same block bit for bit (NaN payloads and the sign of zeros included), same unknown
    action texts."""
    values, unknown = plain
    expected_values, expected_unknown = arrow
    assert values.dtype == np.float64 and values.shape == expected_values.shape
    assert np.array_equal(values.view(np.uint64), expected_values.view(np.uint64))
    assert unknown == expected_unknown


def _split(path: Path) -> tuple[list[str], bytes]:
    """The layout a file's header announces, and its body."""
    data = path.read_bytes()
    end = data.index(b"\n")
    header = data[:end].rstrip(b"\r").decode().split(",")
    return (COLUMNS if header == COLUMNS else LEGACY_COLUMNS), data[end + 1 :]


@pytest.fixture(scope="module")
def dialect_files(tmp_path_factory) -> dict[str, list[Path]]:
    """The same 3 self-play games written in each dialect, and legacy with LF lines."""
    root = tmp_path_factory.mktemp("dialects")
    written = {}
    for name, dialect, endings in [
        ("current", "current", None),
        ("legacy", "legacy", None),
        ("legacy-402", "legacy-402", None),
        ("legacy-lf", "legacy", "lf"),
        ("current-crlf", "current", "crlf"),
    ]:
        out = root / name
        simulate(3, seed=31, out=out, progress=False, dialect=dialect, line_endings=endings)
        written[name] = sorted(out.glob("*_games/*.csv"))
    return written


@pytest.mark.parametrize("path", SAMPLE[::3], ids=lambda p: f"{p.parent.name}/{p.name}")
def test_takes_exporter_files_and_agrees_with_pyarrow(path: Path) -> None:
    columns, body = _split(path)
    plain = tokenize_plain_body(body, columns)
    assert plain is not None, "an exporter-written file must take the fast path"
    _assert_same(plain, _arrow(body, columns))


@pytest.mark.parametrize("path", LEGACY_SAMPLE, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_takes_the_older_exporters_files_and_agrees_with_pyarrow(path: Path) -> None:
    columns, body = _split(path)
    assert b"\r\n" in body and b",nan," in body  # the fixtures are CRLF, with nan text
    plain = tokenize_plain_body(body, columns)
    assert plain is not None, "an older exporter's file must take the fast path"
    _assert_same(plain, _arrow(body, columns))


@pytest.mark.parametrize("name", ["current", "legacy", "legacy-402", "legacy-lf", "current-crlf"])
def test_takes_every_dialect_written_and_agrees_with_pyarrow(dialect_files, name) -> None:
    for path in dialect_files[name]:
        columns, body = _split(path)
        assert (columns is LEGACY_COLUMNS) == (name == "legacy-402")
        plain = tokenize_plain_body(body, columns)
        assert plain is not None, f"{path}: a {name} file must take the fast path"
        _assert_same(plain, _arrow(body, columns))


def _both_ways(monkeypatch, paths, base):
    fast = [read_game_log(p, blind_reserve_base=base) for p in paths]
    with monkeypatch.context() as m:
        m.setattr(log_reader, "tokenize_plain_body", lambda *args: None)
        slow = [read_game_log(p, blind_reserve_base=base) for p in paths]
    return fast, slow


@pytest.mark.parametrize("name", ["current", "legacy", "legacy-402", "fixtures"])
def test_read_game_log_gives_the_same_log_either_way(monkeypatch, dialect_files, name) -> None:
    paths = LEGACY_SAMPLE if name == "fixtures" else dialect_files[name]
    fast, slow = _both_ways(monkeypatch, paths, 12 if name == "current" else 11)
    for a, b in zip(fast, slow, strict=True):
        assert np.array_equal(a.values.view(np.uint64), b.values.view(np.uint64))
        assert np.array_equal(a.line_numbers, b.line_numbers)
        assert (a.rows_read, a.rejections, a.num_columns) == (
            b.rows_read,
            b.rejections,
            b.num_columns,
        )


def test_bad_rows_of_a_legacy_file_are_rejected_alike_either_way(monkeypatch, tmp_path) -> None:
    """A body the tokenizer takes but whose values are impossible: the same rejections."""
    columns, body = _split(LEGACY_SAMPLE[0])
    lines = body.split(b"\r\n")
    cells = lines[2].split(b",")
    cells[COL["gems_board_white"]] = b"9.0"  # more than the bank holds
    lines[2] = b",".join(cells)
    cells = lines[5].split(b",")
    cells[ACTION_COL] = b"take 1 token"
    lines[5] = b",".join(cells)
    path = tmp_path / "bad.csv"
    path.write_bytes(",".join(columns).encode() + b"\r\n" + b"\r\n".join(lines))
    assert tokenize_plain_body(b"\r\n".join(lines), columns) is not None
    (fast,), (slow,) = _both_ways(monkeypatch, [path], 11)
    assert [r.line for r in fast.rejections] == [4, 7]
    assert fast.rejections == slow.rejections
    assert np.array_equal(fast.values.view(np.uint64), slow.values.view(np.uint64))


def _row(n: int, first: bytes = b"1") -> bytes:
    """A row of ``n`` cells: ``first``, then ones."""
    return first + b",1" * (n - 1)


def _with_word(n: int, word: bytes) -> bytes:
    """A row of ``n`` ones but ``word`` in its action column."""
    cells = [b"1"] * n
    cells[ACTION_COL if n == NUM_COLUMNS else LEGACY_COLUMNS.index("action_type")] = word
    return b",".join(cells)


# Bodies outside the subset, as functions of the number of columns.
_OUTSIDE = {
    "empty": lambda n: b"",
    "blank": lambda n: b"\n",
    "blank-crlf": lambda n: b"\r\n",
    "quotes": lambda n: b'"1",' * (n - 1) + b"1\n",
    "lone-cr-at-row-end": lambda n: _row(n) + b"\r" + _row(n) + b"\n",  # a line break for pyarrow
    "lone-cr-in-row": lambda n: b"1,\r" + _row(n - 1) + b"\n",
    "extra": lambda n: _row(n + 1) + b"\n",  # a cell too many
    "short": lambda n: _row(n - 1) + b"\n",  # a cell too few
    "blank-line": lambda n: _row(n) + b"\n\n" + _row(n) + b"\n",
    "blank-line-crlf": lambda n: _row(n) + b"\r\n\r\n" + _row(n) + b"\r\n",
    "lone-cr-in-word": lambda n: _with_word(n, b"bu\rild") + b"\n",
    "decimal": lambda n: b"1.5," * (n - 1) + b"1\n",
    "decimal-two-digits": lambda n: _row(n, b"12.5") + b"\n",
    "decimal-negative": lambda n: _row(n, b"-1.5") + b"\n",
    "decimal-long": lambda n: _row(n, b"1.005") + b"\n",
    "other-null-case": lambda n: _row(n, b"Nan") + b"\n",
    "nan-like": lambda n: _row(n, b"nab") + b"\n",
    "no-integer-part": lambda n: _row(n, b".0") + b"\n",
    "two-points": lambda n: _row(n, b"1.0.0") + b"\n",
    "exponent": lambda n: _row(n, b"1e3") + b"\n",
    "nan-and-digit": lambda n: _row(n, b"nan5") + b"\n",
    "inf": lambda n: _row(n, b"inf") + b"\n",
    "plus": lambda n: b"+1," * (n - 1) + b"1\n",
    "19-digits": lambda n: _row(n, b"1" * (MAX_DIGITS + 1)) + b"\n",
    "19-digits-float": lambda n: _row(n, b"1" * (MAX_DIGITS + 1) + b".0") + b"\n",
    "256-digits": lambda n: _row(n, b"1" * 256) + b"\n",  # a length that wraps around a byte
}


@pytest.mark.parametrize("columns", [COLUMNS, LEGACY_COLUMNS], ids=["403", "402"])
@pytest.mark.parametrize("case", list(_OUTSIDE))
def test_declines_anything_outside_the_plain_subset(case: str, columns: list[str]) -> None:
    body = _OUTSIDE[case](len(columns))
    assert tokenize_plain_body(body, columns) is None


@pytest.mark.parametrize("columns", [COLUMNS, LEGACY_COLUMNS], ids=["403", "402"])
def test_the_same_rows_in_the_subset_are_taken(columns: list[str]) -> None:
    """The rows the cases above change, unchanged, are taken (so each case tests its change)."""
    n = len(columns)
    for body in [
        _row(n) + b"\n",
        _row(n) + b"\r\n" + _row(n) + b"\r\n",
        _row(n, b"1.0"),
        _with_word(n, b"build") + b"\r\n",
    ]:
        _assert_same(tokenize_plain_body(body, columns), _arrow(body, columns))


# --- properties -------------------------------------------------------------------------
#
# Bodies are drawn from the rows of a real game, each cell written the way one of the
# exporters might (or with a value of the subset put in its place), in one of the layouts,
# with LF or CRLF lines. Now and then one cell or line gets a change from outside the subset.

_BASE = read_game_log(SAMPLE[0]).values[:6]
_NULLS = [b"", b"nan", b"NaN", b"NAN"]
# Action words the tokenizer takes: known ones, null texts and unknown plain words.
_PLAIN_WORDS = st.one_of(
    st.sampled_from([w.encode() for w in ACTION_TYPES]),
    st.sampled_from([*_NULLS, b"Build", b"take 1 token", b" build", b"3.0", "é".encode()]),
    st.text("abcdefghijklmnopqrstuvwxyz 0123456789.-", max_size=15).map(str.encode),
)


def _number(value: int, style: str) -> bytes:
    """``value`` as an integer, or as a float the way the older exporters write it."""
    text = str(value)
    return (text + style).encode() if style != "int" else text.encode()


_STYLES = ["int", ".0", ".0", ".00", "."]
# Values of the subset put in place of a cell: any integer of up to 18 characters (also -0),
# in any style, and the null texts.
_SUBSET_CELLS = st.one_of(
    st.builds(_number, st.integers(1 - 10**17, 10**17 - 1), st.sampled_from(_STYLES)),
    st.builds(
        lambda style: b"-0" + (b"" if style == "int" else style.encode()), st.sampled_from(_STYLES)
    ),
    st.builds(lambda d: b"0" * d + b"7", st.integers(1, 3)),
    st.sampled_from(_NULLS),
)
# Changes that take a cell outside the subset (the tokenizer declines, pyarrow decides).
_OUTSIDE_CELLS = st.sampled_from(
    [
        b"+3",
        b"1e3",
        b"1.5",
        b"12.5",
        b"-1.5",
        b"1.005",
        b".5",
        b".0",
        b"-.0",
        b"1.0.0",
        b"1.01",
        b" 2",
        b"2 ",
        b"inf",
        b"nan5",
        b"Nan",
        b"nab",
        b"-",
        b"--1",
        b"x",
        b'"4"',
        "é".encode(),
        b"\x00",
        b"1" * 19,
        b"1\r2",
    ]
)


@st.composite
def _row_cells(draw, layout: str, missing: bytes, floats: set[int]) -> list[bytes]:
    """One base row's cells as an exporter of ``layout`` writes them, a few replaced by
    values of the subset."""
    values = _BASE[draw(st.integers(0, len(_BASE) - 1))]
    cells = []
    for j, value in enumerate(values.tolist()):
        if j == ACTION_COL:
            cells.append(b"" if value != value else ACTION_TYPES[int(value)].encode())
        elif value != value:
            cells.append(missing)
        else:
            cells.append(_number(int(value), ".0" if j in floats else "int"))
    for _ in range(draw(st.integers(0, 4))):
        j = draw(st.integers(0, NUM_COLUMNS - 1))
        cells[j] = draw(_PLAIN_WORDS if j == ACTION_COL else _SUBSET_CELLS)
    if layout == "legacy-402":
        del cells[COL["current_player"]]
    return cells


@st.composite
def _plain_bodies(draw, outside: bool | None = None) -> tuple[str, bytes]:
    """``(layout, body)``: a body in the subset, except with ``outside`` (always one change
    from outside) or, when ``None``, now and then (one body in 16)."""
    layout = draw(st.sampled_from(list(LAYOUTS)))
    missing = b"" if layout == "current" else draw(st.sampled_from(_NULLS))
    floats = set() if layout == "current" else set(draw(st.lists(st.integers(0, NUM_COLUMNS - 1))))
    rows = [draw(_row_cells(layout, missing, floats)) for _ in range(draw(st.integers(1, 4)))]
    endings = draw(st.sampled_from([b"\n", b"\r\n", b"mixed"]))
    ends = [
        draw(st.sampled_from([b"\n", b"\r\n"])) if endings == b"mixed" else endings for _ in rows
    ]
    if outside is None:
        outside = draw(st.sampled_from([False] * 15 + [True]))
    if outside:
        change = draw(st.sampled_from(["cell", "ragged", "blank", "lone-cr", "leading"]))
        row = draw(st.integers(0, len(rows) - 1))
        if change == "cell":
            j = draw(st.integers(0, len(rows[row]) - 1))
            action = LAYOUTS[layout].index("action_type")
            word = draw(st.sampled_from([b'"build"', b"bu\rild", b"take,3"]))
            rows[row][j] = draw(_OUTSIDE_CELLS) if j != action else word
        elif change == "ragged":
            j = draw(st.integers(0, len(rows[row]) - 1))
            if draw(st.booleans()):
                del rows[row][j]
            else:
                rows[row].insert(j, b"1")
        elif change == "blank":
            rows.insert(row, [])
            ends.insert(row, ends[row])
        elif change == "lone-cr":
            ends[row] = b"\r"
            if row == len(rows) - 1:  # at the very end a lone CR still ends the last line
                rows.append(rows[0])
                ends.append(b"\n")
        else:
            rows.insert(0, [])
            ends.insert(0, b"\n")
    body = b"".join(b",".join(cells) + end for cells, end in zip(rows, ends, strict=True))
    if not outside and draw(st.integers(0, 3)) == 0:  # the last line without its line end
        body = body[: -len(ends[-1])]
    return layout, body


def _check_against_pyarrow(layout: str, body: bytes):
    """The tokenizer's block (``None`` when it declines), checked against pyarrow's."""
    columns = LAYOUTS[layout]
    plain = tokenize_plain_body(body, columns)
    if plain is not None:
        arrow = _arrow(body, columns)
        assert arrow is not None, "the tokenizer took a body pyarrow refuses"
        _assert_same(plain, arrow)
    return plain


def test_agrees_with_pyarrow_on_bodies_of_the_subset() -> None:
    """Most examples reach the comparison (the tokenizer takes them); the few that get a
    change from outside the subset must be declined or agree."""
    reached = []

    @settings(
        max_examples=300,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        database=None,
    )
    @given(_plain_bodies())
    def check(case):
        reached.append(_check_against_pyarrow(*case) is not None)

    check()
    share = sum(reached) / len(reached)
    assert share > 0.8, f"only {share:.0%} of {len(reached)} examples reached the comparison"


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(_plain_bodies(outside=False))
def test_takes_every_body_of_the_subset(case) -> None:
    assert _check_against_pyarrow(*case) is not None, "a body of the subset was declined"


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(_plain_bodies(outside=True))
def test_declines_bodies_with_a_change_from_outside_the_subset(case) -> None:
    layout, body = case
    assert tokenize_plain_body(body, LAYOUTS[layout]) is None


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, len(_BASE) - 1),
            st.integers(0, NUM_COLUMNS - 1),
            st.integers(1 - 10**17, 10**17 - 1),  # up to 18 characters
            st.sampled_from(_STYLES),
        ),
        max_size=6,
    )
)
def test_takes_plain_numbers_anywhere(edits) -> None:
    rows = [row.split(b",") for row in _split(SAMPLE[0])[1].splitlines()[: len(_BASE)]]
    for row, column, number, style in edits:
        if column != ACTION_COL:
            rows[row][column] = _number(number, style)
    body = b"\n".join(b",".join(cells) for cells in rows) + b"\n"
    plain = tokenize_plain_body(body)
    assert plain is not None
    _assert_same(plain, _arrow(body))
