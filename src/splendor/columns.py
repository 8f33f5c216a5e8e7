"""The game-log CSV layout and the class tables of the 7 prediction heads.

Single source of truth for column names, their positions and the label encodings
(``docs/input-format.md``). Everything that reads or writes logs, and every
preprocessing step, takes its indices from here.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np

from splendor.limits import MAX_RESERVED

COLOURS = ("white", "blue", "green", "red", "black")
COLOURS_GOLD = COLOURS + ("gold",)
SHORT = "WBGRK"

NUM_VISIBLE = 12  # face-up slots: 0-3 level 1, 4-7 level 2, 8-11 level 3
NUM_NOBLE_SLOTS = 5
NUM_PLAYER_SLOTS = 4
#: The first blind-reserve code of the current format (12, 13, 14: levels 1, 2, 3).
CANONICAL_BLIND_BASE = NUM_VISIBLE

CARD_FIELDS = (
    ("vp", "level") + tuple(f"cost_{c}" for c in COLOURS) + tuple(f"bonus_{c}" for c in COLOURS)
)  # 12 fields per card
NOBLE_FIELDS = ("vp",) + tuple(f"req_{c}" for c in COLOURS)  # 6 per noble

ACTION_TYPES = ("build", "reserve", "take 2 tokens", "take 3 tokens")
ACTION_CODE = {name: i for i, name in enumerate(ACTION_TYPES)}
BUILD, RESERVE, TAKE2, TAKE3 = range(4)


def _player_columns(k: int) -> list[str]:
    cols = [f"player{k}_position", f"player{k}_vp"]
    cols += [f"player{k}_gems_{c}" for c in COLOURS_GOLD]
    cols += [f"player{k}_reduction_{c}" for c in COLOURS]
    for r in range(MAX_RESERVED):
        cols += [f"player{k}_reserved{r}_{f}" for f in CARD_FIELDS]
    return cols


STATE_COLUMNS: list[str] = (
    ["num_players", "turn_number", "current_player"]
    + [f"gems_board_{c}" for c in COLOURS_GOLD]
    + [f"card{i}_{f}" for i in range(NUM_VISIBLE) for f in CARD_FIELDS]
    + [f"deck_level{lv}_remaining" for lv in (1, 2, 3)]
    + [f"noble{j}_{f}" for j in range(NUM_NOBLE_SLOTS) for f in NOBLE_FIELDS]
    + [c for k in range(NUM_PLAYER_SLOTS) for c in _player_columns(k)]
)
DECISION_COLUMNS: list[str] = (
    ["action_type", "card_selection", "card_reservation"]
    + [f"gem_take3_{c}" for c in COLOURS]
    + [f"gem_take2_{c}" for c in COLOURS]
    + ["noble_selection"]
    + [f"gems_removed_{c}" for c in COLOURS_GOLD]
)
COLUMNS: list[str] = ["game_id"] + STATE_COLUMNS + DECISION_COLUMNS
LEGACY_COLUMNS: list[str] = [c for c in COLUMNS if c != "current_player"]  # 402-column files

assert len(STATE_COLUMNS) == 382 and len(DECISION_COLUMNS) == 20 and len(COLUMNS) == 403
COL = {name: i for i, name in enumerate(COLUMNS)}

# Handy index blocks into the 403-column order.
BANK = np.array([COL[f"gems_board_{c}"] for c in COLOURS_GOLD])
CARDS = np.array(
    [[COL[f"card{i}_{f}"] for f in CARD_FIELDS] for i in range(NUM_VISIBLE)]
)  # (12, 12)
DECKS = np.array([COL[f"deck_level{lv}_remaining"] for lv in (1, 2, 3)])
NOBLES = np.array(
    [[COL[f"noble{j}_{f}"] for f in NOBLE_FIELDS] for j in range(NUM_NOBLE_SLOTS)]
)  # (5, 6)
PLAYER_POSITION = np.array([COL[f"player{k}_position"] for k in range(NUM_PLAYER_SLOTS)])
PLAYER_VP = np.array([COL[f"player{k}_vp"] for k in range(NUM_PLAYER_SLOTS)])
PLAYER_GEMS = np.array(
    [[COL[f"player{k}_gems_{c}"] for c in COLOURS_GOLD] for k in range(NUM_PLAYER_SLOTS)]
)  # (4, 6)
PLAYER_REDUCTION = np.array(
    [[COL[f"player{k}_reduction_{c}"] for c in COLOURS] for k in range(NUM_PLAYER_SLOTS)]
)  # (4, 5)
PLAYER_RESERVED = np.array(
    [
        [[COL[f"player{k}_reserved{r}_{f}"] for f in CARD_FIELDS] for r in range(MAX_RESERVED)]
        for k in range(NUM_PLAYER_SLOTS)
    ]
)  # (4, 3, 12)
# Field offsets inside a card block of 12.
F_VP, F_LEVEL = 0, 1
F_COST = slice(2, 7)
F_BONUS = slice(7, 12)

NUM_COLUMNS = len(COLUMNS)
GAME_ID_COL = COL["game_id"]
NUM_PLAYERS_COL = COL["num_players"]
TURN_COL = COL["turn_number"]
CURRENT_PLAYER_COL = COL["current_player"]
ACTION_COL = COL["action_type"]
CARD_SELECTION_COL = COL["card_selection"]
CARD_RESERVATION_COL = COL["card_reservation"]
TAKE3_COLS = np.array([COL[f"gem_take3_{c}"] for c in COLOURS])
TAKE2_COLS = np.array([COL[f"gem_take2_{c}"] for c in COLOURS])
NOBLE_SELECTION_COL = COL["noble_selection"]
REMOVED_COLS = np.array([COL[f"gems_removed_{c}"] for c in COLOURS_GOLD])
STATE_SLICE = slice(1, 1 + len(STATE_COLUMNS))  # state columns, game_id excluded
DECISION_SLICE = slice(ACTION_COL, len(COLUMNS))

# --- the 7 heads -------------------------------------------------------------------------

# gem_take3: class 0 is the empty set, then singles, pairs, triples in lexicographic order.
TAKE3_CLASSES: list[tuple[int, ...]] = [()] + [
    combo for size in (1, 2, 3) for combo in combinations(range(5), size)
]
assert len(TAKE3_CLASSES) == 26
TAKE3_CLASS_OF = {combo: i for i, combo in enumerate(TAKE3_CLASSES)}
# (26, 5) 0/1 matrix: row c is the colour set of class c.
TAKE3_MATRIX = np.zeros((26, 5), dtype=np.int8)
for _i, _combo in enumerate(TAKE3_CLASSES):
    TAKE3_MATRIX[_i, list(_combo)] = 1
TAKE3_SIZE = TAKE3_MATRIX.sum(axis=1, dtype=np.int64)  # (26,) colours taken; class 0: none

# gems_removed: every 6-tuple with total 0..3, ascending lexicographic order.
REMOVED_CLASSES: list[tuple[int, ...]] = sorted(
    t for t in np.ndindex(4, 4, 4, 4, 4, 4) if sum(t) <= 3
)
assert len(REMOVED_CLASSES) == 84
REMOVED_CLASS_OF = {t: i for i, t in enumerate(REMOVED_CLASSES)}
REMOVED_MATRIX = np.array(REMOVED_CLASSES, dtype=np.int8)  # (84, 6)
REMOVED_TOTAL = REMOVED_MATRIX.sum(axis=1, dtype=np.int64)  # (84,) tokens returned
assert REMOVED_CLASSES[1] == (0, 0, 0, 0, 0, 1) and REMOVED_CLASSES[56] == (1, 0, 0, 0, 0, 0)

HEADS: dict[str, int] = {
    "action_type": 4,
    "card_selection": 15,
    "card_reservation": 15,
    "gem_take3": 26,
    "gem_take2": 5,
    "noble": 5,
    "gems_removed": 84,
}


def class_tables() -> dict[str, list[str]]:
    """Human-readable name of every class of every head (saved next to the dataset)."""
    return {
        "action_type": list(ACTION_TYPES),
        "card_selection": [f"visible{i}" for i in range(12)] + [f"reserved{r}" for r in range(3)],
        "card_reservation": [f"visible{i}" for i in range(12)]
        + [f"blind_level{lv}" for lv in (1, 2, 3)],
        "gem_take3": ["-" if not c else "".join(SHORT[i] for i in c) for c in TAKE3_CLASSES],
        "gem_take2": list(COLOURS),
        "noble": [f"noble{j}" for j in range(5)],
        "gems_removed": [
            "-" if not any(t) else "".join(f"{n}{(SHORT + 'O')[i]}" for i, n in enumerate(t) if n)
            for t in REMOVED_CLASSES
        ],
    }
