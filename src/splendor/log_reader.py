"""Read one game-log CSV (``gamelog-format.md``) into a float64 block, fast and strictly.

The reader accepts every quirk of the older exporters (``nan`` text and empty cells, integers
written as floats, 402-column files without ``current_player``, blind reserves written from a
different base) and turns everything else into precise :class:`~splendor.errors.Rejection` s:

- file-level problems (missing/unreadable file, directory, binary content, a header that is
  not UTF-8, empty file, wrong header) raise :class:`~splendor.errors.GameLogError`;
- a bad data row (wrong number of cells, bytes that are not UTF-8, non-numeric cell, unknown
  action type, a required value missing, an impossible value) is dropped and recorded (``on_bad_row="reject"``) or raised
  (``on_bad_row="raise"``).

Design: a body in the exporters' plain subset (either dialect: this project's, or the older
exporters' ``nan`` cells, float integers, CRLF lines, 402 columns) is tokenized by numpy
(:mod:`splendor.log_tokenizer`); anything else is parsed whole by pyarrow (explicit column
types, one thread) and converted to numpy in one call. Both give the same block bit for bit.
The value checks of :func:`validate_rows` are vectorised over the block. Only when pyarrow refuses the file (a ragged row or a cell that is not a
number) does the slow path split the lines with the ``csv`` module to find exactly which lines
and columns are at fault; the remaining good lines then go through the fast path again.
"""

from __future__ import annotations

import csv
import os
import re
import stat
from collections.abc import Collection
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from splendor.columns import (
    ACTION_CODE,
    ACTION_COL,
    ACTION_TYPES,
    BANK,
    CANONICAL_BLIND_BASE,
    CARD_RESERVATION_COL,
    CARDS,
    COL,
    COLUMNS,
    DECKS,
    F_BONUS,
    F_LEVEL,
    LEGACY_COLUMNS,
    NOBLE_SELECTION_COL,
    NUM_PLAYER_SLOTS,
    PLAYER_GEMS,
    PLAYER_POSITION,
    PLAYER_REDUCTION,
    PLAYER_RESERVED,
    PLAYER_VP,
)
from splendor.errors import GameLogError, Rejection
from splendor.limits import (
    GOLD_TOKENS,
    MAX_COLOUR_TOKENS,
    MAX_RESERVED,
    MAX_TOKENS,
    TOKENS_PER_COLOUR,
)
from splendor.log_tokenizer import parse_plain_rows

__all__ = ["GameLog", "read_game_log", "validate_rows", "NULL_VALUES"]

#: Cell texts read as a missing value (besides pyarrow reading ``NaN`` as a float NaN).
NULL_VALUES = ("", "nan", "NaN", "NAN")
BOM = b"\xef\xbb\xbf"

NUM_COLUMNS = len(COLUMNS)
GAME_ID_COL = COL["game_id"]
NUM_PLAYERS_COL = COL["num_players"]
TURN_COL = COL["turn_number"]
CURRENT_PLAYER_COL = COL["current_player"]

_ALL_COLUMNS = np.arange(NUM_COLUMNS)
MAX_VALUE = np.iinfo(np.int16).max  # any cell but the game id (they are int16 outputs)
MAX_GAME_ID = 2**53  # integers above are not exact in float64


@dataclass
class GameLog:
    """One game log, read.

    ``values``: float64 ``(n, 403)`` in ``columns.COLUMNS`` order, NaN = missing, the
    ``action_type`` column holding the action code and ``card_reservation`` normalised to the
    blind base 12. ``line_numbers``: int64 ``(n,)`` 1-based file line of each kept row (the
    header is line 1). ``rows_read``: data rows seen (kept + rejected). ``rejections``: the rows
    dropped. ``num_columns``: 403, or 402 for a file without ``current_player``.
    """

    path: str
    values: np.ndarray
    line_numbers: np.ndarray
    rows_read: int
    rejections: list[Rejection] = field(default_factory=list)
    num_columns: int = NUM_COLUMNS

    def __len__(self) -> int:
        return len(self.values)


# --- value checks ------------------------------------------------------------------------


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


# --- reading -------------------------------------------------------------------------------

_ARROW_PARSE = pacsv.ParseOptions(delimiter=",")


