"""The game-log reader: legacy quirks, precise rejections, file-level errors, sources."""

from __future__ import annotations

import re
from pathlib import Path

import fsspec
import numpy as np
import pytest

from game_data import LEGACY_LOGS
from splendor.columns import (
    ACTION_COL,
    BANK,
    CARD_RESERVATION_COL,
    COL,
    COLUMNS,
    LEGACY_COLUMNS,
    PLAYER_GEMS,
    PLAYER_POSITION,
    TAKE3_COLS,
)
from splendor.errors import GameLogError
from splendor.log_reader import GameLog, read_game_log
from splendor.row_checks import validate_rows

LEGACY = LEGACY_LOGS
SHAPES = {
    "2_games/900000.csv": 70,
    "2_games/900003.csv": 68,
    "3_games/900001.csv": 93,
    "3_games/900004.csv": 87,
    "4_games/900002.csv": 124,
    "4_games/900005.csv": 128,
}
SMALL = LEGACY / "2_games" / "900000.csv"


def _lines(path: Path = SMALL) -> list[str]:
    return path.read_text().splitlines()


def _set_cell(lines: list[str], line: int, column: str, text: str) -> list[str]:
    """Copy of ``lines`` with the cell of ``column`` on 1-based ``line`` replaced."""
    out = list(lines)
    cells = out[line - 1].split(",")
    cells[COLUMNS.index(column)] = text
    out[line - 1] = ",".join(cells)
    return out


def _write(tmp_path: Path, lines: list[str], name: str = "game.csv", end: str = "\n") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + end)
    return path


@pytest.fixture(scope="module")
def small() -> GameLog:
    return read_game_log(SMALL, blind_reserve_base=11)


# --- legacy fixtures -----------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_legacy_fixtures_read_without_rejections(name):
    log = read_game_log(LEGACY / name, blind_reserve_base=11)
    n = SHAPES[name]
    assert log.rejections == []
    assert log.values.shape == (n, 403) and log.values.dtype == np.float64
    assert log.rows_read == n and log.num_columns == 403
    assert log.line_numbers.dtype == np.int64
    np.testing.assert_array_equal(log.line_numbers, np.arange(2, n + 2))
    assert log.path == str(LEGACY / name)
    assert set(np.unique(log.values[:, ACTION_COL])) <= {0.0, 1.0, 2.0, 3.0}
    players = int(name[0])
    assert (log.values[:, COL["num_players"]] == players).all()
    assert (log.values[:, COL["game_id"]] == int(name[8:14])).all()
    # slots beyond the player count are entirely missing
    assert np.isnan(log.values[:, PLAYER_POSITION[players:]]).all()


def test_first_row_values_by_hand(small):
    row = small.values[0]
    assert row[COL["game_id"]] == 900000
    assert row[COL["num_players"]] == 2 and row[COL["turn_number"]] == 1
    assert row[COL["current_player"]] == 0
    np.testing.assert_array_equal(row[BANK], [4, 4, 4, 4, 4, 5])
    # card0 is "0,1,0,1,3,1,0,0,1,0,0,0": a level-1 blue card costing 1B 3G 1R
    card0 = [row[COL[f"card0_{f}"]] for f in ("vp", "level")]
    assert card0 == [0, 1]
    costs = [row[COL[f"card0_cost_{c}"]] for c in ("white", "blue", "green", "red", "black")]
    assert costs == [0, 1, 3, 1, 0]
    assert row[COL["card0_bonus_blue"]] == 1
    np.testing.assert_array_equal(row[PLAYER_GEMS[0]], [0] * 6)
    assert np.isnan(row[COL["player0_reserved0_vp"]])  # "nan" text -> missing
    assert np.isnan(row[PLAYER_GEMS[2]]).all()
    assert row[ACTION_COL] == 3  # take 3 tokens
    np.testing.assert_array_equal(row[TAKE3_COLS], [1, 1, 1, 0, 0])
    assert np.isnan(row[COL["card_selection"]]) and np.isnan(row[CARD_RESERVATION_COL])
    assert row[COL["noble_selection"]] == -1
    assert (row[[COL[f"gems_removed_{c}"] for c in ("white", "gold")]] == 0).all()


