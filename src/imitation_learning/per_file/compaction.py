"""Fill missing state values, compact the face-up cards and build the compact-dtype ``df``.

Input: raw log rows, float64 ``(n, 403)`` in ``columns.COLUMNS`` order with NaN for missing
values (what ``splendor.log_reader.read_game_log`` returns in ``GameLog.values``).

What ``docs/dataset.md`` asks of the ``df``:

- missing *state* values become 0; the decision columns keep their NaN;
- face-up cards are compacted: the present cards move to the front in slot order across
  all 12 slots and the empty slots go to the end, so ``card{i}_*`` is the card with running
  index ``i`` (the index ``card_selection`` / ``card_reservation`` use);
- ``card{i}_position`` is ``i`` for a present card and -1 for an empty one;
- ``player{k}_reserved{r}_position`` is ``12 + r`` when that reserved card exists, else -1;
- compact dtypes: ``game_id`` int64, the other state columns int16, ``action_type`` a
  Categorical of the 4 action names, the other decision columns float32, positions int8.

Everything is vectorised over the rows; the frame is assembled from a handful of 2-D
same-dtype blocks rather than one Series per column.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

try:  # public since pandas 3.0
    from pandas.api.internals import create_dataframe_from_blocks
except ImportError:  # pragma: no cover - older pandas
    create_dataframe_from_blocks = None

from splendor import columns as C
from splendor.limits import MAX_RESERVED

CARD_POSITION_COLUMNS: list[str] = [f"card{i}_position" for i in range(C.NUM_VISIBLE)]
RESERVED_POSITION_COLUMNS: list[str] = [
    f"player{k}_reserved{r}_position"
    for k in range(C.NUM_PLAYER_SLOTS)
    for r in range(MAX_RESERVED)
]
POSITION_COLUMNS: list[str] = CARD_POSITION_COLUMNS + RESERVED_POSITION_COLUMNS
FRAME_COLUMNS: list[str] = list(C.COLUMNS) + POSITION_COLUMNS  # 403 + 24 = 427

# Column groups of the frame, each contiguous in the 403-column order.
_STATE_COLUMNS = list(C.STATE_COLUMNS)
_DECISION_FLOAT_COLUMNS = list(C.DECISION_COLUMNS[1:])  # everything after action_type
_STATE = C.STATE_SLICE
_DECISION_FLOAT = slice(C.ACTION_COL + 1, len(C.COLUMNS))

# The 144 face-up card columns, slot-major (slot i -> 12 fields), contiguous in the log.
_CARD_BLOCK = slice(int(C.CARDS[0, 0]), int(C.CARDS[-1, -1]) + 1)
assert (np.arange(_CARD_BLOCK.start, _CARD_BLOCK.stop) == C.CARDS.reshape(-1)).all()
_RESERVED_LEVEL = C.PLAYER_RESERVED[:, :, C.F_LEVEL]  # (4, 3)

# Placement of each dtype block in the frame's columns.
_GAME_ID_PLACE = np.array([0])
_STATE_PLACE = np.arange(_STATE.start, _STATE.stop)
_ACTION_PLACE = np.array([C.ACTION_COL])
_DECISION_FLOAT_PLACE = np.arange(_DECISION_FLOAT.start, _DECISION_FLOAT.stop)
_POSITION_PLACE = np.arange(len(C.COLUMNS), len(FRAME_COLUMNS))
_FRAME_INDEX = pd.Index(FRAME_COLUMNS)

_ACTION_CATEGORIES = pd.CategoricalDtype(categories=list(C.ACTION_TYPES), ordered=False)


@dataclass
class Compacted:
    """Rows after filling and compaction, with the presence masks the features need.

    ``values``: float64 ``(n, 403)``, ``columns.COLUMNS`` order; state values filled (NaN ->
    0) and face-up cards compacted; decision columns untouched (NaN kept).
    ``card_present``: bool ``(n, 12)`` in *compacted* order (True exactly for the first
    ``count`` positions). ``reserved_present``: bool ``(n, 4, 3)``. ``noble_present``: bool
    ``(n, 5)``. ``player_present``: bool ``(n, 4)`` (slot ``k < num_players``).
    """

    values: np.ndarray
    card_present: np.ndarray
    reserved_present: np.ndarray
    noble_present: np.ndarray
    player_present: np.ndarray

    def __len__(self) -> int:
        return len(self.values)

    def rows(self, rows: slice) -> Compacted:
        """These rows only (views)."""
        return Compacted(
            values=self.values[rows],
            card_present=self.card_present[rows],
            reserved_present=self.reserved_present[rows],
            noble_present=self.noble_present[rows],
            player_present=self.player_present[rows],
        )

    @property
    def card_positions(self) -> np.ndarray:
        """int8 ``(n, 12)``: ``i`` for a present card at running index ``i``, else -1."""
        return np.where(self.card_present, np.arange(C.NUM_VISIBLE, dtype=np.int8), -1).astype(
            np.int8, copy=False
        )

    @property
    def reserved_positions(self) -> np.ndarray:
        """int8 ``(n, 12)``, slot-major ``k * 3 + r``: ``12 + r`` if reserved card exists, else -1."""
        pos = np.arange(C.NUM_VISIBLE, C.NUM_VISIBLE + MAX_RESERVED, dtype=np.int8)
        out = np.where(self.reserved_present, pos, -1).astype(np.int8, copy=False)
        return out.reshape(len(out), C.NUM_PLAYER_SLOTS * MAX_RESERVED)


def compact(values: np.ndarray) -> Compacted:
    """Fill missing state values with 0 and move present face-up cards to the front.

    A face-up slot is present when its ``level`` is not missing (a reserved card likewise, a
    noble when its ``vp`` is not missing), as in ``labels`` and ``masks``. The relative order
    of present cards (slot order) is kept, so the card at running index ``i`` ends up in
    ``card{i}_*``. Nothing is modified in ``values``.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2 or values.shape[1] != len(C.COLUMNS):
        raise ValueError(f"expected (n, {len(C.COLUMNS)}) values, got {values.shape}")
    n = len(values)

    cards = values[:, _CARD_BLOCK].reshape(n, C.NUM_VISIBLE, len(C.CARD_FIELDS))
    slot_present = ~np.isnan(cards[:, :, C.F_LEVEL])  # (n, 12)
    count = slot_present.sum(axis=1)
    card_present = np.arange(C.NUM_VISIBLE)[None, :] < count[:, None]

    out = values.copy()
    # Only rows with an empty slot before a present one need moving (usually few).
    gaps = np.flatnonzero((slot_present != card_present).any(axis=1))
    if gaps.size:
        # Stable sort on "is empty": present slots first, each group in slot order.
        order = np.argsort(~slot_present[gaps], axis=1, kind="stable")
        flat = (order + (gaps * C.NUM_VISIBLE)[:, None]).reshape(-1)
        moved = cards.reshape(n * C.NUM_VISIBLE, -1)[flat]
        out[gaps, _CARD_BLOCK] = moved.reshape(gaps.size, -1)
    state = out[:, _STATE]  # a view: filled in place
    np.copyto(state, 0.0, where=np.isnan(state))

    reserved_present = ~np.isnan(values[:, _RESERVED_LEVEL])  # (n, 4, 3)
    noble_present = ~np.isnan(values[:, C.NOBLES[:, 0]])  # (n, 5)
    num_players = out[:, C.COL["num_players"]]
    player_present = np.arange(C.NUM_PLAYER_SLOTS)[None, :] < num_players[:, None]
    return Compacted(
        values=out,
        card_present=card_present,
        reserved_present=reserved_present,
        noble_present=noble_present,
        player_present=player_present,
    )