def _convert_options(columns: list[str]) -> pacsv.ConvertOptions:
    types = {name: pa.float64() for name in columns}
    types["action_type"] = pa.string()
    return pacsv.ConvertOptions(
        column_types=types,
        null_values=list(NULL_VALUES),
        strings_can_be_null=True,
        quoted_strings_can_be_null=True,
    )


_CONVERT = {
    NUM_COLUMNS: _convert_options(COLUMNS),
    NUM_COLUMNS - 1: _convert_options(LEGACY_COLUMNS),
}
_ACTION_SET = pa.array(ACTION_TYPES)
_ACTION_WORDS = {name.encode(): code for name, code in ACTION_CODE.items()}
_NULL_WORDS = frozenset(text.encode() for text in NULL_VALUES)


def tokenize_plain_body(
    body: bytes, columns: list[str] = COLUMNS
) -> tuple[np.ndarray, dict[int, str]] | None:
    """The data rows (header excluded) of a file in the ``columns`` layout (``COLUMNS`` or
    ``LEGACY_COLUMNS``) by the numpy tokenizer (:func:`splendor.log_tokenizer.parse_plain_rows`):
    the same ``(n, 403)`` block and unknown actions as the pyarrow path (``current_player``
    copied from ``player0_position`` in a legacy layout), or ``None`` when the body is not
    plain exporter output, of either dialect."""
    if len(columns) == NUM_COLUMNS:
        return parse_plain_rows(body, NUM_COLUMNS, ACTION_COL, _ACTION_WORDS, _NULL_WORDS)
    plain = parse_plain_rows(body, NUM_COLUMNS - 1, ACTION_COL - 1, _ACTION_WORDS, _NULL_WORDS)
    if plain is None:
        return None
    legacy, unknown = plain
    values = np.empty((len(legacy), NUM_COLUMNS))
    values[:, :CURRENT_PLAYER_COL] = legacy[:, :CURRENT_PLAYER_COL]
    values[:, CURRENT_PLAYER_COL] = legacy[:, PLAYER_POSITION[0] - 1]
    values[:, CURRENT_PLAYER_COL + 1 :] = legacy[:, CURRENT_PLAYER_COL:]
    return values, unknown


# What pyarrow's float conversion accepts (after csv unquoting): decimal numbers with an
# optional exponent, inf/infinity/nan, surrounding spaces. The slow path uses it to name the
# cells pyarrow refused.
_NUMBER = re.compile(
    r"\s*[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|inf(?:inity)?|nan)\s*", re.IGNORECASE
)


class _ParseError(Exception):
    """pyarrow refused the data rows (ragged row or a cell that is not a number)."""


def _arrow_block(body: pa.Buffer, columns: list[str]) -> tuple[np.ndarray, dict[int, str]]:
    """Parse header-less data rows: the float64 (n, 403) block and the unknown action texts.

    The action column of the block is the code 0..3, NaN when the cell is missing or unknown;
    the dict maps the row index of each unknown action to its text.
    """
    read = pacsv.ReadOptions(use_threads=False, column_names=columns)
    try:
        table = pacsv.read_csv(
            body,
            read_options=read,
            parse_options=_ARROW_PARSE,
            convert_options=_CONVERT[len(columns)],
        )
    except pa.ArrowInvalid as exc:
        raise _ParseError(str(exc)) from exc
    action_text = table.column("action_type")
    codes = pc.index_in(action_text, value_set=_ACTION_SET)  # null: missing or unknown
    # Put the codes where the text was (and current_player, from player0_position, into a
    # legacy table), so one conversion gives the (n, 403) block in COLUMNS order.
    action_col = ACTION_COL if len(columns) == NUM_COLUMNS else ACTION_COL - 1
    table = table.set_column(action_col, "action_type", pc.cast(codes, pa.float64()))
    if len(columns) != NUM_COLUMNS:
        player0 = table.column("player0_position")
        table = table.add_column(CURRENT_PLAYER_COL, "current_player", player0)
    if table.num_rows == 0:
        out = np.empty((0, NUM_COLUMNS))
    else:
        if table.column(0).num_chunks > 1:
            table = table.combine_chunks()
        (batch,) = table.to_batches()
        out = np.asarray(batch.to_tensor(null_to_nan=True, row_major=True))
    unknown: dict[int, str] = {}
    if codes.null_count != action_text.null_count:  # some text is not an action type
        is_unknown = pc.and_(pc.is_null(codes), pc.is_valid(action_text))
        for i in np.flatnonzero(is_unknown.to_numpy(zero_copy_only=False)):
            unknown[int(i)] = action_text[int(i)].as_py()
    return out, unknown