def test_visible_reservation_is_not_shifted():
    # line 83 of 900005 reserves visible card 3 (the only reserves in the fixtures are visible)
    log = read_game_log(LEGACY / "4_games" / "900005.csv", blind_reserve_base=11)
    reserve = np.flatnonzero(log.values[:, ACTION_COL] == 1)
    assert log.line_numbers[reserve].tolist() == [83]
    assert log.values[reserve[0], CARD_RESERVATION_COL] == 3


@pytest.mark.parametrize(
    ("written", "base", "expected"),
    [
        (11, 11, 12),
        (12, 11, 13),
        (13, 11, 14),
        (10, 11, 10),
        (12, 12, 12),
        (14, 12, 14),
        (11, 12, 11),
    ],
)
def test_blind_reserve_normalised_to_base_12(tmp_path, written, base, expected):
    # The fixtures hold no blind reserve: make the visible reserve on line 83 a blind one.
    lines = _set_cell(
        _lines(LEGACY / "4_games" / "900005.csv"), 83, "card_reservation", str(written)
    )
    log = read_game_log(_write(tmp_path, lines), blind_reserve_base=base)
    assert log.rejections == []
    assert log.values[81, CARD_RESERVATION_COL] == expected
    others = np.delete(log.values[:, CARD_RESERVATION_COL], 81)
    assert np.isnan(others).all()


def test_402_column_file_gets_current_player_from_player0_position(tmp_path, small):
    drop = COLUMNS.index("current_player")
    lines = [",".join(c for j, c in enumerate(line.split(",")) if j != drop) for line in _lines()]
    assert lines[0].split(",") == LEGACY_COLUMNS
    log = read_game_log(_write(tmp_path, lines), blind_reserve_base=11)
    assert log.num_columns == 402 and log.rejections == []
    np.testing.assert_array_equal(log.values, small.values)
    np.testing.assert_array_equal(log.line_numbers, small.line_numbers)


def test_floats_empty_cells_crlf_and_blank_lines(tmp_path, small):
    lines = _lines()
    body = [re.sub(r"(?<=,)(\d+)(?=,|$)", r"\1.0", line).replace("nan", "") for line in lines[1:]]
    assert "2.0" in body[0] and ",," in body[0]
    lines = [lines[0]] + body[:10] + [""] + body[10:]  # a blank line after line 11
    path = tmp_path / "crlf.csv"
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode())
    log = read_game_log(path, blind_reserve_base=11)
    assert log.rejections == [] and log.rows_read == 70
    np.testing.assert_array_equal(log.values, small.values)
    expected = np.concatenate([np.arange(2, 12), np.arange(13, 73)])
    np.testing.assert_array_equal(log.line_numbers, expected)


# --- bad rows ------------------------------------------------------------------------------


