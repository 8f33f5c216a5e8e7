"""The row checks are declared once (``splendor.row_checks.RULES``): the whole-block test
and the detailed messages both come from that declaration.

For every rule, a valid block changed to break that rule alone (one cell, or one card or
player's cells, of row 0) fails the whole-block test AND gets that rule's message on that
row; every rule of ``RULES`` has such a case. The tables of the whole-block test are checked
against the rules' own bounds, player count by player count.
"""

from __future__ import annotations

import numpy as np
import pytest

from game_data import LEGACY_LOGS
from splendor import row_checks as rc
from splendor.columns import COL
from splendor.limits import PLAYER_COUNTS, TOKENS_PER_COLOUR
from splendor.log_reader import read_game_log

BLOCK = read_game_log(LEGACY_LOGS / "2_games" / "900000.csv", blind_reserve_base=11).values[:6]
GAME_ID = BLOCK[0, COL["game_id"]]


def _gems(white=0, blue=0, green=0, red=0, black=0, gold=0):
    return {
        f"player0_gems_{c}": v
        for c, v in zip(
            ("white", "blue", "green", "red", "black", "gold"),
            (white, blue, green, red, black, gold),
            strict=True,
        )
    }


def _reserved_second_slot():  # player 0's second reserved slot holds card 0, the first is empty
    fields = ["vp", "level"] + [
        f"{p}_{c}" for p in ("cost", "bonus") for c in ("white", "blue", "green", "red", "black")
    ]
    return {f"player0_reserved1_{f}": BLOCK[0, COL[f"card0_{f}"]] for f in fields}


#: (rule's message on row 0, the column named, the cells of row 0 changed)
CASES = [
    ("not a finite integer (2.5)", "deck_level1_remaining", {"deck_level1_remaining": 2.5}),
    ("not a finite integer (inf)", "deck_level1_remaining", {"deck_level1_remaining": np.inf}),
    (
        "missing value in a column that must always be present",
        "deck_level1_remaining",
        {"deck_level1_remaining": np.nan},
    ),
    ("missing value for a player in the game", "player1_vp", {"player1_vp": np.nan}),
    ("negative value (-1)", "player0_vp", {"player0_vp": -1}),
    ("value 32768 too large (above 32767)", "player0_vp", {"player0_vp": 32768}),
    (
        f"game_id {-(2**53) - 2:g} too large (above 2**53)",
        "game_id",
        {"game_id": -(2**53) - 2},
    ),
    ("noble_selection below -1 (-2)", "noble_selection", {"noble_selection": -2}),
    ("num_players 5 not in [2, 3, 4]", "num_players", {"num_players": 5}),
    ("turn_number below 1 (0)", "turn_number", {"turn_number": 0}),
    ("seat 2 out of range for the player count", "player1_position", {"player1_position": 2}),
    (
        "current_player 1 differs from player0_position",
        "current_player",
        {"current_player": 1},
    ),
    (
        f"bank holds {TOKENS_PER_COLOUR[2] + 1}, more than its starting size",
        "gems_board_white",
        {"gems_board_white": TOKENS_PER_COLOUR[2] + 1},
    ),
    (
        "player holds 6 tokens of one colour, more than exist",
        "player0_gems_gold",
        _gems(gold=6),
    ),
    ("player holds more than 10 tokens", "player0_gems_white", _gems(3, 3, 3, 2)),
    ("card level 4 not in 1..3", "card0_level", {"card0_level": 4}),
    ("card level nan not in 1..3", "card0_level", {"card0_level": np.nan}),
    (
        "card bonus 2 is not 0 or 1: bonus is not one-hot",
        "card0_bonus_blue",
        {"card0_bonus_white": 0, "card0_bonus_blue": 2},
    ),
    (
        "card bonus is not one-hot (one 1 expected)",
        "card0_bonus_white",
        {f"card0_bonus_{c}": 0 for c in "white blue green red black".split()},
    ),
    (
        "reserved card slot used while an earlier slot is empty",
        "player0_reserved1_vp",
        _reserved_second_slot(),
    ),
    (
        f"game_id {GAME_ID + 1:g} differs from the file's game_id {GAME_ID:g}",
        "game_id",
        {"game_id": GAME_ID + 1},
    ),
]