def _line_spans(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Start and end offsets (``\\n`` and a trailing ``\\r`` excluded) of every line."""
    buf = np.frombuffer(data, dtype=np.uint8)
    newlines = np.flatnonzero(buf == 10)
    starts = np.concatenate([[0], newlines + 1])
    ends = np.concatenate([newlines, [len(data)]])
    if starts[-1] == len(data):  # the file ends with a newline: no line after it
        starts, ends = starts[:-1], ends[:-1]
    cr = (ends > starts) & (buf[np.maximum(ends - 1, 0)] == 13)
    return starts, ends - cr


def _error(file: str, reason: str, column: str | None = None, rows: int = 0) -> GameLogError:
    return GameLogError(Rejection(file, None, column, reason, rows=rows))


def _load(source, label: str | None) -> tuple[bytes, str]:
    """The raw bytes of ``source`` and the name to use in messages."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source), label or "<bytes>"
    name = label or os.fspath(source)
    path = os.fspath(source)
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if "://" in path:
        import fsspec

        try:
            with fsspec.open(path, "rb") as f:
                return f.read(), name
        except IsADirectoryError:
            raise _error(name, "not a regular file (a directory)") from None
        except (OSError, ValueError) as exc:
            fs, inner = fsspec.core.url_to_fs(path)
            if fs.isdir(inner):
                raise _error(name, "not a regular file (a directory)") from None
            raise _error(name, f"unreadable: {exc}") from None
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):
            kind = "a directory" if stat.S_ISDIR(st.st_mode) else "not a file"
            raise _error(name, f"not a regular file ({kind})")
        with open(path, "rb") as f:
            return f.read(), name
    except OSError as exc:
        raise _error(name, f"unreadable: {exc.strerror or exc}") from None


def _header_problem(found: list[str]) -> tuple[str, str] | None:
    """``(column, reason)`` when the header is neither ``COLUMNS`` nor ``LEGACY_COLUMNS``."""
    if found == COLUMNS or found == LEGACY_COLUMNS:
        return None
    # Compare with the layout it resembles most: legacy when current_player is absent.
    expected = COLUMNS if "current_player" in found else LEGACY_COLUMNS
    for i, (want, got) in enumerate(zip(expected, found, strict=False)):
        if want != got:
            return got, f"header column {i + 1} is {got!r}, expected {want!r}"
    if len(found) < len(expected):
        missing = expected[len(found)]
        return missing, f"header has {len(found)} columns: column {missing!r} and after are missing"
    extra = found[len(expected)]
    return extra, f"header has {len(found)} columns: unexpected column {extra!r} after the last one"


#: The header lines the exporters write, byte for byte, and the layout each announces.
_HEADER_LAYOUTS = {
    ",".join(COLUMNS).encode(): COLUMNS,
    ",".join(LEGACY_COLUMNS).encode(): LEGACY_COLUMNS,
}


def _parse_header(data: bytes, header_end: int, name: str) -> list[str]:
    """The layout of a header that is not byte for byte an exporter's (quoted names...).

    Raises :class:`GameLogError` when the header is not UTF-8, not a CSV row, or names
    other columns than ``COLUMNS`` / ``LEGACY_COLUMNS``.
    """
    try:
        header_text = data[:header_end].decode("utf-8").rstrip("\r")
    except UnicodeDecodeError as exc:
        raise _error(
            name, f"not UTF-8 text (header, byte offset {exc.start})", rows=_count_rows(data)
        ) from None
    try:
        header = next(csv.reader([header_text]), [])
    except csv.Error as exc:  # e.g. a carriage return inside the header line
        raise _error(name, f"header is not a CSV row: {exc}", rows=_count_rows(data)) from None
    problem = _header_problem(header)
    if problem is not None:
        raise _error(name, problem[1], column=problem[0], rows=_count_rows(data))
    return COLUMNS if len(header) == NUM_COLUMNS else LEGACY_COLUMNS


