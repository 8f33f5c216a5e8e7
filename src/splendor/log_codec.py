"""A (state, move) pair <-> one row of the game log (``docs/input-format.md``).

Rows are float64 vectors of the 403 columns of :data:`splendor.columns.COLUMNS`, NaN for
missing, the ``action_type`` column holding the action code (the writer turns it into text).

- :func:`encode_row` / :func:`encode_values`: state before the decision + the decision.
- :func:`decode_state`: the public state of a row. Decks are known only by their size, so
  the decoded decks hold :data:`~splendor.state.UNKNOWN_CARD` placeholders: the decoded state
  gives the same legal moves and re-encodes identically, but cannot reveal a deck card.
- :func:`decode_move`: the :class:`~splendor.rules.Move` a row's decision columns describe.
"""

from __future__ import annotations

import math

import numpy as np

from splendor import columns
from splendor.cards import CARD_BY_FEATURES, CARDS, NOBLE_BY_FEATURES, NOBLES
from splendor.columns import (
    ACTION_COL,
    BUILD,
    CARD_FIELDS,
    CARD_RESERVATION_COL,
    CARD_SELECTION_COL,
    COL,
    COLUMNS,
    DECKS,
    NOBLE_FIELDS,
    NOBLE_SELECTION_COL,
    NUM_NOBLE_SLOTS,
    NUM_VISIBLE,
    PLAYER_GEMS,
    PLAYER_POSITION,
    PLAYER_REDUCTION,
    PLAYER_RESERVED,
    PLAYER_VP,
    REMOVED_COLS,
    RESERVE,
    TAKE2,
    TAKE2_COLS,
    TAKE3,
    TAKE3_COLS,
)
from splendor.limits import MAX_RESERVED, WINNING_POINTS
from splendor.rules import BLIND, RESERVED, Move
from splendor.state import (
    UNKNOWN_CARD,
    GameState,
    PlayerState,
)

NAN = math.nan
CARD_COLS, NOBLE_COLS = columns.CARDS, columns.NOBLES  # (12, 12), (5, 6) column indices
NCOLS = len(COLUMNS)
_CARD_W, _NOBLE_W = len(CARD_FIELDS), len(NOBLE_FIELDS)
_CARD0 = COL["card0_vp"]
_DECK0 = COL["deck_level1_remaining"]
_NOBLE0 = COL["noble0_vp"]
_PLAYER0 = COL["player0_position"]
_PLAYER_W = COL["player1_position"] - _PLAYER0
_RES_OFF = COL["player0_reserved0_vp"] - _PLAYER0
_TAKE3_0, _TAKE2_0, _REMOVED0 = int(TAKE3_COLS[0]), int(TAKE2_COLS[0]), int(REMOVED_COLS[0])
# The list-slice encoding below relies on these blocks being contiguous.
assert (CARD_COLS == _CARD0 + np.arange(NUM_VISIBLE * _CARD_W).reshape(NUM_VISIBLE, -1)).all()
assert (NOBLE_COLS == _NOBLE0 + np.arange(NUM_NOBLE_SLOTS * _NOBLE_W).reshape(-1, _NOBLE_W)).all()
assert (DECKS == _DECK0 + np.arange(3)).all()
assert (PLAYER_POSITION == _PLAYER0 + _PLAYER_W * np.arange(4)).all()
assert (PLAYER_GEMS[:, 0] == PLAYER_POSITION + 2).all()
assert (PLAYER_REDUCTION[:, 0] == PLAYER_POSITION + 8).all()
assert (PLAYER_RESERVED[:, 0, 0] == PLAYER_POSITION + _RES_OFF).all()
assert (np.diff(TAKE3_COLS) == 1).all() and (np.diff(TAKE2_COLS) == 1).all()

_CARD_FEATS = [tuple(map(float, c.features)) for c in CARDS]
_NOBLE_FEATS = [tuple(map(float, n.features)) for n in NOBLES]
_EMPTY_ROW = [NAN] * NCOLS


def visible_index(slots: list[int | None], slot: int) -> int:
    """The log's running index of face-up ``slot`` (present cards counted in slot order)."""
    return sum(1 for cid in slots[:slot] if cid is not None)


def slot_of_visible_index(slots: list[int | None], index: int) -> int:
    """The face-up slot holding the card with running index ``index``."""
    present = [i for i, cid in enumerate(slots) if cid is not None]
    if not 0 <= index < len(present):
        raise ValueError(f"visible card index {index} but {len(present)} face-up cards")
    return present[index]


