"""The row checks of a game log: which rows of a ``(n, 403)`` block are impossible, and why.

This module owns the value checks of ``gamelog-format.md`` (integers, required cells, seats,
bank and token limits from :mod:`splendor.limits`, card levels and one-hot bonuses, reserved
slots in order, one game per file). :func:`validate_rows` first runs a whole-block test
(:func:`_all_rows_valid`, a few numpy calls over bounds derived per player count) and, only
when it does not pass, every detailed check (:func:`_checks`) to name each bad row's leftmost
problem.
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np

from splendor.columns import (
    ACTION_COL,
    BANK,
    CARDS,
    COLUMNS,
    CURRENT_PLAYER_COL,
    DECKS,
    F_BONUS,
    F_LEVEL,
    GAME_ID_COL,
    NOBLE_SELECTION_COL,
    NUM_COLUMNS,
    NUM_PLAYER_SLOTS,
    NUM_PLAYERS_COL,
    PLAYER_GEMS,
    PLAYER_POSITION,
    PLAYER_REDUCTION,
    PLAYER_RESERVED,
    PLAYER_VP,
    TURN_COL,
)
from splendor.limits import (
    GOLD_TOKENS,
    MAX_COLOUR_TOKENS,
    MAX_RESERVED,
    MAX_TOKENS,
    TOKENS_PER_COLOUR,
)

_ALL_COLUMNS = np.arange(NUM_COLUMNS)
MAX_VALUE = np.iinfo(np.int16).max  # any cell but the game id (they are int16 outputs)
MAX_GAME_ID = 2**53  # integers above are not exact in float64


def _slot_mask(num_players: np.ndarray) -> np.ndarray:
    """(n, 4) bool: player slot k is in play (k < num_players)."""
    return np.arange(NUM_PLAYER_SLOTS)[None, :] < num_players[:, None]


def _checks(values: np.ndarray, num_players_ok: Collection[int]):
    """Yield ``(bad, cols, reason)``: ``bad`` bool ``(n, k)`` over column indices ``cols``.

    ``reason`` may hold ``{value}`` (the offending cell). Comparisons with NaN are False, so a
    check never fires on a missing value unless it is about missing values.
    """
    n = len(values)
    missing = np.isnan(values)
    num_players = values[:, NUM_PLAYERS_COL]
    in_play = _slot_mask(num_players)  # NaN num_players -> no slot in play

    # Cells must be finite integers (integers may be written as 2.0). NaN != rint(NaN), so
    # "differs from its rounding" is exactly "missing or not an integer".
    not_integer = (values != np.rint(values)) ^ missing
    yield not_integer | np.isinf(values), _ALL_COLUMNS, "not a finite integer ({value})"

    always = np.concatenate(
        [[GAME_ID_COL, NUM_PLAYERS_COL, TURN_COL, CURRENT_PLAYER_COL], BANK, DECKS, [ACTION_COL]]
    )
    yield missing[:, always], always, "missing value in a column that must always be present"
    per_player = np.concatenate(
        [PLAYER_POSITION[:, None], PLAYER_VP[:, None], PLAYER_GEMS, PLAYER_REDUCTION], axis=1
    )  # (4, 13)
    yield (
        (missing[:, per_player] & in_play[:, :, None]).reshape(n, -1),
        per_player.ravel(),
        "missing value for a player in the game",
    )

    # Everything but the game id and noble_selection (-1 = none) is a count or an index.
    nonneg = np.array(
        [j for j in range(NUM_COLUMNS) if j not in (GAME_ID_COL, NOBLE_SELECTION_COL)]
    )
    yield values[:, nonneg] < 0, nonneg, "negative value ({value})"
    # Every count and index fits the compact int16 outputs; the game id an exact integer.
    yield values[:, nonneg] > MAX_VALUE, nonneg, f"value {{value}} too large (above {MAX_VALUE})"
    yield (
        np.abs(values[:, [GAME_ID_COL]]) > MAX_GAME_ID,
        np.array([GAME_ID_COL]),
        "game_id {value} too large (above 2**53)",
    )
    yield (
        values[:, [NOBLE_SELECTION_COL]] < -1,
        np.array([NOBLE_SELECTION_COL]),
        "noble_selection below -1 ({value})",
    )

    ok_players = np.zeros(n, dtype=bool)
    for count in num_players_ok:
        ok_players |= num_players == count
    yield (
        (~ok_players & ~np.isnan(num_players))[:, None],
        np.array([NUM_PLAYERS_COL]),
        f"num_players {{value}} not in {sorted(num_players_ok)}",
    )
    yield values[:, [TURN_COL]] < 1, np.array([TURN_COL]), "turn_number below 1 ({value})"

    # Seats: 0 <= seat < num_players; slot 0 is the current player.
    seats = np.concatenate([[CURRENT_PLAYER_COL], PLAYER_POSITION])
    in_play_seats = np.concatenate([np.ones((n, 1), bool), in_play], axis=1)
    yield (
        (values[:, seats] >= num_players[:, None]) & in_play_seats,
        seats,
        "seat {value} out of range for the player count",
    )
    yield (
        (values[:, [CURRENT_PLAYER_COL]] != values[:, [PLAYER_POSITION[0]]])
        & ~missing[:, [CURRENT_PLAYER_COL]]
        & ~missing[:, [PLAYER_POSITION[0]]],
        np.array([CURRENT_PLAYER_COL]),
        "current_player {value} differs from player0_position",
    )

    # Bank: never above the starting size for the player count.
    start = np.full(n, np.inf)
    for count, size in TOKENS_PER_COLOUR.items():
        start[num_players == count] = size
    limits = np.concatenate([np.repeat(start[:, None], 5, axis=1), np.full((n, 1), GOLD_TOKENS)], 1)
    yield values[:, BANK] > limits, BANK, "bank holds {value}, more than its starting size"

    # Players: at most 7 of a colour, 5 gold, 10 tokens in all.
    gems = values[:, PLAYER_GEMS]  # (n, 4, 6)
    colour_bad = gems[:, :, :5] > MAX_COLOUR_TOKENS
    gold_bad = gems[:, :, 5:] > GOLD_TOKENS
    yield (
        np.concatenate([colour_bad, gold_bad], axis=2).reshape(n, -1),
        PLAYER_GEMS.ravel(),
        "player holds {value} tokens of one colour, more than exist",
    )
    yield (
        gems.sum(axis=2) > MAX_TOKENS,
        PLAYER_GEMS[:, 0],
        f"player holds more than {MAX_TOKENS} tokens",
    )

    # Cards (face-up and reserved): level 1..3 and a one-hot bonus when the card is there.
    card_blocks = np.concatenate([CARDS, PLAYER_RESERVED.reshape(-1, CARDS.shape[1])])  # (24, 12)
    present = ~missing[:, card_blocks].all(axis=2)  # (n, 24)
    level = values[:, card_blocks[:, F_LEVEL]]
    yield (
        present & ~((level >= 1) & (level <= 3)),
        card_blocks[:, F_LEVEL],
        "card level {value} not in 1..3",
    )
    bonus_cols = card_blocks[:, F_BONUS]  # (24, 5)
    bonus = values[:, bonus_cols]  # (n, 24, 5)
    not_binary = (bonus != 0) & (bonus != 1)
    yield (
        (not_binary & present[:, :, None]).reshape(n, -1),
        bonus_cols.ravel(),
        "card bonus {value} is not 0 or 1: bonus is not one-hot",
    )
    yield (
        present & ~not_binary.any(axis=2) & (bonus.sum(axis=2) != 1),
        bonus_cols[:, 0],
        "card bonus is not one-hot (one 1 expected)",
    )

    # Reserved cards are listed in reservation order: slots fill left to right.
    reserved_present = present[:, len(CARDS) :].reshape(n, NUM_PLAYER_SLOTS, MAX_RESERVED)
    gap = reserved_present[:, :, 1:] & ~reserved_present[:, :, :-1]
    yield (
        gap.reshape(n, -1),
        PLAYER_RESERVED[:, 1:, 0].ravel(),
        "reserved card slot used while an earlier slot is empty",
    )

    # One game per file: rows whose game_id differs from the file's (most common) id.
    game_id = values[:, GAME_ID_COL]
    known = game_id[~np.isnan(game_id)]
    if len(known) and (known != known[0]).any():
        ids, first, counts = np.unique(known, return_index=True, return_counts=True)
        top = counts == counts.max()
        file_id = ids[top][np.argmin(first[top])]
        yield (
            ((game_id != file_id) & ~np.isnan(game_id))[:, None],
            np.array([GAME_ID_COL]),
            f"game_id {{value}} differs from the file's game_id {file_id:g}",
        )


# --- the fast path: one test of the whole block -------------------------------------------

# The 24 cards of a row (12 face-up, then the 4 x 3 reserved), each as its 12 columns.
_CARD_BLOCKS = np.concatenate([CARDS, PLAYER_RESERVED.reshape(-1, CARDS.shape[1])])  # (24, 12)
# The fields a present card must have: its level and its 5 bonus flags.
_CARD_KEY_FIELDS = np.r_[F_LEVEL, np.arange(12)[F_BONUS]]


def _fast_bounds(num_players: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(lo, hi, required)`` for a block whose rows all have this player count: every
    non-missing cell must lie in ``lo..hi`` (``(403,)`` each), and the ``required`` columns
    (indices) must not be missing. Together they state the range checks of :func:`_checks`
    for that count."""
    lo = np.zeros(NUM_COLUMNS)
    hi = np.full(NUM_COLUMNS, float(MAX_VALUE))
    lo[GAME_ID_COL], hi[GAME_ID_COL] = -MAX_GAME_ID, MAX_GAME_ID
    # noble_selection: -1 = none, no upper bound but finiteness (the labels check the range).
    lo[NOBLE_SELECTION_COL], hi[NOBLE_SELECTION_COL] = -1, np.finfo(np.float64).max
    lo[TURN_COL] = 1
    in_play = PLAYER_POSITION[:num_players]
    hi[np.r_[CURRENT_PLAYER_COL, in_play]] = num_players - 1
    hi[BANK[:5]], hi[BANK[5]] = TOKENS_PER_COLOUR[num_players], GOLD_TOKENS
    hi[PLAYER_GEMS[:, :5]], hi[PLAYER_GEMS[:, 5]] = MAX_COLOUR_TOKENS, GOLD_TOKENS
    lo[_CARD_BLOCKS[:, F_LEVEL]], hi[_CARD_BLOCKS[:, F_LEVEL]] = 1, 3
    hi[_CARD_BLOCKS[:, F_BONUS]] = 1
    required = np.zeros(NUM_COLUMNS, dtype=bool)
    required[[GAME_ID_COL, NUM_PLAYERS_COL, TURN_COL, CURRENT_PLAYER_COL, ACTION_COL]] = True
    required[np.r_[BANK, DECKS]] = True
    for k in range(num_players):
        required[np.r_[PLAYER_POSITION[k], PLAYER_VP[k], PLAYER_GEMS[k], PLAYER_REDUCTION[k]]] = (
            True
        )
    return lo, hi, np.flatnonzero(required)


