"""The row checks of a game log: which rows of a ``(n, 403)`` block are impossible, and why.

This module owns the value checks of ``docs/input-format.md`` (integers, required cells, seats,
bank and token limits from :mod:`splendor.limits`, card levels and one-hot bonuses, reserved
slots in order, one game per file), each declared once in :data:`RULES`: a rule is an
:class:`Integer`, :class:`Required`, :class:`Bound` (a range per column, possibly per player
count), :class:`PlayerCount` or :class:`Check` (any other test), with its message.
:func:`validate_rows` first runs a whole-block test (:func:`_all_rows_valid`: the bounds and
required cells of every rule folded into one table per player count, then each
:class:`Check`) and, only when it does not pass, every rule cell by cell
(:func:`_detailed_problems`) to name each bad row's leftmost problem: the same rules.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from functools import cached_property

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
    PLAYER_COUNTS,
    TOKENS_PER_COLOUR,
)

MAX_VALUE = np.iinfo(np.int16).max  # any cell but the game id (they are int16 outputs)
MAX_GAME_ID = 2**53  # integers above are not exact in float64

#: The 24 cards of a row (12 face-up, then the 4 x 3 reserved), each as its 12 columns.
CARD_BLOCKS = np.concatenate([CARDS, PLAYER_RESERVED.reshape(-1, CARDS.shape[1])])  # (24, 12)
_FIELDS = np.arange(CARD_BLOCKS.shape[1])

#: A bound: a number, one per column, or a function of the row's player count (a float,
#: NaN when missing) giving either.
Limit = float | np.ndarray | Callable[[float], "float | np.ndarray"]


class Block:
    """A ``(n, 403)`` float64 block under test, with what several rules look at computed
    once: the missing cells and the cards (rows on the last axis: numpy loops slowly over
    short last axes)."""

    def __init__(self, values: np.ndarray, num_players_ok: Collection[int]):
        self.values = values
        self.num_players_ok = num_players_ok
        self.missing = np.isnan(values)

    @property
    def num_players(self) -> np.ndarray:
        return self.values[:, NUM_PLAYERS_COL]

    @cached_property
    def card_missing(self) -> np.ndarray:
        """``(12, 24, n)``: field, card, row."""
        return self.missing.T[CARD_BLOCKS.T]

    @cached_property
    def card_present(self) -> np.ndarray:
        """``(24, n)``: a card is there unless all its cells are missing."""
        return ~self.card_missing.all(axis=0)

    @cached_property
    def file_game_id(self) -> float:
        """The file's game id: the most common known one (the earliest on a tie)."""
        game_id = self.values[:, GAME_ID_COL]
        ids, first, counts = np.unique(
            game_id[~np.isnan(game_id)], return_index=True, return_counts=True
        )
        top = counts == counts.max()
        return ids[top][np.argmin(first[top])]


def _in_play(num_players: np.ndarray) -> np.ndarray:
    """(n, 4) bool: player slot k is in play (k < num_players); none when it is missing."""
    return np.arange(NUM_PLAYER_SLOTS)[None, :] < num_players[:, None]


# --- the kinds of rule ----------------------------------------------------------------
# Each names its bad cells, ``cells(block) -> (bad (n, k), columns (k,))``, and says how the
# whole-block test takes it.


@dataclass(frozen=True)
class Integer:
    """Every cell is missing or a finite integer (integers may be written as ``2.0``). The
    whole-block test takes it with the bounds: a cell passes when it equals its rounding
    clipped to its (finite) bounds."""

    reason: str

    def cells(self, block: Block) -> tuple[np.ndarray, np.ndarray]:
        values = block.values
        # NaN != rint(NaN): "differs from its rounding" is exactly "missing or not an integer".
        bad = ((values != np.rint(values)) ^ block.missing) | np.isinf(values)
        return bad, np.arange(NUM_COLUMNS)