def read_game_log(
    source,
    *,
    blind_reserve_base: int = CANONICAL_BLIND_BASE,
    on_bad_row: str = "reject",
    label: str | None = None,
) -> GameLog:
    """Read one game log.

    ``source``: a path (str or PathLike), an fsspec URL (anything with ``://``), or the raw
    ``bytes`` of a file (``label`` names it in messages; it also overrides the name of a path).
    ``blind_reserve_base``: the file's first blind-reserve code (12 canonical, 11 for the older
    exporter); values >= it in ``card_reservation`` are shifted to the base 12.
    ``on_bad_row``: ``"reject"`` drops bad rows and records them in ``rejections``; ``"raise"``
    raises a :class:`GameLogError` for the first bad row. File-level problems always raise.
    """
    if on_bad_row not in ("reject", "raise"):
        raise ValueError(f"on_bad_row must be 'reject' or 'raise', not {on_bad_row!r}")
    if isinstance(blind_reserve_base, bool) or not isinstance(blind_reserve_base, int):
        raise ValueError(f"blind_reserve_base must be an int, not {blind_reserve_base!r}")

    data, name = _load(source, label)
    if data.startswith(BOM):
        data = data[len(BOM) :]

    if not data or data.isspace():  # (strip() would copy the whole file)
        raise _error(name, "empty file: no header")
    header_end = data.find(b"\n")
    header_end = len(data) if header_end < 0 else header_end
    # Bytes that are not UTF-8 (or NUL bytes) in the header make the file unreadable; in a
    # data row they only cost that row (the slow path names it).
    utf8 = data.isascii() or _is_utf8(data)
    columns = _HEADER_LAYOUTS.get(data[:header_end].rstrip(b"\r"))
    if columns is None:  # not byte for byte an exporter's header: parse it as a CSV row
        if b"\x00" in data:  # and not a game log's header: a binary file
            raise _error(
                name, "binary content (NUL bytes), not a CSV text file", rows=_count_rows(data)
            )
        columns = _parse_header(data, header_end, name)

    body_offset = min(header_end + 1, len(data))
    plain = None
    if utf8:  # plain exporter output (either dialect): the numpy tokenizer, no pyarrow
        plain = tokenize_plain_body(data[body_offset:], columns)
    if plain is not None:
        values, unknown = plain
        rows_read = len(values)
        line_numbers = np.arange(2, rows_read + 2, dtype=np.int64)  # no blank lines
        rejections: list[Rejection] = []
    else:
        values, unknown, line_numbers, rows_read, rejections = _parse_rows(
            data, body_offset, columns, utf8, name
        )
    if rows_read == 0:  # header only (pyarrow would call a body without rows an empty file)
        return GameLog(name, np.empty((0, NUM_COLUMNS)), line_numbers, 0, [], len(columns))

    # Decode: blind reserves to base 12.
    res = values[:, CARD_RESERVATION_COL]
    shift = res >= blind_reserve_base
    res[shift] += CANONICAL_BLIND_BASE - blind_reserve_base

    bad = np.zeros(len(values), dtype=bool)
    for i, text in unknown.items():
        bad[i] = True
        rejections.append(
            Rejection(name, int(line_numbers[i]), "action_type", f"unknown action type {text!r}")
        )
    for i, column, reason in validate_rows(values):
        if bad[i]:
            continue
        bad[i] = True
        if column == "current_player" and columns is LEGACY_COLUMNS:
            column = "player0_position"  # the file has no current_player: it came from here
        rejections.append(Rejection(name, int(line_numbers[i]), column, reason))

    rejections.sort(key=lambda r: r.line)
    if rejections and on_bad_row == "raise":
        raise GameLogError(rejections[0])
    if bad.any():
        values, line_numbers = values[~bad], line_numbers[~bad]
    return GameLog(
        path=name,
        values=values,
        line_numbers=line_numbers,
        rows_read=rows_read,
        rejections=rejections,
        num_columns=len(columns),
    )