_FAST_BOUNDS = {count: _fast_bounds(count) for count in TOKENS_PER_COLOUR}


def _all_rows_valid(values: np.ndarray, num_players_ok: Collection[int]) -> bool:
    """Whole-block test, a few numpy calls: ``True`` guarantees that no check of
    :func:`_checks` fires on any row (so :func:`validate_rows` has nothing to report).

    ``False`` only means "look closer": the detailed checks then decide. It is ``True`` when
    every row has the same valid player count (so the per-player and bank limits are fixed
    per column) and: every present cell is an integer within its column's bounds
    (:func:`_fast_bounds`; non-finite values are out of bounds), no required cell is missing,
    each card is either absent (all its cells missing) or has its level and bonus flags with
    exactly one bonus set, reserved slots fill left to right, no player holds more than 10
    tokens, ``current_player`` equals ``player0_position`` and every row has the same game id.
    """
    if not len(values):
        return True
    num_players = values[0, NUM_PLAYERS_COL]
    if (
        num_players not in _FAST_BOUNDS
        or num_players not in num_players_ok
        or (values[:, NUM_PLAYERS_COL] != num_players).any()
    ):
        return False
    lo, hi, required = _FAST_BOUNDS[int(num_players)]
    missing = np.isnan(values)
    # A present cell is fine when it equals its rounding clipped to its bounds (non-finite
    # values are out of bounds); NaN equals nothing, so missing cells are or-ed in.
    fine = np.rint(values)
    np.maximum(fine, lo, out=fine)
    np.minimum(fine, hi, out=fine)
    fine = fine == values
    fine |= missing
    if not fine.all() or missing[:, required].any():
        return False
    # The cards with the rows on the last axis, (field, card, n): the tests over a card's
    # fields then combine contiguous slabs (numpy loops slowly over short last axes).
    card_missing = missing.T[_CARD_BLOCKS.T]  # (12, 24, n)
    absent = card_missing.all(axis=0)  # (24, n)
    if (card_missing[_CARD_KEY_FIELDS].any(axis=0) != absent).any():
        return False  # a present card without its level or a bonus flag
    one_bonus = values.T[_CARD_BLOCKS[:, F_BONUS].T].sum(axis=0) == 1  # False when absent
    if (one_bonus == absent).any():
        return False
    reserved = ~absent[len(CARDS) :].reshape(NUM_PLAYER_SLOTS, MAX_RESERVED, -1)
    if (reserved[:, 1:] > reserved[:, :-1]).any():
        return False  # a reserved slot used after an empty one
    if (values.T[PLAYER_GEMS.T].sum(axis=0) > MAX_TOKENS).any():  # (6, 4, n) summed
        return False
    return not (
        (values[:, CURRENT_PLAYER_COL] != values[:, PLAYER_POSITION[0]]).any()
        or (values[:, GAME_ID_COL] != values[0, GAME_ID_COL]).any()
    )