@dataclass(frozen=True)
class Required:
    """The cells of ``columns`` are never missing; ``per_player``: ``columns`` is
    ``(4, k)``, a player slot's cells, required while the slot is in play."""

    reason: str
    columns: np.ndarray
    per_player: bool = False

    def cells(self, block: Block) -> tuple[np.ndarray, np.ndarray]:
        missing = block.missing[:, self.columns]
        if self.per_player:
            n = len(missing)
            missing = (missing & _in_play(block.num_players)[:, :, None]).reshape(n, -1)
        return missing, self.columns.ravel()

    def required(self, num_players: int) -> np.ndarray:
        """The columns required in a row of ``num_players`` players."""
        return self.columns[:num_players].ravel() if self.per_player else self.columns


@dataclass(frozen=True)
class Bound:
    """Every present cell of ``columns`` lies in ``lo..hi``. With ``cards``, ``columns``
    are fields of a card (offsets in its 12 columns), bounded on the 24 cards of a row, and
    a card that is there must have them all: a missing one is out of bounds."""

    reason: str
    columns: np.ndarray
    lo: Limit = -np.inf
    hi: Limit = np.inf
    cards: bool = False

    @property
    def block_columns(self) -> np.ndarray:
        """The columns bounded: ``(k,)``, or ``(24, k)`` with ``cards``."""
        return CARD_BLOCKS[:, self.columns] if self.cards else self.columns

    def limits(self, num_players: float) -> tuple[np.ndarray | float, np.ndarray | float]:
        """``(lo, hi)`` in a row of ``num_players`` players (NaN: unknown)."""
        return tuple(b(num_players) if callable(b) else b for b in (self.lo, self.hi))

    def cells(self, block: Block) -> tuple[np.ndarray, np.ndarray]:
        cols = self.block_columns
        values = block.values[:, cols]
        if self.cards:  # constant bounds; a present card's missing field is out of them
            inside = (values >= self.lo) & (values <= self.hi)
            bad = ~inside & block.card_present.T[:, :, None]
            return bad.reshape(len(values), -1), cols.ravel()
        lo, hi = self._row_limits(block.num_players, len(cols))
        return (values < lo) | (values > hi), cols

    def _row_limits(self, num_players: np.ndarray, width: int):
        if not (callable(self.lo) or callable(self.hi)):
            return self.lo, self.hi
        lo, hi = np.empty((len(num_players), width)), np.empty((len(num_players), width))
        for count in np.unique(num_players):
            rows = np.isnan(num_players) if np.isnan(count) else num_players == count
            lo[rows], hi[rows] = self.limits(count)
        return lo, hi


@dataclass(frozen=True)
class Check:
    """Any other test: ``bad(block)`` gives ``(k, n)`` bool over ``columns`` (rows on the
    last axis), or None when it cannot fire. ``reason`` may be a function of the block.
    The whole-block test runs it as it is."""

    reason: str | Callable[[Block], str]
    columns: np.ndarray
    bad: Callable[[Block], np.ndarray | None]

    def cells(self, block: Block) -> tuple[np.ndarray, np.ndarray] | None:
        bad = self.bad(block)
        return None if bad is None else (bad.T, self.columns)

    def fires(self, block: Block) -> bool:
        bad = self.bad(block)
        return bad is not None and bool(bad.any())


@dataclass(frozen=True)
class PlayerCount:
    """``num_players`` is one of the counts allowed. The whole-block test takes it first:
    its table is per player count, so every row must have the same allowed count."""

    def reason(self, block: Block) -> str:
        return f"num_players {{value}} not in {sorted(block.num_players_ok)}"

    def cells(self, block: Block) -> tuple[np.ndarray, np.ndarray]:
        num_players = block.num_players
        allowed = np.zeros(len(num_players), dtype=bool)
        for count in block.num_players_ok:
            allowed |= num_players == count
        return (~allowed & ~np.isnan(num_players))[:, None], np.array([NUM_PLAYERS_COL])

    @staticmethod
    def common(values: np.ndarray, num_players_ok: Collection[int]) -> float | None:
        """The player count of every row of ``values`` if they share an allowed one."""
        num_players = values[0, NUM_PLAYERS_COL]
        if num_players not in num_players_ok or (values[:, NUM_PLAYERS_COL] != num_players).any():
            return None
        return num_players


