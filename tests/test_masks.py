"""Legal-action masks on hand-built states, and on the legacy fixtures."""

from __future__ import annotations

from itertools import combinations, combinations_with_replacement
from pathlib import Path

import numpy as np
import pytest

from game_data import LEGACY_LOGS
from imitation_learning.per_file.labels import compute_labels, find_inconsistent_rows
from imitation_learning.per_file.masks import compute_masks, masks_contain_labels
from splendor import columns as C
from splendor.log_reader import read_game_log

LEGACY = LEGACY_LOGS
WBGRK = C.COLOURS


def make_row(cols: dict[str, float]) -> np.ndarray:
    """A raw row: all NaN, then ``cols`` (column name -> value)."""
    row = np.full(len(C.COLUMNS), np.nan)
    for name, value in cols.items():
        row[C.COL[name]] = value
    return row


def card(prefix: str, level: int, cost: str = "", bonus: str = "W", vp: int = 0) -> dict:
    """Columns of one card; ``cost`` like "3W1K", ``bonus`` one of W B G R K."""
    cols = {f"{prefix}_vp": vp, f"{prefix}_level": level}
    counts = dict.fromkeys(C.SHORT, 0)
    for n, c in zip(cost[::2], cost[1::2], strict=True):
        counts[c] = int(n)
    for short, name in zip(C.SHORT, WBGRK, strict=True):
        cols[f"{prefix}_cost_{name}"] = counts[short]
        cols[f"{prefix}_bonus_{name}"] = int(short == bonus)
    return cols


def gems(prefix: str, spec: str, gold: int = 0) -> dict:
    """``prefix`` "gems_board" or "player0_gems"; ``spec`` like "4W4B" (others 0)."""
    counts = dict.fromkeys(C.SHORT, 0)
    for n, c in zip(spec[::2], spec[1::2], strict=True):
        counts[c] = int(n)
    cols = {f"{prefix}_{name}": counts[s] for s, name in zip(C.SHORT, WBGRK, strict=True)}
    cols[f"{prefix}_gold"] = gold
    return cols