def _broken(cells: dict) -> np.ndarray:
    values = BLOCK.copy()
    for name, value in cells.items():
        values[0, COL[name]] = value
    return values


def test_the_block_is_valid_and_row_0_is_clean():
    assert rc._all_rows_valid(BLOCK, PLAYER_COUNTS)
    assert rc._detailed_problems(BLOCK, PLAYER_COUNTS) == []
    assert np.isnan(BLOCK[0, COL["player0_reserved0_vp"]])  # nothing reserved yet
    assert BLOCK[0, COL["card0_level"]] == 1  # card 0 is there
    assert [BLOCK[0, COL[f"player0_gems_{c}"]] for c in ("white", "gold")] == [0, 0]


@pytest.mark.parametrize(("message", "column", "cells"), CASES, ids=[c[0] for c in CASES])
def test_a_block_breaking_one_rule_fails_fast_and_gets_that_rule_s_message(message, column, cells):
    values = _broken(cells)
    with np.errstate(invalid="ignore"):
        assert not rc._all_rows_valid(values, PLAYER_COUNTS)
    assert rc._detailed_problems(values, PLAYER_COUNTS) == [(0, column, message)]
    assert rc.validate_rows(values) == [(0, column, message)]


def test_a_count_not_allowed_fails_fast_and_is_named():
    with np.errstate(invalid="ignore"):
        assert not rc._all_rows_valid(BLOCK, (3, 4))
    assert rc.validate_rows(BLOCK, (3, 4))[0] == (0, "num_players", "num_players 2 not in [3, 4]")


def _rule_of(message: str, values: np.ndarray, ok) -> list:
    """The rules whose own message is ``message`` for row 0 of ``values``."""
    block = rc.Block(values, ok)
    found = []
    for rule in rc.RULES:
        reason = rule.reason(block) if callable(rule.reason) else rule.reason
        cells = rule.cells(block)
        if cells is None:
            continue
        bad, cols = cells
        for col in np.asarray(cols)[bad[0]]:
            if reason.format(value=f"{values[0, col]:g}") == message:
                found.append(rule)
    return found


def test_every_rule_has_a_case():
    covered = []
    with np.errstate(invalid="ignore"):
        for message, _, cells in CASES:
            rules = _rule_of(message, _broken(cells), PLAYER_COUNTS)
            assert rules, message
            covered += rules
    assert [r for r in rc.RULES if not any(r is c for c in covered)] == []


@pytest.mark.parametrize("count", PLAYER_COUNTS)
def test_fast_tables_take_the_bounds_that_depend_on_the_player_count(count):
    table = rc._FAST_TABLES[count]
    assert np.isfinite(table.lo).all() and np.isfinite(table.hi).all()  # inf never within
    assert table.hi[COL["gems_board_white"]] == TOKENS_PER_COLOUR[count]
    assert table.hi[COL["gems_board_gold"]] == 5 and table.hi[COL["player3_gems_gold"]] == 5
    assert table.hi[COL["current_player"]] == count - 1
    assert table.hi[COL[f"player{count - 1}_position"]] == count - 1
    assert table.lo[COL["card11_level"]] == 1 and table.hi[COL["card11_level"]] == 3
    assert table.lo[COL["noble_selection"]] == -1 and table.lo[COL["turn_number"]] == 1
    required = set(table.required.tolist())
    assert COL[f"player{count - 1}_vp"] in required
    assert count == 4 or COL[f"player{count}_vp"] not in required
    assert table.card_fields.tolist() == [1, 7, 8, 9, 10, 11]  # level and bonus flags