Rule = Integer | Required | Bound | PlayerCount | Check


# --- the tests of the Check rules (rows on the last axis) ----------------------------------


def _current_player_not_slot_0(block: Block) -> np.ndarray | None:
    values, missing = block.values, block.missing
    current, first = CURRENT_PLAYER_COL, PLAYER_POSITION[0]
    differs = values[:, current] != values[:, first]
    if not differs.any():
        return None
    return (differs & ~missing[:, current] & ~missing[:, first])[None]


def _too_many_tokens(block: Block) -> np.ndarray:
    return block.values.T[PLAYER_GEMS.T].sum(axis=0) > MAX_TOKENS  # (6, 4, n) summed


def _bonus_not_one_hot(block: Block) -> np.ndarray:
    bonus = block.values.T[CARD_BLOCKS[:, F_BONUS].T]  # (5, 24, n)
    bad = block.card_present & (bonus.sum(axis=0) != 1)
    if bad.any():  # only cards of 0/1 flags: another value has the bound's message
        bad &= ((bonus == 0) | (bonus == 1)).all(axis=0)
    return bad


def _reserved_slot_skipped(block: Block) -> np.ndarray:
    n = len(block.values)
    reserved = block.card_present[len(CARDS) :].reshape(NUM_PLAYER_SLOTS, MAX_RESERVED, n)
    gap = reserved[:, 1:] & ~reserved[:, :-1]
    return gap.reshape(NUM_PLAYER_SLOTS * (MAX_RESERVED - 1), n)


def _game_id_differs(block: Block) -> np.ndarray | None:
    game_id = block.values[:, GAME_ID_COL]
    if not len(game_id) or (game_id == game_id[0]).all():  # one id (NaN equals nothing)
        return None
    known = game_id[~np.isnan(game_id)]
    if not len(known) or (known == known[0]).all():
        return None
    return ((game_id != block.file_game_id) & ~np.isnan(game_id))[None]


def _seat_limits(num_players: float) -> np.ndarray:
    """The highest seat: ``current_player``'s, then each slot's position (none for a slot
    not in play)."""
    in_play = np.r_[True, np.arange(NUM_PLAYER_SLOTS) < num_players]
    return np.where(in_play, num_players - 1, np.inf)


def _bank_limits(num_players: float) -> np.ndarray:
    """The starting bank: its five colours for the player count, then gold."""
    return np.r_[np.full(5, TOKENS_PER_COLOUR.get(num_players, np.inf)), GOLD_TOKENS]


# --- the rules ------------------------------------------------------------------------------

#: Everything but the game id and noble_selection (-1 = none) is a count or an index.
COUNT_COLUMNS = np.array(
    [j for j in range(NUM_COLUMNS) if j not in (GAME_ID_COL, NOBLE_SELECTION_COL)]
)

