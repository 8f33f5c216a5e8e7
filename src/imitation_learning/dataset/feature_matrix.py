"""The columns of X: their order, names and kinds, and X built from a file's outputs.

This module owns the column schema of the feature matrix: which log columns enter X (not
the id, the metadata or the decisions, ``METADATA_COLUMNS`` / ``EXCLUDED_LOG_COLUMNS``),
the 24 position columns, the strategic features, the one-hot columns of the player count
and of the rotated seats, the kind of each column (:data:`KINDS`: only ``continuous``
columns are standardised), and :func:`build_feature_matrix`, which fills X (float32) in
that order from the compact ``df`` and the strategic features.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from imitation_learning.per_file import features
from imitation_learning.per_file.memory_pages import normal_pages
from splendor import columns as C
from splendor.limits import MAX_RESERVED, PLAYER_COUNTS

# Column kinds of X. Only "continuous" columns are standardised.
CONTINUOUS = "continuous"
BINARY = "binary"  # 0/1 by construction (card bonus one-hots, feature flags)
POSITION = "position"  # card{i}_position, player{k}_reserved{r}_position (index or -1)
ONEHOT = "onehot"  # one-hot encodings added here (num_players, rotated seats)
KINDS = (CONTINUOUS, BINARY, POSITION, ONEHOT)

# Log columns left out of X: the id, the metadata, and the decisions (they are the labels).
METADATA_COLUMNS = ["num_players", "turn_number", "current_player"] + [
    f"player{k}_position" for k in range(C.NUM_PLAYER_SLOTS)
]
EXCLUDED_LOG_COLUMNS = frozenset(["game_id", *METADATA_COLUMNS, *C.DECISION_COLUMNS])
LOG_FEATURE_COLUMNS: list[str] = [c for c in C.STATE_COLUMNS if c not in EXCLUDED_LOG_COLUMNS]

CARD_POSITION_COLUMNS = [f"card{i}_position" for i in range(C.NUM_VISIBLE)]
RESERVED_POSITION_COLUMNS = [
    f"player{k}_reserved{r}_position"
    for k in range(C.NUM_PLAYER_SLOTS)
    for r in range(MAX_RESERVED)
]
POSITION_COLUMNS = CARD_POSITION_COLUMNS + RESERVED_POSITION_COLUMNS

NUM_PLAYERS_ONEHOT = [f"num_players_{n}" for n in PLAYER_COUNTS]
SEAT_ONEHOT = [
    f"player{k}_seat_{s}" for k in range(C.NUM_PLAYER_SLOTS) for s in range(C.NUM_PLAYER_SLOTS)
]


def strategic_feature_kinds(names: Sequence[str]) -> list[str]:
    """Kind of each strategic feature: ``binary`` for the 0/1 flags
    (:func:`imitation_learning.per_file.features.get_binary_feature_names`), else ``continuous``."""
    binary = set(features.get_binary_feature_names())
    return [BINARY if n in binary else CONTINUOUS for n in names]


def _log_column_kind(name: str) -> str:
    return BINARY if "_bonus_" in name else CONTINUOUS


def _strategic_names(width: int, names: Sequence[str] | None) -> list[str]:
    if width == 0:
        return []
    if names is None:
        names = features.get_all_feature_names()
    names = list(names)
    if len(names) != width:
        raise ValueError(f"strategic features have {width} columns but {len(names)} names")
    return names


NUM_ONEHOT = len(NUM_PLAYERS_ONEHOT) + len(SEAT_ONEHOT)
#: Columns of X that are not strategic features (log, position and one-hot columns).
NUM_FIXED_COLUMNS = len(LOG_FEATURE_COLUMNS) + len(POSITION_COLUMNS) + NUM_ONEHOT


def feature_columns(
    strategic_width: int, strategic_names: Sequence[str] | None = None
) -> tuple[list[str], list[str]]:
    """The names and kinds of the columns of X when the strategic features have
    ``strategic_width`` columns (see :func:`build_feature_matrix` for the order)."""
    s_names = _strategic_names(strategic_width, strategic_names)
    names = LOG_FEATURE_COLUMNS + POSITION_COLUMNS + s_names + NUM_PLAYERS_ONEHOT + SEAT_ONEHOT
    kinds = (
        [_log_column_kind(c) for c in LOG_FEATURE_COLUMNS]
        + [POSITION] * len(POSITION_COLUMNS)
        + strategic_feature_kinds(s_names)
        + [ONEHOT] * NUM_ONEHOT
    )
    return names, kinds


def build_feature_matrix(
    df: pd.DataFrame,
    strategic_features: np.ndarray,
    strategic_names: Sequence[str] | None = None,
) -> tuple[np.ndarray, list[str], list[str]]:
    """X (float32, (n, F)), its column names and the kind of each column.

    Columns, in this order: the numeric log state columns (``LOG_FEATURE_COLUMNS``: no
    game_id, metadata or decision column), the 24 position columns, the strategic features
    (names from ``get_all_feature_names()`` unless given), the one-hot of ``num_players``
    (2/3/4) and of the rotated seats (``player{k}_seat_{s}``: slot k sits at absolute seat
    s; all zeros for a slot beyond ``num_players``). Kinds are in :data:`KINDS`.
    """
    n = len(df)
    strategic_features = np.asarray(strategic_features)
    if strategic_features.ndim != 2 or strategic_features.shape[0] != n:
        raise ValueError(f"strategic features of shape {strategic_features.shape} for {n} rows")
    names, kinds = feature_columns(strategic_features.shape[1], strategic_names)
    s_names = names[len(LOG_FEATURE_COLUMNS) + len(POSITION_COLUMNS) : len(names) - NUM_ONEHOT]

    with normal_pages():  # written once, kept: see imitation_learning.per_file.memory_pages
        X = np.zeros((n, len(names)), dtype=np.float32)
    start = 0
    for block in (LOG_FEATURE_COLUMNS, POSITION_COLUMNS):
        stop = start + len(block)
        X[:, start:stop] = df[block].to_numpy()
        start = stop
    stop = start + len(s_names)
    X[:, start:stop] = strategic_features
    start = stop

    num_players = df["num_players"].to_numpy().astype(np.int64)
    rows = np.arange(n)
    for j, count in enumerate(PLAYER_COUNTS):
        X[:, start + j] = num_players == count
    start += len(PLAYER_COUNTS)
    for k in range(C.NUM_PLAYER_SLOTS):
        seat = df[f"player{k}_position"].to_numpy().astype(np.int64)
        present = (k < num_players) & (seat >= 0) & (seat < C.NUM_PLAYER_SLOTS)
        base = start + k * C.NUM_PLAYER_SLOTS
        X[rows[present], base + seat[present]] = 1.0
    assert start + len(SEAT_ONEHOT) == len(names)
    return X, names, kinds
