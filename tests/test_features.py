"""Strategic features on a hand-built state, checked by name against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from imitation_learning.per_file.compaction import compact
from imitation_learning.per_file.features import (
    NUM_FEATURES,
    compute_features,
    get_all_feature_names,
    get_binary_feature_names,
)
from splendor import columns as C
from test_compaction import card, make_row

NAMES = get_all_feature_names()


def colours(**counts: int) -> list[int]:
    return [counts.get(c, 0) for c in C.COLOURS]


def scenario() -> np.ndarray:
    """Three players; see the comments for what each test relies on."""
    row = make_row(num_players=3)
    row[C.BANK] = colours(white=4, blue=3, green=0, red=5, black=1) + [2]
    # Face-up: slot 1 is empty, so slots 2 and 3 are the running indices 1 and 2.
    row[C.CARDS[0]] = card(1, vp=0, cost={"white": 3, "blue": 1}, bonus="black")
    row[C.CARDS[1]] = np.nan
    row[C.CARDS[2]] = card(1, vp=1, cost={"green": 4}, bonus="blue")
    row[C.CARDS[3]] = card(1, vp=0, cost={"blue": 3}, bonus="white")
    # Nobles: 0 needs W3 G1, 1 needs B4 R4, 2 needs G3 R3 K3, 3 is gone.
    row[C.NOBLES[0]] = [3] + colours(white=3, green=1)
    row[C.NOBLES[1]] = [3] + colours(blue=4, red=4)
    row[C.NOBLES[2]] = [3] + colours(green=3, red=3, black=3)
    row[C.NOBLES[3]] = np.nan
    # Player 0 (deciding): tokens W1 B2 + 1 gold, bonuses W2 G1, 4 points, one reserved card.
    row[C.PLAYER_GEMS[0]] = colours(white=1, blue=2) + [1]
    row[C.PLAYER_REDUCTION[0]] = colours(white=2, green=1)
    row[C.PLAYER_VP[0]] = 4
    row[C.PLAYER_RESERVED[0, 0]] = card(2, vp=2, cost={"white": 3, "green": 2}, bonus="green")
    # Player 1: bonuses W3 G1 (noble 0 qualified), 7 points.
    row[C.PLAYER_REDUCTION[1]] = colours(white=3, green=1)
    row[C.PLAYER_VP[1]] = 7
    # Player 2: 6 bonuses, 7 points (tied leader with more cards), tokens R3.
    row[C.PLAYER_REDUCTION[2]] = colours(red=3, black=3)
    row[C.PLAYER_GEMS[2]] = colours(red=3) + [0]
    row[C.PLAYER_VP[2]] = 7
    return row


@pytest.fixture(scope="module")
def feats() -> dict[str, float]:
    out = compute_features(compact(scenario()[None]))
    assert out.shape == (1, NUM_FEATURES) and out.dtype == np.float32
    return dict(zip(NAMES, out[0].tolist(), strict=True))


def test_names_unique_and_count():
    assert len(NAMES) == NUM_FEATURES == len(set(NAMES))
    assert 850 <= NUM_FEATURES <= 900
    assert get_all_feature_names() == NAMES  # stable
    assert all(n.replace("_", "").isalnum() for n in NAMES)


def test_binary_features_are_flags(feats):
    binary = get_binary_feature_names()
    assert set(binary) <= set(NAMES)
    assert "player0_cardpos3_can_build" in binary and "player2_noble1_acquirable" in binary
    assert "player0_nobles_acquirable" not in binary
    assert "player0_cardpos3_distance_total" not in binary
    rows = compute_features(compact(np.stack([scenario(), make_row(4), make_row(2)])))
    idx = [NAMES.index(n) for n in binary]
    assert set(np.unique(rows[:, idx])) <= {0.0, 1.0}


def test_tokens(feats):
    expected = {  # take2 possible, after take-2, after take-1, starting pile, max take
        "white": (1, 2, 3, 5, 2),
        "blue": (0, 3, 2, 5, 1),
        "green": (0, 0, 0, 5, 0),
        "red": (1, 3, 4, 5, 2),
        "black": (0, 1, 0, 5, 1),
    }
    fields = ("take2_possible", "after_take2", "after_take1", "starting_pile", "max_take_this_turn")
    for colour, values in expected.items():
        got = tuple(feats[f"bank_{colour}_{f}"] for f in fields)
        assert got == values, colour
    assert feats["bank_gold_gainable_by_reserve"] == 1
    assert not any(n.startswith("bank_gold_starting") for n in NAMES)  # 5 always: left out


def test_starting_pile_follows_player_count():
    rows = np.stack([make_row(2), make_row(3), make_row(4)])
    out = compute_features(compact(rows))
    np.testing.assert_array_equal(out[:, NAMES.index("bank_red_starting_pile")], [4, 5, 7])


def test_gold_not_gainable_with_three_reserved_or_empty_bank():
    full = scenario()
    for r in range(3):
        full[C.PLAYER_RESERVED[0, r]] = card(1)
    no_gold = scenario()
    no_gold[C.BANK[5]] = 0
    out = compute_features(compact(np.stack([full, no_gold])))
    np.testing.assert_array_equal(out[:, NAMES.index("bank_gold_gainable_by_reserve")], [0, 0])


def card_features(feats, k, j):
    keys = ["can_build", "must_use_gold"] + [f"distance_{c}" for c in C.COLOURS]
    keys += ["distance_total", "points_if_bought"]
    return [feats[f"player{k}_cardpos{j}_{key}"] for key in keys]


def test_cards(feats):
    # pos 0 = slot 0 (W3 B1): price W1 B1 after bonuses W2; tokens W1 B2 cover it.
    assert card_features(feats, 0, 0) == [1, 0, 0, 0, 0, 0, 0, 0, 0]
    # pos 1 = slot 2 (G4, 1 pt): price G3, no green tokens: 3 missing > 1 gold.
    assert card_features(feats, 0, 1) == [0, 0, 0, 0, 3, 0, 0, 3, 1]
    # pos 2 = slot 3 (B3, white bonus): 1 blue missing, paid with the gold; the white bonus
    # completes noble 0 (W3 G1): 0 + 3 points.
    assert card_features(feats, 0, 2) == [1, 1, 0, 1, 0, 0, 0, 1, 3]
    # pos 12 = reserved 0 (W3 G2, 2 pts, green bonus): price W1 G1, tokens W1: 1 green missing.
    assert card_features(feats, 0, 12) == [1, 1, 0, 0, 1, 0, 0, 1, 2]
    # pos 13: no second reserved card; pos 11: compacted away (empty).
    assert card_features(feats, 0, 13) == [0] * 9
    assert card_features(feats, 0, 11) == [0] * 9
    # Player 1 (no tokens, bonuses W3 G1) on slot 0: price B1: 1 missing, no gold; player 1
    # already qualifies for noble 0, which visits this turn whatever is bought: 0 + 3.
    assert card_features(feats, 1, 0) == [0, 0, 0, 1, 0, 0, 0, 1, 3]
    # Player 3 is absent: all zero although the cards are there.
    assert card_features(feats, 3, 0) == [0] * 9


def test_points_if_bought_counts_an_already_qualified_noble():
    row = scenario()
    out = compute_features(compact(row[None]))[0]
    # Player 1 qualifies for noble 0 already: buying pos 1 (1 pt) gives 1 + 3.
    assert out[NAMES.index("player1_cardpos1_points_if_bought")] == 4


def test_nobles(feats):
    def noble(k, m):
        keys = [f"distance_{c}" for c in C.COLOURS] + ["distance_total", "acquirable"]
        return [feats[f"player{k}_noble{m}_{key}"] for key in keys]

    assert noble(0, 0) == [1, 0, 0, 0, 0, 1, 0]  # W3 G1 vs bonuses W2 G1
    assert noble(0, 1) == [0, 4, 0, 4, 0, 8, 0]
    assert noble(0, 2) == [0, 0, 2, 3, 3, 8, 0]
    assert noble(0, 3) == [0] * 7  # empty noble slot
    assert noble(1, 0) == [0, 0, 0, 0, 0, 0, 1]
    assert noble(2, 2) == [0, 0, 3, 0, 0, 3, 0]  # G3 R3 K3 vs R3 K3
    assert noble(3, 0) == [0] * 7  # absent player
    assert feats["player0_closest_noble_distance"] == 1
    assert feats["player0_nobles_acquirable"] == 0
    assert feats["player1_closest_noble_distance"] == 0
    assert feats["player1_nobles_acquirable"] == 1
    assert feats["player2_closest_noble_distance"] == 3


def test_card_noble_synergy(feats):
    # Player 0, pos 2 (white bonus): noble 0 becomes acquirable.
    assert feats["player0_cardpos2_nobles_acquirable_after_buying"] == 1
    assert feats["player0_cardpos2_closest_noble_distance_after_buying"] == 0
    # pos 0 (black bonus) does not help noble 0: closest stays 1.
    assert feats["player0_cardpos0_nobles_acquirable_after_buying"] == 0
    assert feats["player0_cardpos0_closest_noble_distance_after_buying"] == 1
    # Player 2 (R3 K3) and pos 1 (blue bonus): noble 2 still needs G3, noble 1 B3 R1.
    assert feats["player2_cardpos1_closest_noble_distance_after_buying"] == 3
    # Empty position and absent player: 0.
    assert feats["player0_cardpos11_closest_noble_distance_after_buying"] == 0
    assert feats["player3_cardpos0_closest_noble_distance_after_buying"] == 0


def test_no_noble_left_gives_zero_distances():
    row = scenario()
    row[C.NOBLES.reshape(-1)] = np.nan
    out = compute_features(compact(row[None]))[0]
    for name in (
        "player0_closest_noble_distance",
        "player0_cardpos0_closest_noble_distance_after_buying",
        "player0_cardpos2_points_if_bought",
    ):
        assert out[NAMES.index(name)] == 0, name


def test_player_comparison(feats):
    assert feats["player0_total_bonuses"] == 3
    assert [feats[f"player0_buying_capacity_{c}"] for c in C.COLOURS] == [3, 2, 1, 0, 0]
    assert feats["player0_tokens_held"] == 4  # W1 B2 + gold
    assert feats["player0_token_colours_held"] == 2
    assert feats["player0_reserved_count"] == 1
    assert feats["player2_buying_capacity_red"] == 6
    # Players 1 and 2 lead with 7; the tie goes to fewer cards: player 1's 4 bonuses.
    assert feats["leader_points"] == 7
    assert feats["leader_total_bonuses"] == 4
    assert [feats[f"player{k}_points_gap_to_leader"] for k in range(4)] == [3, 0, 0, 0]
    assert [feats[f"player{k}_rank"] for k in range(4)] == [3, 1, 1, 0]
    assert feats["player3_total_bonuses"] == 0
    assert not any(n.endswith("_points") and n.startswith("player") for n in NAMES)


def test_game_progression(feats):
    assert feats["leader_points_to_win"] == 8
    assert feats["cards_bought_total"] == 3 + 4 + 6
    assert [feats[f"player{k}_points_to_win"] for k in range(4)] == [11, 8, 8, 0]


def test_rows_are_independent_and_empty_input():
    rows = np.stack([scenario(), make_row(4), scenario()])
    out = compute_features(compact(rows))
    np.testing.assert_array_equal(out[0], out[2])
    alone = compute_features(compact(make_row(4)[None]))
    np.testing.assert_array_equal(out[1], alone[0])
    empty = compute_features(compact(np.empty((0, len(C.COLUMNS)))))
    assert empty.shape == (0, NUM_FEATURES) and empty.dtype == np.float32