def _parse_rows(data: bytes, body_offset: int, columns: list[str], utf8: bool, name: str):
    """The data rows by pyarrow (the slow path names the lines it refuses): the block, the
    unknown actions, line numbers, rows read and row rejections."""
    starts, ends = _line_spans(data)
    nonblank = np.flatnonzero(ends > starts)
    nonblank = nonblank[nonblank > 0]  # line index 0 is the header
    line_numbers = (nonblank + 1).astype(np.int64)
    rows_read = len(nonblank)

    if rows_read == 0:
        return np.empty((0, NUM_COLUMNS)), {}, line_numbers, 0, []

    rejections: list[Rejection] = []
    try:
        if not utf8:
            raise _ParseError("not UTF-8")
        values, unknown = _arrow_block(pa.py_buffer(data)[body_offset:], columns)
        if len(values) != rows_read:  # pyarrow and the line count disagree: be precise
            raise _ParseError("row count mismatch")
    except _ParseError:
        values, unknown, line_numbers, rejections = _slow_path(
            data, starts[nonblank], ends[nonblank], line_numbers, columns, name
        )
    return values, unknown, line_numbers, rows_read, rejections


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _count_rows(data: bytes) -> int:
    """Data rows of a file that is rejected as a whole (non-blank lines after the first,
    which is the header even when blank)."""
    starts, ends = _line_spans(data)
    return int(np.count_nonzero(ends[1:] > starts[1:]))


def _slow_path(
    data: bytes,
    starts: np.ndarray,
    ends: np.ndarray,
    line_numbers: np.ndarray,
    columns: list[str],
    name: str,
) -> tuple[np.ndarray, dict[int, str], np.ndarray, list[Rejection]]:
    """Find the lines pyarrow refused, reject them, and parse the others with pyarrow.

    Each physical line is one record (as in the fast path, which does not allow newlines in
    values). Returns the block, the unknown-action texts, the kept line numbers, rejections.
    """
    ncols = len(columns)
    action_index = columns.index("action_type")
    good: list[int] = []
    rejections: list[Rejection] = []
    for k, (start, end) in enumerate(zip(starts.tolist(), ends.tolist(), strict=True)):
        line = int(line_numbers[k])
        raw = data[start:end]
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            cell = raw[: exc.start].count(b",")
            column = columns[cell] if cell < ncols else None
            byte = f"0x{raw[exc.start]:02x}"
            reason = f"not UTF-8 text (byte {byte} at offset {exc.start} of the line)"
            rejections.append(Rejection(name, line, column, reason))
            continue
        if "\r" in text:  # a line break (for pyarrow) in the middle of the row
            cell = text[: text.index("\r")].count(",")
            column = columns[cell] if cell < ncols else None
            reason = "carriage return inside the row: a line break in the middle of a cell"
            rejections.append(Rejection(name, line, column, reason))
            continue
        try:
            cells = next(csv.reader([text]), [])
        except csv.Error as exc:
            rejections.append(Rejection(name, line, None, f"not a CSV row: {exc}"))
            continue
        if len(cells) != ncols:
            if len(cells) < ncols:
                column = columns[len(cells)]
                reason = f"too few cells: expected {ncols}, found {len(cells)}"
            else:
                column = None
                reason = f"too many cells: expected {ncols}, found {len(cells)}"
                if len(cells) - ncols == CARDS.shape[1]:  # as many as a card has
                    reason += f" ({CARDS.shape[1]} extra cells: a 4th reserved card?)"
            rejections.append(Rejection(name, line, column, reason))
            continue
        for j, cell in enumerate(cells):
            if j != action_index and cell not in NULL_VALUES and not _NUMBER.fullmatch(cell):
                rejections.append(Rejection(name, line, columns[j], f"not a number: {cell!r}"))
                break
        else:
            good.append(k)

    if not good:
        return np.empty((0, NUM_COLUMNS)), {}, line_numbers[:0], rejections
    body = b"\n".join(data[starts[k] : ends[k]] for k in good)
    try:
        values, unknown = _arrow_block(pa.py_buffer(body), columns)
    except _ParseError as exc:  # the line checks above should have caught it
        raise _error(name, f"unparseable: {exc}", rows=len(starts)) from None
    if len(values) != len(good):
        raise _error(
            name, "unparseable: row count mismatch after dropping bad lines", rows=len(starts)
        )
    return values, unknown, line_numbers[good], rejections
