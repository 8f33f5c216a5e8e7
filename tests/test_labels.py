"""Labels of the 7 heads and the decision-consistency check, on hand-built rows."""

from __future__ import annotations

import numpy as np
import pytest

from game_data import LEGACY_LOGS
from imitation_learning.per_file.labels import compute_labels, find_inconsistent_rows
from imitation_learning.per_file.masks import compute_masks
from splendor import columns as C

NONE_REMOVED = {f"gems_removed_{c}": 0 for c in C.COLOURS_GOLD}


def make_row(cols: dict[str, float]) -> np.ndarray:
    row = np.full(len(C.COLUMNS), np.nan)
    for name, value in cols.items():
        row[C.COL[name]] = value
    return row


def base_state() -> dict:
    """Full display (12 cards), 3 nobles, 2 players, player 0 with 5 tokens, 1 reserved."""
    cols: dict = {"num_players": 2, "current_player": 0}
    cols |= {f"gems_board_{c}": 4 for c in C.COLOURS} | {"gems_board_gold": 5}
    for i in range(12):
        cols |= {f"card{i}_level": 1 + i // 4, f"card{i}_vp": 0}
    cols |= {f"deck_level{lv}_remaining": 5 for lv in (1, 2, 3)}
    cols |= {f"noble{j}_vp": 3 for j in range(3)}
    cols |= {f"player0_gems_{c}": 1 for c in C.COLOURS} | {"player0_gems_gold": 0}
    cols |= {"player0_reserved0_level": 1}
    return cols


def decision(action: str, **extra) -> dict:
    """Decision columns as a writer following the spec would put them."""
    cols = {"action_type": C.ACTION_CODE[action], "noble_selection": -1} | NONE_REMOVED
    return cols | extra


def take3(colours: str, **extra) -> dict:
    taken = {f"gem_take3_{c}": int(s in colours) for s, c in zip(C.SHORT, C.COLOURS, strict=True)}
    return decision("take 3 tokens", **(taken | extra))


def take2(colour: str, **extra) -> dict:
    taken = {f"gem_take2_{c}": 2 * (s == colour) for s, c in zip(C.SHORT, C.COLOURS, strict=True)}
    return decision("take 2 tokens", **(taken | extra))


def removed(w=0, b=0, g=0, r=0, k=0, o=0) -> dict:
    return {f"gems_removed_{c}": n for c, n in zip(C.COLOURS_GOLD, (w, b, g, r, k, o), strict=True)}


def labels_of(*decisions: dict) -> dict[str, np.ndarray]:
    return compute_labels(np.stack([make_row(base_state() | d) for d in decisions]))


def test_labels_per_action():
    lab = labels_of(
        decision("build", card_selection=13, noble_selection=2),
        decision("reserve", card_reservation=14),
        take2("R"),
        take3("WBG"),
    )
    assert set(lab) == set(C.HEADS) and list(lab) == list(C.HEADS)
    for head, x in lab.items():
        assert x.dtype == np.int16 and x.shape == (4,), head
    assert lab["action_type"].tolist() == [0, 1, 2, 3]
    assert lab["card_selection"].tolist() == [13, -1, -1, -1]
    assert lab["card_reservation"].tolist() == [-1, 14, -1, -1]
    assert lab["gem_take2"].tolist() == [-1, -1, 3, -1]
    assert lab["gem_take3"].tolist() == [-1, -1, -1, 16]
    assert lab["noble"].tolist() == [2, -1, -1, -1]
    assert lab["gems_removed"].tolist() == [0, 0, 0, 0]


@pytest.mark.parametrize(
    "colours, cls", [("W", 1), ("WB", 6), ("WBG", 16), ("GRK", 25), ("BR", 11), ("K", 5)]
)
def test_gem_take3_classes(colours, cls):
    assert labels_of(take3(colours))["gem_take3"].tolist() == [cls]
    assert C.TAKE3_CLASSES[cls] == tuple(C.SHORT.index(s) for s in colours)


@pytest.mark.parametrize(
    "tup, cls",
    [
        ((0, 0, 0, 0, 0, 0), 0),
        ((0, 0, 0, 0, 0, 1), 1),
        ((0, 0, 0, 0, 1, 0), 4),
        ((1, 0, 0, 0, 0, 0), 56),
        ((3, 0, 0, 0, 0, 0), 83),
        ((0, 1, 1, 0, 0, 1), C.REMOVED_CLASS_OF[(0, 1, 1, 0, 0, 1)]),
    ],
)
def test_gems_removed_classes(tup, cls):
    lab = labels_of(take3("WBG", **removed(*tup)))
    assert lab["gems_removed"].tolist() == [cls]
    assert C.REMOVED_CLASSES[cls] == tup


def test_all_take3_and_removed_classes_round_trip():
    rows = [take3("".join(C.SHORT[i] for i in combo)) for combo in C.TAKE3_CLASSES[1:]]
    assert labels_of(*rows)["gem_take3"].tolist() == list(range(1, 26))
    rows = [take3("W", **removed(*t)) for t in C.REMOVED_CLASSES]
    assert labels_of(*rows)["gems_removed"].tolist() == list(range(84))


def test_missing_noble_and_removed_mean_none():
    d = decision("build", card_selection=0)
    d |= {"noble_selection": np.nan} | {k: np.nan for k in NONE_REMOVED}
    lab = labels_of(d)
    assert lab["noble"].tolist() == [-1] and lab["gems_removed"].tolist() == [0]
    assert find_inconsistent_rows(make_row(base_state() | d)[None, :]) == []


def test_unencodable_decisions_give_minus_one():
    lab = labels_of(
        decision("build", card_selection=15),
        take3("WBGR"),
        take2("R", gem_take2_white=1),
        take3("W", **removed(w=2, b=2)),
        decision("build", card_selection=0) | {"action_type": 7},
    )
    assert lab["card_selection"].tolist() == [-1, -1, -1, -1, -1]
    assert lab["gem_take3"].tolist() == [-1, -1, -1, 1, -1]
    assert lab["gem_take2"].tolist() == [-1, -1, -1, -1, -1]
    assert lab["gems_removed"].tolist() == [0, 0, 0, -1, 0]
    assert lab["action_type"].tolist() == [0, 3, 2, 3, -1]


# --- find_inconsistent_rows ------------------------------------------------------------


def problems(d: dict, state: dict | None = None) -> set[tuple[str, str]]:
    cols = (base_state() if state is None else state) | d
    return {(col, reason) for _, col, reason in find_inconsistent_rows(make_row(cols)[None, :])}


def columns_of(d: dict, state: dict | None = None) -> set[str]:
    return {col for col, _ in problems(d, state)}


def test_consistent_rows_have_no_problem():
    ok = [
        decision("build", card_selection=11),
        decision("build", card_selection=12),
        decision("reserve", card_reservation=0),
        decision("reserve", card_reservation=13),
        take2("K"),
        take3("BGR"),
        take3("WK", noble_selection=0),
    ]
    for d in ok:
        assert problems(d) == set(), d


@pytest.mark.parametrize(
    "d, column",
    [
        (take3("WBG", card_selection=3), "card_selection"),
        (decision("build"), "card_selection"),
        (decision("reserve"), "card_reservation"),
        (decision("build", card_selection=2, card_reservation=4), "card_reservation"),
        (decision("build", card_selection=2.5), "card_selection"),
        (decision("build", card_selection=16), "card_selection"),
        (decision("build", card_selection=13), "card_selection"),  # reserved slot 1 empty
        (decision("reserve", card_reservation=-1), "card_reservation"),
        (take3("WBGR"), "gem_take3"),
        (take3(""), "gem_take3"),
        (take3("WB", gem_take3_green=2), "gem_take3"),
        (take3("WB", gem_take3_green=np.nan), "gem_take3"),
        (take2("W") | {"gem_take3_white": 1}, "gem_take3"),
        (take2("W", gem_take2_blue=2), "gem_take2"),
        (take2("W", gem_take2_white=1), "gem_take2"),
        (take2(""), "gem_take2"),
        (take3("WBG", gem_take2_red=2), "gem_take2"),
        (decision("build", card_selection=0, noble_selection=5), "noble_selection"),
        (decision("build", card_selection=0, noble_selection=-2), "noble_selection"),
        (decision("build", card_selection=0, noble_selection=3), "noble_selection"),  # empty slot
        (take3("WBG", **removed(w=-1)), "gems_removed"),
        (take3("WBG", **removed(w=2, b=2)), "gems_removed"),
        (take3("WBG", **removed(w=0.5)), "gems_removed"),
        (decision("build", card_selection=0, **removed(w=1)), "gems_removed"),
        (take3("WBG", **removed(w=1)), "gems_removed"),  # 5 + 3 = 8 tokens, nothing to return
        (decision("build", card_selection=0) | {"action_type": np.nan}, "action_type"),
        (decision("build", card_selection=0) | {"action_type": 4}, "action_type"),
    ],
)
def test_inconsistent_rows_are_reported(d, column):
    assert column in columns_of(d)


def test_returns_must_bring_the_player_back_to_ten():
    at9 = base_state() | {"player0_gems_white": 5}  # 9 tokens
    assert problems(take3("WBG", **removed(w=2)), at9) == set()
    assert columns_of(take3("WBG", **removed(w=1)), at9) == {"gems_removed"}
    assert columns_of(take3("WBG"), at9) == {"gems_removed"}
    assert problems(take2("B", **removed(g=1)), at9) == set()
    at10 = base_state() | {"player0_gems_white": 6}
    assert problems(decision("reserve", card_reservation=2, **removed(o=1)), at10) == set()
    assert columns_of(decision("reserve", card_reservation=2), at10) == {"gems_removed"}
    no_gold = at10 | {"gems_board_gold": 0}
    assert problems(decision("reserve", card_reservation=2), no_gold) == set()


def test_running_index_bounds_with_empty_slots():
    state = base_state() | {"card3_level": np.nan, "card7_level": np.nan}  # 10 present
    assert problems(decision("build", card_selection=9), state) == set()
    assert columns_of(decision("build", card_selection=10), state) == {"card_selection"}
    assert columns_of(decision("reserve", card_reservation=11), state) == {"card_reservation"}


def test_mask_violations_are_reported_by_head_when_masks_given():
    # take 2 white from a pile of 3: well formed but illegal in this state
    state = base_state() | {"gems_board_white": 3}
    values = make_row(state | take2("W"))[None, :]
    assert find_inconsistent_rows(values) == []
    found = find_inconsistent_rows(values, compute_labels(values), compute_masks(values))
    assert [(row, col) for row, col, _ in found] == [(0, "gem_take2")]


def test_rows_are_reported_in_order_with_their_index():
    rows = [decision("build", card_selection=1), take3("WBGR"), take2("W"), decision("build")]
    values = np.stack([make_row(base_state() | d) for d in rows])
    found = find_inconsistent_rows(values)
    assert [(r, c) for r, c, _ in found] == [(1, "gem_take3"), (3, "card_selection")]
    assert all(isinstance(reason, str) and reason for _, _, reason in found)


# --- the whole-block fast path of find_inconsistent_rows -----------------------------------

LEGACY_LOG = LEGACY_LOGS / "3_games" / "900001.csv"
_DECISION_AND_NEARBY = [C.COL[name] for name in C.DECISION_COLUMNS] + [
    C.COL["gems_board_gold"],
    C.COL["player0_gems_white"],
    C.COL["player0_gems_gold"],
    C.COL["noble0_vp"],
    C.COL["noble2_vp"],
]
_PROBES = (np.nan, -np.inf, np.inf, -1, 0, 1, 2, 3, 4, 7, 11, 12, 13, 14, 15, 0.5)


def test_consistency_fast_path_never_hides_a_problem():
    """Random mutations of a real log's decisions (and of the state they point to): whenever
    the whole-block test passes, the detailed checks find nothing, and
    find_inconsistent_rows always equals the detailed checks (with and without masks)."""
    from imitation_learning.per_file.labels import _all_consistent, _detailed_inconsistencies
    from splendor.log_reader import read_game_log

    base = read_game_log(LEGACY_LOG, blind_reserve_base=11).values[::6]  # 16 rows
    base_labels = compute_labels(base)
    assert _all_consistent(base, base_labels, compute_masks(base))  # the fast path is taken
    rng = np.random.default_rng(7)
    passed = failed = 0
    for trial in range(1500):
        values = base.copy()
        row = rng.integers(len(values))  # most mutations hit one row, so that they combine
        for _ in range(rng.integers(1, 4)):
            if rng.random() < 0.2:
                row = rng.integers(len(values))
            if rng.random() < 0.25:  # the state a decision points to: trailing slots emptied
                block = (C.CARDS[:, C.F_LEVEL], C.PLAYER_RESERVED[0, :, C.F_LEVEL])[rng.integers(2)]
                values[row, block[rng.integers(len(block)) :]] = np.nan
            else:
                values[row, rng.choice(_DECISION_AND_NEARBY)] = rng.choice(_PROBES)
        labels = compute_labels(values)
        masks = compute_masks(values) if trial % 3 == 0 else None
        detailed = _detailed_inconsistencies(values, labels, masks)
        if _all_consistent(values, labels, masks):
            passed += 1
            assert detailed == [], detailed
        else:
            failed += 1
        assert find_inconsistent_rows(values, labels, masks) == detailed
    assert passed > 50 and failed > 500  # both outcomes were exercised