def state(**over: dict) -> dict:
    """A 2-player mid-game state: full display of expensive cards (none affordable),
    all decks non-empty, 3 nobles out of reach, a full bank, player 0 with nothing."""
    cols: dict = {"num_players": 2, "turn_number": 5, "current_player": 0}
    cols |= gems("gems_board", "4W4B4G4R4K", gold=5)
    for i in range(12):
        cols |= card(f"card{i}", 1 + i // 4, cost="7K", bonus="K")
    cols |= {"deck_level1_remaining": 20, "deck_level2_remaining": 15, "deck_level3_remaining": 10}
    for j in range(3):
        cols |= {f"noble{j}_vp": 3} | {f"noble{j}_req_{c}": 4 for c in WBGRK}
    for k in range(2):
        cols |= {f"player{k}_position": k, f"player{k}_vp": 0}
        cols |= gems(f"player{k}_gems", "")
        cols |= {f"player{k}_reduction_{c}": 0 for c in WBGRK}
    for part in over.values():
        cols |= part
    return cols


def empty_slot(i: int) -> dict:
    return {f"card{i}_{f}": np.nan for f in C.CARD_FIELDS}


def masks_of(cols: dict) -> dict[str, np.ndarray]:
    m = compute_masks(make_row(cols)[None, :])
    return {head: mask[0] for head, mask in m.items()}


def on(mask: np.ndarray) -> set[int]:
    return set(np.flatnonzero(mask).tolist())


def removed_class(t) -> int:
    return C.REMOVED_CLASS_OF[tuple(int(x) for x in t)]


def returns_reference(holding: list[int], bank: list[int], reserve_gold: bool) -> set[int]:
    """gems_removed classes by brute force over the moves (independent of masks.py)."""
    gains = []
    avail = [c for c in range(5) if bank[c] > 0]
    for s in combinations(avail, min(3, len(avail))) if avail else ():
        gains.append([int(c in s) for c in range(5)] + [0])
    gains += [[2 * (c == k) for c in range(5)] + [0] for k in range(5) if bank[k] >= 4]
    if reserve_gold:
        gains.append([0, 0, 0, 0, 0, 1])
    out = {0}
    for g in gains:
        after = [h + x for h, x in zip(holding, g, strict=True)]
        excess = sum(after) - 10
        if excess <= 0:
            continue
        pool = [c for c in range(6) for _ in range(after[c])]
        for combo in set(combinations_with_replacement(range(6), excess)):
            t = [combo.count(c) for c in range(6)]
            if all(t[c] <= after[c] for c in range(6)):
                out.add(removed_class(t))
        assert pool  # holdings are not empty when above 10
    return out


# --- hand-built states ---------------------------------------------------------------


def test_base_state_only_tokens_and_reserves():
    m = masks_of(state())
    assert on(m["action_type"]) == {C.RESERVE, C.TAKE2, C.TAKE3}
    assert not m["card_selection"].any()
    assert on(m["card_reservation"]) == set(range(15))
    assert on(m["gem_take3"]) == set(range(16, 26))
    assert on(m["gem_take2"]) == set(range(5))
    assert not m["noble"].any()
    assert on(m["gems_removed"]) == {0}


def test_take2_threshold_3_vs_4():
    m = masks_of(state(bank=gems("gems_board", "3W4B5G0R1K", gold=5)))
    assert on(m["gem_take2"]) == {1, 2}
    m = masks_of(state(bank=gems("gems_board", "3W3B3G3R3K", gold=5)))
    assert not m["gem_take2"].any()
    assert not m["action_type"][C.TAKE2]
    assert m["action_type"][C.TAKE3]


def test_take3_with_fewer_than_three_colours():
    # two colours left (white, red): the one pair
    m = masks_of(state(bank=gems("gems_board", "2W1R", gold=5)))
    assert on(m["gem_take3"]) == {C.TAKE3_CLASS_OF[(0, 3)]} == {8}
    # one colour left (black)
    m = masks_of(state(bank=gems("gems_board", "5K", gold=5)))
    assert on(m["gem_take3"]) == {5}
    assert on(m["gem_take2"]) == {4}
    # exactly three colours: one triple
    m = masks_of(state(bank=gems("gems_board", "1B1G1K", gold=5)))
    assert on(m["gem_take3"]) == {C.TAKE3_CLASS_OF[(1, 2, 4)]}
    # no colour at all: no take, only gold in the bank
    m = masks_of(state(bank=gems("gems_board", "", gold=5)))
    assert not m["gem_take3"].any() and not m["gem_take2"].any()
    assert on(m["action_type"]) == {C.RESERVE}


def test_three_reserved_cards_block_reserving_and_can_be_built():
    reserved = (
        card("player0_reserved0", 1, cost="1W", bonus="B")
        | card("player0_reserved1", 2, cost="9R", bonus="G")
        | card("player0_reserved2", 3, cost="2W", bonus="R")
    )
    m = masks_of(state(res=reserved, mine=gems("player0_gems", "2W")))
    assert not m["card_reservation"].any()
    assert not m["action_type"][C.RESERVE]
    assert on(m["card_selection"]) == {12, 14}
    assert m["action_type"][C.BUILD]
    # with two reserved cards, reserving is back
    m = masks_of(state(res=card("player0_reserved0", 1, cost="1W"), mine=gems("player0_gems", "")))
    assert on(m["card_reservation"]) == set(range(15))
    assert not m["card_selection"].any()  # 1W unaffordable with no tokens


def test_empty_deck_removes_its_blind_reserve():
    m = masks_of(state(deck={"deck_level2_remaining": 0}))
    assert on(m["card_reservation"]) == set(range(12)) | {12, 14}
    m = masks_of(
        state(
            deck={
                "deck_level1_remaining": 0,
                "deck_level2_remaining": 0,
                "deck_level3_remaining": 0,
            }
        )
    )
    assert on(m["card_reservation"]) == set(range(12))


def test_gold_pays_the_shortfall_and_bonuses_reduce_the_price():
    slot = card("card5", 2, cost="3W2B", bonus="G")
    # 2W 2B + 1 gold: short one white, gold covers it
    m = masks_of(state(c=slot, mine=gems("player0_gems", "2W2B", gold=1)))
    assert on(m["card_selection"]) == {5}
    # same without the gold: not affordable
    m = masks_of(state(c=slot, mine=gems("player0_gems", "2W2B")))
    assert not m["card_selection"].any()
    # short two (white and blue), one gold: not affordable
    m = masks_of(state(c=slot, mine=gems("player0_gems", "2W1B", gold=1)))
    assert not m["card_selection"].any()
    # a white bonus pays the missing white
    bonus = {"player0_reduction_white": 1}
    m = masks_of(state(c=slot, mine=gems("player0_gems", "2W2B"), b=bonus))
    assert on(m["card_selection"]) == {5}
    # bonuses above the cost do not make a negative price (surplus is not transferable)
    big = {"player0_reduction_white": 5}
    m = masks_of(state(c=slot, mine=gems("player0_gems", "1B", gold=0), b=big))
    assert not m["card_selection"].any()
    m = masks_of(state(c=slot, mine=gems("player0_gems", "1B", gold=1), b=big))
    assert on(m["card_selection"]) == {5}


def test_empty_slots_in_the_middle_shift_running_indices():
    cols = state(
        gone=empty_slot(1) | empty_slot(5),
        c=card("card6", 2, cost="1R", bonus="W"),
        mine=gems("player0_gems", "1R"),
    )
    m = masks_of(cols)
    # slots 0,2,3,4,6,... -> slot 6 is the 5th present card (running index 4)
    assert on(m["card_selection"]) == {4}
    assert on(m["card_reservation"]) == set(range(10)) | {12, 13, 14}


def test_noble_already_qualified():
    noble = {"noble1_vp": 3} | {
        f"noble1_req_{c}": r for c, r in zip(WBGRK, (3, 3, 3, 0, 0), strict=True)
    }
    bonus = {f"player0_reduction_{c}": 3 for c in ("white", "blue", "green")}
    m = masks_of(state(n=noble, b=bonus))
    assert on(m["noble"]) == {1}


def test_noble_reachable_only_through_a_build():
    noble = {"noble2_vp": 3} | {
        f"noble2_req_{c}": r for c, r in zip(WBGRK, (0, 0, 4, 4, 0), strict=True)
    }
    bonus = {"player0_reduction_green": 4, "player0_reduction_red": 3}
    red_card = card("card2", 1, cost="2K", bonus="R")
    other = card("card3", 1, cost="1W", bonus="G")  # affordable but the wrong colour
    mine = gems("player0_gems", "1W2K")
    m = masks_of(state(n=noble, b=bonus, c=red_card, o=other, mine=mine))
    assert on(m["noble"]) == {2}
    assert on(m["card_selection"]) == {2, 3}
    # the red card unaffordable: the noble is out of reach
    m = masks_of(state(n=noble, b=bonus, c=red_card, o=other, mine=gems("player0_gems", "1W1K")))
    assert not m["noble"].any()
    # a reserved red card does it too
    reserved = card("player0_reserved0", 1, cost="1K", bonus="R")
    m = masks_of(state(n=noble, b=bonus, r=reserved, mine=gems("player0_gems", "1K")))
    assert on(m["noble"]) == {2}
    assert on(m["card_selection"]) == {12}
    # an empty noble slot is never in the mask even if its (missing) requirement is "met"
    assert not m["noble"][3:].any()


@pytest.mark.parametrize(
    "holding, bank, reserve_gold",
    [
        ("3W3B3G", "4W4B4G4R4K", True),  # 9 tokens: take-3 -> 12, take-2 -> 11
        ("3W3B2G2R", "4W4B4G4R4K", True),  # 10 tokens
        ("2W2B2G2R", "4W4B4G4R4K", True),  # 8 tokens: take-3 -> 11
        ("2W2B2G2R", "1W1B", True),  # 8 tokens, only a pair to take: no return
        ("3W3B2G2R", "1W", False),  # 10 tokens, one colour, no gold in the bank
    ],
)
def test_returns_match_brute_force(holding, bank, reserve_gold):
    gold_bank = 5 if reserve_gold else 0
    cols = state(mine=gems("player0_gems", holding), bank=gems("gems_board", bank, gold=gold_bank))
    m = masks_of(cols)
    row = make_row(cols)
    hold = [int(x) for x in row[C.PLAYER_GEMS[0]]]
    bk = [int(x) for x in row[C.BANK]]
    assert on(m["gems_removed"]) == returns_reference(hold, bk, reserve_gold)


def test_returns_at_nine_tokens():
    m = masks_of(state(mine=gems("player0_gems", "3W3B3G")))
    got = on(m["gems_removed"])
    assert 0 in got
    assert removed_class((0, 0, 0, 0, 1, 0)) == 4 and 4 in got  # take 2 black, return it
    assert removed_class((2, 0, 0, 0, 0, 0)) in got  # take 3, return 2 whites
    assert removed_class((0, 0, 0, 1, 1, 0)) in got  # take R K + one, return R and K
    assert 1 not in got  # no gold held, and a reserve at 9 tokens stays at 10
    # at 9 tokens the most a move brings is 3, so at most 2 are returned
    assert max(C.REMOVED_MATRIX[c].sum() for c in got) == 2


def test_reserve_bringing_gold_at_ten_tokens():
    # 10 tokens, bank with no colour left but gold: only reserves, which bring a gold
    bank = gems("gems_board", "", gold=2)
    m = masks_of(state(mine=gems("player0_gems", "5W5B"), bank=bank))
    assert on(m["action_type"]) == {C.RESERVE}
    one_white, one_blue, one_gold = (1, 0, 0, 0, 0, 0), (0, 1, 0, 0, 0, 0), (0, 0, 0, 0, 0, 1)
    expected = {0} | {removed_class(t) for t in (one_white, one_blue, one_gold)}
    assert on(m["gems_removed"]) == expected == {0, 1, 56, removed_class(one_blue)}
    # no gold left in the bank: reserving brings nothing, nothing to return
    m = masks_of(state(mine=gems("player0_gems", "5W5B"), bank=gems("gems_board", "", gold=0)))
    assert on(m["gems_removed"]) == {0}
    # gold left but three reserved cards: no reserve, nothing to return
    reserved = (
        card("player0_reserved0", 1, cost="9R")
        | card("player0_reserved1", 1, cost="9R")
        | card("player0_reserved2", 1, cost="9R")
    )
    m = masks_of(state(mine=gems("player0_gems", "5W5B"), bank=bank, r=reserved))
    assert not m["action_type"].any()
    assert on(m["gems_removed"]) == {0}


def test_no_legal_move_means_no_noble_either():
    bank = gems("gems_board", "", gold=0)
    reserved = {f"player0_reserved{r}_level": 1 for r in range(3)} | {
        f"player0_reserved{r}_cost_red": 9 for r in range(3)
    }
    noble = {"noble0_vp": 3} | {f"noble0_req_{c}": 0 for c in WBGRK}
    m = masks_of(state(bank=bank, r=reserved, n=noble))
    assert not m["action_type"].any()
    assert not m["noble"].any()


def test_block_of_rows_is_row_independent():
    rows = [
        state(),
        state(mine=gems("player0_gems", "3W3B3G")),
        state(bank=gems("gems_board", "2W1R", gold=5)),
        state(gone=empty_slot(1), c=card("card6", 2, cost="1R"), mine=gems("player0_gems", "1R")),
    ]
    block = compute_masks(np.stack([make_row(r) for r in rows]))
    for i, cols in enumerate(rows):
        single = masks_of(cols)
        for head in C.HEADS:
            assert block[head].dtype == bool and block[head].shape == (4, C.HEADS[head])
            np.testing.assert_array_equal(block[head][i], single[head])


def test_masks_contain_labels():
    masks = {h: np.zeros((3, k), dtype=bool) for h, k in C.HEADS.items()}
    masks["gem_take2"][1, 3] = True
    labels = {h: np.full(3, -1, dtype=np.int16) for h in C.HEADS}
    labels["gem_take2"][:] = [-1, 3, 2]
    labels["noble"][:] = [-1, -1, 7]  # out of range counts as not contained
    ok = masks_contain_labels(masks, labels)
    assert ok["gem_take2"].tolist() == [True, True, False]
    assert ok["noble"].tolist() == [True, True, False]
    assert ok["action_type"].all()


# --- legacy fixtures ------------------------------------------------------------------


def load_legacy(path: Path) -> np.ndarray:
    """Raw values of a legacy fixture (blind-reserve base 11), as the reader returns them."""
    log = read_game_log(path, blind_reserve_base=11)
    assert log.rejections == [], log.rejections
    return log.values


LEGACY_FILES = sorted(LEGACY.glob("*_games/*.csv"))


def test_all_six_legacy_fixtures_present():
    assert len(LEGACY_FILES) == 6


@pytest.mark.parametrize("path", LEGACY_FILES, ids=lambda p: p.stem)
def test_legacy_labels_are_in_their_masks(path):
    values = load_legacy(path)
    masks = compute_masks(values)
    labels = compute_labels(values)
    for head, ok in masks_contain_labels(masks, labels).items():
        bad = np.flatnonzero(~ok)
        assert bad.size == 0, f"{head}: rows {bad.tolist()} labels {labels[head][bad].tolist()}"
    assert (labels["action_type"] >= 0).all()
    assert find_inconsistent_rows(values, labels, masks) == []


def test_garbage_rows_do_not_break_anything():
    """Rows rejected later still go through compute_masks / compute_labels first."""
    rng = np.random.default_rng(0)
    values = rng.choice([np.nan, -3.0, 0.0, 1.0, 2.0, 2.5, 4.0, 11.0, 1e9, np.inf], (300, 403))
    values = np.vstack([values, np.full((1, 403), np.nan)])
    masks = compute_masks(values)
    labels = compute_labels(values)
    for head, classes in C.HEADS.items():
        assert masks[head].shape == (301, classes) and masks[head].dtype == bool
        assert labels[head].shape == (301,) and labels[head].dtype == np.int16
        assert ((labels[head] >= -1) & (labels[head] < classes)).all()
    assert masks["gems_removed"][:, 0].all()
    # the all-missing row: nothing is legal, nothing to label
    assert not masks["action_type"][-1].any()
    assert all(labels[h][-1] == -1 for h in C.HEADS if h != "gems_removed")
    found = find_inconsistent_rows(values, labels, masks)
    assert {row for row, _, _ in found} >= set(range(300)) - {
        i for i in range(300) if labels["action_type"][i] >= 0
    }
    assert (300, "action_type", "missing or unknown action_type") in found
