"""Filling, face-up compaction, position columns and the compact-dtype frame."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from imitation_learning.per_file.compaction import (
    FRAME_COLUMNS,
    POSITION_COLUMNS,
    build_frame,
    compact,
    empty_frame,
)
from splendor import columns as C


def card(level: int, vp: int = 0, cost: dict | None = None, bonus: str = "red") -> np.ndarray:
    """The 12 fields of a card (vp, level, cost W B G R K, bonus one-hot)."""
    fields = np.zeros(12)
    fields[C.F_VP], fields[C.F_LEVEL] = vp, level
    for colour, n in (cost or {}).items():
        fields[2 + C.COLOURS.index(colour)] = n
    fields[7 + C.COLOURS.index(bonus)] = 1
    return fields


def make_row(num_players: int = 2, action: int = C.TAKE3) -> np.ndarray:
    """A raw row: full display (slot i has vp = i so cards can be told apart), nobles for
    the player count, player slots zeroed up to ``num_players``, the rest missing."""
    row = np.full(len(C.COLUMNS), np.nan)
    row[C.COL["game_id"]] = 7
    row[C.COL["num_players"]] = num_players
    row[C.COL["turn_number"]] = 3
    row[C.COL["current_player"]] = 0
    row[C.BANK] = [4, 4, 4, 4, 4, 5]
    for i in range(C.NUM_VISIBLE):
        row[C.CARDS[i]] = card(level=i // 4 + 1, vp=i, cost={"black": 7})
    row[C.DECKS] = [30, 20, 10]
    for j in range(num_players + 1):
        row[C.NOBLES[j]] = [3, 4, 4, 0, 0, 0]
    for k in range(num_players):
        row[C.PLAYER_POSITION[k]] = k
        row[C.PLAYER_VP[k]] = 0
        row[C.PLAYER_GEMS[k]] = 0
        row[C.PLAYER_REDUCTION[k]] = 0
    row[C.ACTION_COL] = action
    row[C.TAKE3_COLS] = [1, 1, 1, 0, 0]
    row[C.NOBLE_SELECTION_COL] = -1
    row[C.REMOVED_COLS] = 0
    return row


def test_full_display_is_unchanged_and_positions_are_the_slots():
    row = make_row()
    out = compact(row[None])
    np.testing.assert_array_equal(out.values[0, C.CARDS.reshape(-1)], row[C.CARDS.reshape(-1)])
    np.testing.assert_array_equal(out.card_positions[0], np.arange(12))
    assert out.card_present.all()


def test_empty_slots_in_the_middle_of_levels_are_moved_to_the_end():
    row = make_row()
    row[C.CARDS[1]] = np.nan  # level 1, second slot
    row[C.CARDS[5]] = np.nan  # level 2, second slot
    row[C.CARDS[6]] = np.nan  # level 2, third slot
    out = compact(row[None])
    vp = out.values[0, C.CARDS[:, C.F_VP]]
    level = out.values[0, C.CARDS[:, C.F_LEVEL]]
    # running index i holds the i-th present slot: 0 2 3 4 7 8 9 10 11, then 3 empties
    np.testing.assert_array_equal(vp, [0, 2, 3, 4, 7, 8, 9, 10, 11, 0, 0, 0])
    np.testing.assert_array_equal(level, [1, 1, 1, 2, 2, 3, 3, 3, 3, 0, 0, 0])
    np.testing.assert_array_equal(out.card_positions[0], [0, 1, 2, 3, 4, 5, 6, 7, 8, -1, -1, -1])
    np.testing.assert_array_equal(out.card_present[0], [True] * 9 + [False] * 3)
    assert out.card_positions.dtype == np.int8
    # the empty slots are filled with 0 (state), not NaN
    assert not np.isnan(out.values[0, C.CARDS.reshape(-1)]).any()


def test_rows_are_compacted_independently():
    full, holes = make_row(), make_row()
    holes[C.CARDS[0]] = np.nan
    out = compact(np.stack([full, holes, full]))
    np.testing.assert_array_equal(out.card_positions[:, -1], [11, -1, 11])
    np.testing.assert_array_equal(out.values[1, C.CARDS[:11, C.F_VP]], np.arange(1, 12))
    np.testing.assert_array_equal(out.values[2, C.CARDS[:, C.F_VP]], np.arange(12))


def test_reserved_positions_and_presence():
    row = make_row(num_players=3)
    row[C.PLAYER_RESERVED[0, 0]] = card(2, vp=1)
    row[C.PLAYER_RESERVED[0, 1]] = card(3, vp=4)
    row[C.PLAYER_RESERVED[2, 0]] = card(1)
    out = compact(row[None])
    pos = out.reserved_positions[0].reshape(4, 3)
    np.testing.assert_array_equal(pos[0], [12, 13, -1])
    np.testing.assert_array_equal(pos[1], [-1, -1, -1])
    np.testing.assert_array_equal(pos[2], [12, -1, -1])
    np.testing.assert_array_equal(pos[3], [-1, -1, -1])
    np.testing.assert_array_equal(out.player_present[0], [True, True, True, False])
    np.testing.assert_array_equal(out.noble_present[0], [True, True, True, True, False])


def test_fill_touches_state_only_and_leaves_input_alone():
    row = make_row()
    before = row.copy()
    out = compact(row[None]).values[0]
    np.testing.assert_array_equal(row, before)  # input not modified (NaN == NaN here)
    state = out[C.STATE_SLICE]
    assert not np.isnan(state).any()
    assert out[C.PLAYER_VP[3]] == 0 and out[C.NOBLES[4, 1]] == 0
    # decision columns keep their missing values
    assert np.isnan(out[C.CARD_SELECTION_COL]) and np.isnan(out[C.TAKE2_COLS]).all()
    assert out[C.NOBLE_SELECTION_COL] == -1


def test_frame_columns_dtypes_and_values():
    build = make_row(action=C.BUILD)
    build[C.TAKE3_COLS] = np.nan
    build[C.CARD_SELECTION_COL] = 1
    holes = make_row(num_players=4)
    holes[C.CARDS[2]] = np.nan
    holes[C.PLAYER_RESERVED[1, 0]] = card(1)
    df = build_frame(compact(np.stack([build, holes])))

    assert list(df.columns) == FRAME_COLUMNS
    assert len(FRAME_COLUMNS) == 403 + 24 and len(set(FRAME_COLUMNS)) == len(FRAME_COLUMNS)
    assert df["game_id"].dtype == np.int64
    assert (df[C.STATE_COLUMNS].dtypes == np.int16).all()
    assert (df[C.DECISION_COLUMNS[1:]].dtypes == np.float32).all()
    assert (df[POSITION_COLUMNS].dtypes == np.int8).all()
    assert isinstance(df["action_type"].dtype, pd.CategoricalDtype)
    assert list(df["action_type"].cat.categories) == list(C.ACTION_TYPES)
    assert list(df["action_type"]) == ["build", "take 3 tokens"]

    assert df.loc[0, "card_selection"] == 1 and np.isnan(df.loc[1, "card_selection"])
    assert np.isnan(df.loc[0, "gem_take3_white"]) and df.loc[1, "gem_take3_white"] == 1
    assert df.loc[1, "card2_vp"] == 3 and df.loc[1, "card11_position"] == -1
    assert df.loc[0, "card11_position"] == 11
    assert df.loc[1, "player1_reserved0_position"] == 12
    assert df.loc[1, "player1_reserved1_position"] == -1
    assert df.loc[0, "player3_vp"] == 0  # absent slot filled
    assert df.loc[1, "num_players"] == 4


def test_frame_takes_explicit_action_codes():
    rows = np.stack([make_row(), make_row()])
    df = build_frame(compact(rows), np.array([C.RESERVE, C.TAKE2]))
    assert list(df["action_type"]) == ["reserve", "take 2 tokens"]


def test_empty_frame_matches_build_frame_and_concatenates():
    empty = empty_frame()
    full = build_frame(compact(make_row()[None]))
    assert len(empty) == 0
    assert list(empty.columns) == list(full.columns)
    pd.testing.assert_series_equal(empty.dtypes, full.dtypes)
    both = pd.concat([full, empty, full], ignore_index=True)
    pd.testing.assert_series_equal(both.dtypes, full.dtypes)  # categorical survives concat


def test_compact_rejects_wrong_width():
    with pytest.raises(ValueError):
        compact(np.zeros((2, 402)))