def _action_categorical(codes: np.ndarray) -> pd.Categorical:
    codes = np.asarray(codes, dtype=np.float64)
    valid = (codes >= 0) & (codes < len(C.ACTION_TYPES))  # NaN compares False
    int_codes = np.where(valid, codes, -1).astype(np.int8)
    return pd.Categorical.from_codes(int_codes, dtype=_ACTION_CATEGORIES)


def build_frame(compacted: Compacted, action_codes: np.ndarray | None = None) -> pd.DataFrame:
    """The ``df`` of ``docs/dataset.md`` for these rows (427 columns, compact dtypes).

    ``action_codes``: the action code of each row (defaults to the ``action_type`` column of
    ``compacted.values``); a code outside 0..3 or NaN becomes a missing category.
    """
    v = compacted.values
    n = len(v)
    if action_codes is None:
        action_codes = v[:, C.ACTION_COL]
    # Each block is the transpose of a row-major (n, columns) array: no transposing copy
    # here, and the job's concatenation of the files' frames and its gathers of columns
    # for X then copy whole rows (pandas keeps a block's memory order through both).
    blocks = [
        (v[:, :1].T.astype(np.int64), _GAME_ID_PLACE),
        (v[:, _STATE].astype(np.int16).T, _STATE_PLACE),
        (_action_categorical(action_codes), _ACTION_PLACE),
        (v[:, _DECISION_FLOAT].astype(np.float32).T, _DECISION_FLOAT_PLACE),
        (
            np.concatenate([compacted.card_positions, compacted.reserved_positions], axis=1).T,
            _POSITION_PLACE,
        ),
    ]
    return _frame_from_blocks(blocks, n)


def _frame_from_blocks(blocks: list[tuple], n: int) -> pd.DataFrame:
    """Assemble the frame straight from its 5 dtype blocks (no per-column Series)."""
    index = pd.RangeIndex(n)
    if create_dataframe_from_blocks is not None:
        return create_dataframe_from_blocks(blocks, index=index, columns=_FRAME_INDEX)
    # pandas < 3: one DataFrame per block, concatenated side by side (slower, same result).
    parts = []
    for array, place in blocks:
        names = [FRAME_COLUMNS[i] for i in place]
        if isinstance(array, pd.Categorical):
            parts.append(pd.DataFrame({names[0]: array}, index=index))
        else:
            parts.append(pd.DataFrame(array.T, columns=names, index=index))
    return pd.concat(parts, axis=1)


def empty_frame() -> pd.DataFrame:
    """A 0-row ``df`` with the 427 columns and dtypes of :func:`build_frame`."""
    return build_frame(compact(np.empty((0, len(C.COLUMNS)))))