#: Every rule of a row, in the order that settles a tie (two rules on one bad cell: the
#: first one's message).
RULES: tuple[Rule, ...] = (
    Integer("not a finite integer ({value})"),
    Required(
        "missing value in a column that must always be present",
        np.concatenate(
            [
                [GAME_ID_COL, NUM_PLAYERS_COL, TURN_COL, CURRENT_PLAYER_COL],
                BANK,
                DECKS,
                [ACTION_COL],
            ]
        ),
    ),
    Required(
        "missing value for a player in the game",
        np.concatenate(
            [PLAYER_POSITION[:, None], PLAYER_VP[:, None], PLAYER_GEMS, PLAYER_REDUCTION], axis=1
        ),  # (4, 13)
        per_player=True,
    ),
    Bound("negative value ({value})", COUNT_COLUMNS, lo=0),
    # Every count and index fits the compact int16 outputs; the game id an exact integer.
    Bound(f"value {{value}} too large (above {MAX_VALUE})", COUNT_COLUMNS, hi=MAX_VALUE),
    Bound(
        "game_id {value} too large (above 2**53)",
        np.array([GAME_ID_COL]),
        lo=-MAX_GAME_ID,
        hi=MAX_GAME_ID,
    ),
    Bound("noble_selection below -1 ({value})", np.array([NOBLE_SELECTION_COL]), lo=-1),
    PlayerCount(),
    Bound("turn_number below 1 ({value})", np.array([TURN_COL]), lo=1),
    # Seats: 0 <= seat < num_players; slot 0 is the current player.
    Bound(
        "seat {value} out of range for the player count",
        np.r_[CURRENT_PLAYER_COL, PLAYER_POSITION],
        hi=_seat_limits,
    ),
    Check(
        "current_player {value} differs from player0_position",
        np.array([CURRENT_PLAYER_COL]),
        _current_player_not_slot_0,
    ),
    # Bank: never above the starting size for the player count.
    Bound("bank holds {value}, more than its starting size", BANK, hi=_bank_limits),
    # Players: at most 7 of a colour, 5 gold, 10 tokens in all.
    Bound(
        "player holds {value} tokens of one colour, more than exist",
        PLAYER_GEMS.ravel(),
        hi=np.tile(np.r_[np.full(5, MAX_COLOUR_TOKENS), GOLD_TOKENS], NUM_PLAYER_SLOTS),
    ),
    Check(f"player holds more than {MAX_TOKENS} tokens", PLAYER_GEMS[:, 0], _too_many_tokens),
    # Cards (face-up and reserved): level 1..3 and a one-hot bonus when the card is there.
    Bound("card level {value} not in 1..3", _FIELDS[[F_LEVEL]], lo=1, hi=3, cards=True),
    Bound(
        "card bonus {value} is not 0 or 1: bonus is not one-hot",
        _FIELDS[F_BONUS],
        lo=0,
        hi=1,
        cards=True,
    ),
    Check(
        "card bonus is not one-hot (one 1 expected)",
        CARD_BLOCKS[:, F_BONUS][:, 0],
        _bonus_not_one_hot,
    ),
    # Reserved cards are listed in reservation order: slots fill left to right.
    Check(
        "reserved card slot used while an earlier slot is empty",
        PLAYER_RESERVED[:, 1:, 0].ravel(),
        _reserved_slot_skipped,
    ),
    # One game per file: rows whose game_id differs from the file's (most common) id.
    Check(
        lambda block: f"game_id {{value}} differs from the file's game_id {block.file_game_id:g}",
        np.array([GAME_ID_COL]),
        _game_id_differs,
    ),
)


# --- the whole-block test, derived from the rules --------------------------------------------


@dataclass(frozen=True)
class FastTable:
    """The rules' cell tests for blocks whose rows all have one player count: every present
    cell an integer in ``lo..hi`` (finite bounds, so that infinities fail), the ``required``
    columns present, and on a card that is there, its ``card_fields`` present."""

    lo: np.ndarray
    hi: np.ndarray
    required: np.ndarray
    card_fields: np.ndarray

    @classmethod
    def of(cls, rules: Collection[Rule], num_players: int) -> FastTable:
        assert any(isinstance(r, Integer) for r in rules)  # the table's test is an integer test
        finite = np.finfo(np.float64).max
        lo, hi = np.full(NUM_COLUMNS, -finite), np.full(NUM_COLUMNS, finite)
        required = np.zeros(NUM_COLUMNS, dtype=bool)
        card_fields = np.zeros(len(_FIELDS), dtype=bool)
        for rule in rules:
            if isinstance(rule, Bound):
                cols = rule.block_columns
                rule_lo, rule_hi = rule.limits(float(num_players))
                lo[cols] = np.maximum(lo[cols], rule_lo)
                hi[cols] = np.minimum(hi[cols], rule_hi)
                if rule.cards:
                    card_fields[rule.columns] = True
            elif isinstance(rule, Required):
                required[rule.required(num_players)] = True
        return cls(lo, hi, np.flatnonzero(required), np.flatnonzero(card_fields))

    def passes(self, block: Block) -> bool:
        values, missing = block.values, block.missing
        fine = np.rint(values)
        np.maximum(fine, self.lo, out=fine)
        np.minimum(fine, self.hi, out=fine)
        fine = fine == values  # NaN equals nothing: missing cells are or-ed in
        fine |= missing
        if not fine.all() or missing[:, self.required].any():
            return False
        incomplete = block.card_missing[self.card_fields].any(axis=0)  # (24, n)
        return not (incomplete & block.card_present).any()