def encode_values(state: GameState, move: Move | None, game_id: float | None = None) -> list:
    """The row as a list of 403 floats (the fast path of :func:`encode_row`)."""
    row = _EMPTY_ROW.copy()
    row[0] = NAN if game_id is None else game_id
    n, cur = state.num_players, state.current
    row[1:4] = (n, state.round, cur)
    row[4:10] = state.bank
    for i, cid in enumerate(state.slots):
        if cid is not None:
            o = _CARD0 + _CARD_W * i
            row[o : o + _CARD_W] = _CARD_FEATS[cid]
    row[_DECK0 : _DECK0 + 3] = [len(d) for d in state.decks]
    for j, nid in enumerate(state.nobles):
        o = _NOBLE0 + _NOBLE_W * j
        row[o : o + _NOBLE_W] = _NOBLE_FEATS[nid]
    for k in range(n):
        seat = (cur + k) % n
        p = state.players[seat]
        o = _PLAYER0 + _PLAYER_W * k
        row[o] = seat
        row[o + 1] = p.points
        row[o + 2 : o + 8] = p.tokens
        row[o + 8 : o + 13] = p.bonuses
        o += _RES_OFF
        for cid in p.reserved:
            row[o : o + _CARD_W] = _CARD_FEATS[cid]
            o += _CARD_W
    if move is None:
        return row
    action, target = move.action, move.target
    row[ACTION_COL] = action
    if action == BUILD:
        row[CARD_SELECTION_COL] = (
            visible_index(state.slots, target) if target < RESERVED else target
        )
    elif action == RESERVE:
        row[CARD_RESERVATION_COL] = visible_index(state.slots, target) if target < BLIND else target
    elif action == TAKE3:
        row[_TAKE3_0 : _TAKE3_0 + 5] = move.take
    elif action == TAKE2:
        row[_TAKE2_0 : _TAKE2_0 + 5] = move.take
    row[NOBLE_SELECTION_COL] = move.noble
    row[_REMOVED0 : _REMOVED0 + 6] = move.returned
    return row


def encode_row(state: GameState, move: Move | None, game_id: float | None = None) -> np.ndarray:
    """float64 (403,) in ``COLUMNS`` order; NaN for missing. ``game_id`` defaults to
    ``state.game_id`` (NaN when unset); ``move=None`` leaves the decision columns missing."""
    if game_id is None:
        game_id = state.game_id
    return np.array(encode_values(state, move, game_id), dtype=np.float64)


# --- decoding ------------------------------------------------------------------------------


def _ints(values: np.ndarray) -> tuple[int, ...]:
    return tuple(int(x) for x in values)


def _card_id(features: np.ndarray) -> int:
    key = _ints(features)
    try:
        return CARD_BY_FEATURES[key]
    except KeyError:
        raise ValueError(f"card {key} is not one of the official cards") from None


def decode_state(row: np.ndarray) -> GameState:
    """The state before the row's decision (decks by count only, see the module doc)."""
    row = np.asarray(row, dtype=np.float64)
    n = int(row[COL["num_players"]])
    cur_val = row[COL["current_player"]]
    current = int(row[PLAYER_POSITION[0]] if np.isnan(cur_val) else cur_val)
    slots: list[int | None] = [
        None if np.isnan(row[CARD_COLS[i, 0]]) else _card_id(row[CARD_COLS[i]])
        for i in range(NUM_VISIBLE)
    ]
    nobles = []
    for j in range(NUM_NOBLE_SLOTS):
        if not np.isnan(row[NOBLE_COLS[j, 0]]):
            key = _ints(row[NOBLE_COLS[j]])
            if key not in NOBLE_BY_FEATURES:
                raise ValueError(f"noble {key} is not one of the official nobles")
            nobles.append(NOBLE_BY_FEATURES[key])
    players: list[PlayerState | None] = [None] * n
    for k in range(n):
        seat = int(row[PLAYER_POSITION[k]])
        bonuses = list(_ints(row[PLAYER_REDUCTION[k]]))
        reserved = [
            _card_id(row[PLAYER_RESERVED[k, r]])
            for r in range(MAX_RESERVED)
            if not np.isnan(row[PLAYER_RESERVED[k, r, 0]])
        ]
        players[seat] = PlayerState(
            tokens=list(_ints(row[PLAYER_GEMS[k]])),
            bonuses=bonuses,
            reserved=reserved,
            points=int(row[PLAYER_VP[k]]),
            bought=sum(bonuses),
        )
    if any(p is None for p in players):
        raise ValueError("player positions do not cover every seat")
    game_id = row[COL["game_id"]]
    return GameState(
        num_players=n,
        bank=list(_ints(row[COL["gems_board_white"] : COL["gems_board_gold"] + 1])),
        slots=slots,
        decks=[[UNKNOWN_CARD] * int(row[c]) for c in DECKS],
        nobles=nobles,
        players=players,
        current=current,
        round=int(row[COL["turn_number"]]),
        # Points never go down: someone at 15+ means the last round is being played.
        final_round=any(p.points >= WINNING_POINTS for p in players),
        game_id=None if np.isnan(game_id) else int(game_id),
    )


def decode_move(row: np.ndarray, state: GameState) -> Move:
    """The move of the row's decision columns; ``state`` is the row's state (for the
    running index of face-up cards)."""
    row = np.asarray(row, dtype=np.float64)
    action = int(row[ACTION_COL])
    noble_val = row[NOBLE_SELECTION_COL]
    noble = -1 if np.isnan(noble_val) else int(noble_val)
    removed = row[REMOVED_COLS]
    returned = (0,) * 6 if np.isnan(removed).any() else _ints(removed)
    if action == BUILD:
        sel = int(row[CARD_SELECTION_COL])
        target = slot_of_visible_index(state.slots, sel) if sel < RESERVED else sel
        return Move(BUILD, target, noble=noble, returned=returned)
    if action == RESERVE:
        sel = int(row[CARD_RESERVATION_COL])
        target = slot_of_visible_index(state.slots, sel) if sel < BLIND else sel
        return Move(RESERVE, target, noble=noble, returned=returned)
    if action in (TAKE2, TAKE3):
        cols = TAKE2_COLS if action == TAKE2 else TAKE3_COLS
        return Move(action, -1, _ints(row[cols]), returned, noble)
    raise ValueError(f"unknown action code {action}")