def validate_rows(
    values: np.ndarray, num_players_ok: Collection[int] = (2, 3, 4)
) -> list[tuple[int, str, str]]:
    """Find impossible rows of a ``(n, 403)`` block (``COLUMNS`` order, NaN = missing).

    Returns ``(row_index, column, reason)`` for every bad row, one per row (its leftmost bad
    column), sorted by row. All checks are vectorised over the block. A block that passes
    the whole-block test :func:`_all_rows_valid` (the usual case) returns ``[]`` at once;
    otherwise every check of :func:`_checks` runs to name each bad row's leftmost problem.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2 or values.shape[1] != NUM_COLUMNS:
        raise ValueError(f"expected a (n, {NUM_COLUMNS}) block, got shape {values.shape}")
    with np.errstate(invalid="ignore"):
        if _all_rows_valid(values, num_players_ok):
            return []
    return _detailed_problems(values, num_players_ok)


def _detailed_problems(
    values: np.ndarray, num_players_ok: Collection[int]
) -> list[tuple[int, str, str]]:
    """:func:`validate_rows` without the fast path: every check of :func:`_checks`."""
    n = len(values)
    none = NUM_COLUMNS  # "no problem" sentinel, larger than any column index
    best_col = np.full(n, none, dtype=np.int64)
    best_reason = np.zeros(n, dtype=np.int64)
    reasons: list[str] = []
    with np.errstate(invalid="ignore"):
        for bad, cols, reason in _checks(values, num_players_ok):
            cols = np.asarray(cols, dtype=np.int64)
            if not bad.any():
                continue
            col = np.where(bad, cols[None, :], none).min(axis=1)
            better = col < best_col
            best_col[better] = col[better]
            best_reason[better] = len(reasons)
            reasons.append(reason)
    rows = np.flatnonzero(best_col < none)
    return [
        (
            int(i),
            COLUMNS[best_col[i]],
            reasons[best_reason[i]].format(value=f"{values[i, best_col[i]]:g}"),
        )
        for i in rows
    ]