def _corruptions() -> dict[str, tuple[list[str], int, str | None, str]]:
    """name -> (lines of the corrupted file, bad line, column, reason pattern)."""
    lines = _lines()
    last = len(lines)
    truncated = list(lines)
    truncated[-1] = truncated[-1][: len(truncated[-1]) // 2]
    n_cells = truncated[-1].count(",") + 1
    too_many = list(lines)
    too_many[6] += ",0"
    return {
        "non_numeric": (
            _set_cell(lines, 5, "gems_board_red", "x"),
            5,
            "gems_board_red",
            r"not a number: 'x'",
        ),
        "too_many": (too_many, 7, None, r"too many cells: expected 403, found 404"),
        "truncated_last_line": (
            truncated,
            last,
            COLUMNS[n_cells],
            rf"too few cells: expected 403, found {n_cells}",
        ),
        "unknown_action": (
            _set_cell(lines, 9, "action_type", "steal"),
            9,
            "action_type",
            r"unknown action type 'steal'",
        ),
        "negative_count": (
            _set_cell(lines, 12, "player1_gems_green", "-1"),
            12,
            "player1_gems_green",
            r"negative value \(-1\)",
        ),
    }


CORRUPTIONS = _corruptions()


@pytest.mark.parametrize("kind", sorted(CORRUPTIONS))
def test_bad_row_rejected_others_kept(tmp_path, small, kind):
    lines, line, column, reason = CORRUPTIONS[kind]
    end = "" if kind == "truncated_last_line" else "\n"
    path = _write(tmp_path, lines, end=end)
    log = read_game_log(path, blind_reserve_base=11)
    assert len(log.rejections) == 1
    rej = log.rejections[0]
    assert (rej.file, rej.line, rej.column, rej.rows) == (str(path), line, column, 1)
    assert re.fullmatch(reason, rej.reason), rej.reason
    assert log.rows_read == 70 and len(log.values) == 69
    keep = small.line_numbers != line
    np.testing.assert_array_equal(log.line_numbers, small.line_numbers[keep])
    np.testing.assert_array_equal(log.values, small.values[keep])


@pytest.mark.parametrize("kind", sorted(CORRUPTIONS))
def test_bad_row_raises_when_asked(tmp_path, kind):
    lines, line, column, _ = CORRUPTIONS[kind]
    path = _write(tmp_path, lines)
    with pytest.raises(GameLogError) as info:
        read_game_log(path, blind_reserve_base=11, on_bad_row="raise")
    message = str(info.value)
    assert message.startswith(f"{path}, line {line}")
    if column is not None:
        assert f"column {column!r}" in message
    assert info.value.rejection.line == line


def test_several_bad_rows_after_a_blank_line(tmp_path, small):
    lines = _set_cell(_lines(), 20, "deck_level2_remaining", "")  # required value missing
    lines = _set_cell(lines, 30, "turn_number", "abc")
    lines.insert(3, "")  # every later row moves one line down
    log = read_game_log(_write(tmp_path, lines), blind_reserve_base=11)
    found = [(r.line, r.column) for r in log.rejections]
    assert found == [(21, "deck_level2_remaining"), (31, "turn_number")]
    assert "must always be present" in log.rejections[0].reason
    assert log.rows_read == 70 and len(log.values) == 68
    keep = ~np.isin(small.line_numbers, [20, 30])
    np.testing.assert_array_equal(log.values, small.values[keep])
    with pytest.raises(GameLogError, match="line 21, column 'deck_level2_remaining'"):
        read_game_log(_write(tmp_path, lines), blind_reserve_base=11, on_bad_row="raise")


# --- value checks --------------------------------------------------------------------------


def _bad(values: np.ndarray, row: int, column: str, value: float) -> np.ndarray:
    out = values.copy()
    out[row, COL[column]] = value
    return out


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        ("gems_board_white", 5, "more than its starting size"),
        ("gems_board_gold", 6, "more than its starting size"),
        ("player0_gems_red", 8, "more than exist"),
        ("player1_gems_gold", 6, "more than exist"),
        ("num_players", 5, "not in [2, 3, 4]"),
        ("current_player", 2, "out of range"),
        ("player1_position", 3, "out of range"),
        ("card4_level", 4, "not in 1..3"),
        ("card7_bonus_red", 2, "not one-hot"),
        ("card7_bonus_white", 1, "one 1 expected"),
        ("player0_reserved1_vp", 1, "earlier slot is empty"),
        ("game_id", 900001, "differs from the file's game_id 900000"),
        ("turn_number", np.nan, "must always be present"),
        ("player1_reduction_black", np.nan, "missing value for a player"),
        ("deck_level3_remaining", 2.5, "not a finite integer"),
        ("card2_cost_red", np.inf, "not a finite integer"),
        ("deck_level1_remaining", -3, "negative value (-3)"),
    ],
)
def test_validate_rows_finds_impossible_values(small, column, value, reason):
    assert validate_rows(small.values) == []
    bad = validate_rows(_bad(small.values, 0, column, value))  # row 0: nobody holds tokens
    assert len(bad) == 1
    row, col, why = bad[0]
    assert (row, col) == (0, column) and reason in why, why


def test_validate_rows_token_total_and_leftmost_column(small):
    values = small.values.copy()
    values[3, PLAYER_GEMS[0]] = [3, 3, 3, 2, 0, 0]  # 11 tokens
    values[4, COL["player1_vp"]] = -1
    values[4, COL["gems_board_blue"]] = 9  # left of player1_vp: reported first
    assert validate_rows(values) == [
        (3, "player0_gems_white", "player holds more than 10 tokens"),
        (4, "gems_board_blue", "bank holds 9, more than its starting size"),
    ]


def test_validate_rows_num_players_setting(small):
    assert validate_rows(small.values, num_players_ok=(2,)) == []
    bad = validate_rows(small.values[:2], num_players_ok=(3, 4))
    assert [(r, c) for r, c, _ in bad] == [(0, "num_players"), (1, "num_players")]


def test_validate_rows_rejects_a_wrong_shape():
    with pytest.raises(ValueError, match="403"):
        validate_rows(np.zeros((2, 402)))