_FAST_TABLES = {count: FastTable.of(RULES, count) for count in PLAYER_COUNTS}
_CHECKS = tuple(rule for rule in RULES if isinstance(rule, Check))
(_PLAYER_COUNT,) = (rule for rule in RULES if isinstance(rule, PlayerCount))


def _all_rows_valid(values: np.ndarray, num_players_ok: Collection[int]) -> bool:
    """Whole-block test, a few numpy calls: ``True`` guarantees that no rule of
    :data:`RULES` fires on any row (so :func:`validate_rows` has nothing to report).

    ``False`` only means "look closer": the detailed checks then decide. It is ``True`` when
    every row has the same allowed player count (:class:`PlayerCount`: then every bound is
    fixed per column), the :class:`FastTable` of that count passes (the :class:`Integer`, :class:`Required` and
    :class:`Bound` rules) and no :class:`Check` fires.
    """
    if not len(values):
        return True
    num_players = _PLAYER_COUNT.common(values, num_players_ok)
    if num_players not in _FAST_TABLES:
        return False
    block = Block(values, num_players_ok)
    if not _FAST_TABLES[int(num_players)].passes(block):
        return False
    return not any(check.fires(block) for check in _CHECKS)


def validate_rows(
    values: np.ndarray, num_players_ok: Collection[int] = PLAYER_COUNTS
) -> list[tuple[int, str, str]]:
    """Find impossible rows of a ``(n, 403)`` block (``COLUMNS`` order, NaN = missing).

    Returns ``(row_index, column, reason)`` for every bad row, one per row (its leftmost bad
    column), sorted by row. All checks are vectorised over the block. A block that passes
    the whole-block test :func:`_all_rows_valid` (the usual case) returns ``[]`` at once;
    otherwise every rule of :data:`RULES` runs to name each bad row's leftmost problem.

    >>> block = np.zeros((1, NUM_COLUMNS))
    >>> validate_rows(block)[0][1:]
    ('num_players', 'num_players 0 not in [2, 3, 4]')
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2 or values.shape[1] != NUM_COLUMNS:
        raise ValueError(f"expected a (n, {NUM_COLUMNS}) block, got shape {values.shape}")
    with np.errstate(invalid="ignore"):
        if _all_rows_valid(values, num_players_ok):
            return []
    return _detailed_problems(values, num_players_ok)


def _detailed_problems(
    values: np.ndarray, num_players_ok: Collection[int], rules: Collection[Rule] = RULES
) -> list[tuple[int, str, str]]:
    """:func:`validate_rows` without the fast path: every rule, cell by cell. A cell's
    comparisons with NaN are False, so no rule but :class:`Required` fires on a missing
    cell (and :class:`Bound` on a card that is there)."""
    n = len(values)
    block = Block(values, num_players_ok)
    none = NUM_COLUMNS  # "no problem" sentinel, larger than any column index
    best_col = np.full(n, none, dtype=np.int64)
    best_reason = np.zeros(n, dtype=np.int64)
    reasons: list[str] = []
    with np.errstate(invalid="ignore"):
        for rule in rules:
            found = rule.cells(block)
            if found is None or not found[0].any():
                continue
            bad, cols = found
            col = np.where(bad, np.asarray(cols, dtype=np.int64)[None, :], none).min(axis=1)
            better = col < best_col
            best_col[better] = col[better]
            best_reason[better] = len(reasons)
            reasons.append(rule.reason(block) if callable(rule.reason) else rule.reason)
    rows = np.flatnonzero(best_col < none)
    return [
        (
            int(i),
            COLUMNS[best_col[i]],
            reasons[best_reason[i]].format(value=f"{values[i, best_col[i]]:g}"),
        )
        for i in rows
    ]