# --- file-level problems -------------------------------------------------------------------


def _file_error(source, **kwargs) -> GameLogError:
    with pytest.raises(GameLogError) as info:
        read_game_log(source, **kwargs)
    assert info.value.rejection.file_level
    return info.value


def test_empty_file(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    err = _file_error(path)
    assert err.rejection.reason == "empty file: no header" and err.rejection.rows == 0
    assert str(err).startswith(str(path))


def test_header_only_file_has_no_rows(tmp_path):
    for columns in (COLUMNS, LEGACY_COLUMNS):
        log = read_game_log(_write(tmp_path, [",".join(columns)]))
        assert log.values.shape == (0, 403) and log.line_numbers.shape == (0,)
        assert log.rows_read == 0 and log.rejections == [] and log.num_columns == len(columns)


@pytest.mark.parametrize(
    ("change", "column", "reason"),
    [
        (lambda h: h[:7] + ["gems_bord_red"] + h[8:], "gems_bord_red", "expected 'gems_board_red'"),
        (lambda h: h[:-1], "gems_removed_gold", "missing"),
        (lambda h: h + ["comment"], "comment", "unexpected column 'comment'"),
        (
            lambda h: [c for c in h if c != "player2_vp"],
            "player2_gems_white",
            "expected 'player2_vp'",
        ),
    ],
)
def test_wrong_header(tmp_path, change, column, reason):
    lines = _lines()
    lines[0] = ",".join(change(lines[0].split(",")))
    err = _file_error(_write(tmp_path, lines))
    assert err.rejection.column == column and reason in err.rejection.reason
    assert err.rejection.rows == 70


def test_non_utf8_and_binary(tmp_path):
    data = SMALL.read_bytes()
    path = tmp_path / "latin1.csv"
    # in a data row: that row only, named by line and column
    path.write_bytes(data.replace(b"take 3 tokens", b"take 3 tok\xe9ns", 1))
    log = read_game_log(path)
    line = data[: data.index(b"take 3 tokens")].count(b"\n") + 1
    (rejection,) = log.rejections
    assert (rejection.line, rejection.column) == (line, "action_type")
    at = data.index(b"take 3 tokens")
    offset = at - data.rfind(b"\n", 0, at) - 1 + len("take 3 tok")
    assert rejection.reason == f"not UTF-8 text (byte 0xe9 at offset {offset} of the line)"
    assert log.rows_read == 70 and len(log) == 69 and line not in log.line_numbers
    good = read_game_log(SMALL)
    np.testing.assert_array_equal(log.values, good.values[good.line_numbers != line])
    # in the header: the whole file
    path.write_bytes(data.replace(b"game_id", b"game_\xefd", 1))
    err = _file_error(path)
    assert "not UTF-8 text (header" in err.rejection.reason and err.rejection.rows == 70
    path.write_bytes(bytes(range(256)) * 4)
    assert "binary" in _file_error(path).rejection.reason


def test_directory_and_missing_file(tmp_path):
    assert "not a regular file" in _file_error(tmp_path).rejection.reason
    missing = tmp_path / "nope.csv"
    err = _file_error(missing)
    assert err.rejection.file == str(missing) and "unreadable" in err.rejection.reason


# --- sources -------------------------------------------------------------------------------


def test_bytes_source_with_label(small):
    log = read_game_log(SMALL.read_bytes(), blind_reserve_base=11, label="in-memory game")
    assert log.path == "in-memory game"
    np.testing.assert_array_equal(log.values, small.values)
    lines = _set_cell(_lines(), 4, "gems_board_white", "?")
    data = ("\n".join(lines) + "\n").encode()
    with pytest.raises(GameLogError, match=r"^in-memory game, line 4, column 'gems_board_white'"):
        read_game_log(data, on_bad_row="raise", label="in-memory game")
    assert read_game_log(data).rejections[0].file == "<bytes>"


def test_fsspec_sources(tmp_path, small):
    url = "memory://h2-reader-test/2_games/900000.csv"
    with fsspec.open(url, "wb") as f:
        f.write(SMALL.read_bytes())
    try:
        log = read_game_log(url, blind_reserve_base=11)
        assert log.path == url
        np.testing.assert_array_equal(log.values, small.values)
        assert "unreadable" in _file_error("memory://h2-reader-test/nope.csv").rejection.reason
        assert (
            "not a regular file" in _file_error("memory://h2-reader-test/2_games").rejection.reason
        )
    finally:
        fsspec.filesystem("memory").rm("/h2-reader-test", recursive=True)
    local = f"file://{SMALL}"
    np.testing.assert_array_equal(read_game_log(local, blind_reserve_base=11).values, small.values)


def test_bad_settings():
    with pytest.raises(ValueError, match="on_bad_row"):
        read_game_log(SMALL, on_bad_row="skip")
    with pytest.raises(ValueError, match="blind_reserve_base"):
        read_game_log(SMALL, blind_reserve_base=11.0)


def test_too_large_values_and_carriage_returns_are_rejected_rows(tmp_path):
    """Values that would overflow the compact int16 outputs, and a carriage return inside a
    row (pyarrow reads it as a line break), cost their row only."""
    lines = _lines()
    cells = lines[3].split(",")
    cells[COLUMNS.index("card0_vp")] = "40000"
    lines[3] = ",".join(cells)
    cells = lines[5].split(",")
    cells[COLUMNS.index("gems_board_red")] = "4\r2"
    lines[5] = ",".join(cells)
    cells = lines[6].split(",")
    cells[COLUMNS.index("game_id")] = "1e300"
    lines[6] = ",".join(cells)
    log = read_game_log(_write(tmp_path, lines))
    got = [(r.line, r.column, r.reason) for r in log.rejections]
    assert got == [
        (4, "card0_vp", "value 40000 too large (above 32767)"),
        (
            6,
            "gems_board_red",
            "carriage return inside the row: a line break in the middle of a cell",
        ),
        (7, "game_id", "game_id 1e+300 too large (above 2**53)"),
    ]
    assert log.rows_read == 70 and len(log) == 67
    lines[0] = lines[0].replace("num_players", "num\rplayers")
    err = _file_error(_write(tmp_path, lines))
    assert "header is not a CSV row" in err.rejection.reason and err.rejection.rows == 70


# --- the whole-block fast path of validate_rows ----------------------------------------------

_PROBE_VALUES = (np.nan, -np.inf, np.inf, 2.5, 32768, 2**53 + 2, *range(-2, 12))


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_fast_path_taken_on_valid_logs(name):
    from splendor.row_checks import _all_rows_valid

    values = read_game_log(LEGACY / name, blind_reserve_base=11).values
    assert _all_rows_valid(values, (2, 3, 4))
    assert not _all_rows_valid(values, (5,))  # a player count not allowed: look closer


def test_fast_path_never_hides_a_problem(small):
    """Random mutations of a valid block: whenever the whole-block test passes, the detailed
    checks find nothing, and validate_rows always equals the detailed checks."""
    from splendor.row_checks import _all_rows_valid, _detailed_problems

    rng = np.random.default_rng(11)
    base = small.values[::10].copy()  # 7 rows across the game
    passed = failed = 0
    for _ in range(1500):
        values = base.copy()
        for _ in range(rng.integers(1, 4)):
            row, col = rng.integers(len(values)), rng.integers(len(COLUMNS))
            values[row, col] = rng.choice(_PROBE_VALUES)
        if rng.random() < 0.2:  # a whole card or a whole player slot missing
            block = rng.choice([COL["card3_vp"], COL["player0_reserved0_vp"], COL["player1_vp"]])
            values[rng.integers(len(values)), block : block + 12] = np.nan
        detailed = _detailed_problems(values, (2, 3, 4))
        with np.errstate(invalid="ignore"):
            fast_ok = _all_rows_valid(values, (2, 3, 4))
        if fast_ok:
            passed += 1
            assert detailed == [], detailed
        else:
            failed += 1
        assert validate_rows(values) == detailed
    assert passed > 50 and failed > 500  # both outcomes were exercised


def test_nul_byte_in_a_data_row_costs_that_row_only(tmp_path):
    lines = _lines()
    path = _write(tmp_path, _set_cell(lines, 5, "deck_level1_remaining", "1\x002"))
    log = read_game_log(path, blind_reserve_base=11)
    (rejection,) = log.rejections
    assert rejection.line == 5 and log.rows_read == 70 and len(log) == 69


def test_blank_first_line_is_the_header_and_every_later_line_counts(tmp_path):
    path = _write(tmp_path, ["", *_lines()])  # the real header became a data line
    err = _file_error(path)
    assert err.rejection.rows == 71 and "header has 0 columns" in err.rejection.reason
