"""The rules engine, rule by rule, on constructed states (``docs/input-format.md``)."""

from __future__ import annotations

from collections import Counter
from itertools import product

import numpy as np
import pytest

from splendor.cards import CARDS, NOBLES
from splendor.columns import BUILD, RESERVE, TAKE2, TAKE3
from splendor.rules import Move, apply_move, legal_moves, pass_turn, winners
from splendor.simulate import play_game
from splendor.state import (
    BLOCKED,
    FINISHED,
    TRUNCATED,
    GameState,
    PlayerState,
    new_game,
)

# Cards used below (ids into CARDS): level-1 cards 0-3 face up, level 2 40-43, level 3 70-73.
K_CARD_LV3 = 88  # level 3, black bonus, 4 vp, cost 3G 6R 3K


def make_state(num_players: int = 2, **players: dict) -> GameState:
    """A state with a known display: slots hold cards 0-3, 40-43, 70-73, the rest in the
    decks (top = last), full bank for the player count, no nobles. ``players`` maps
    ``p<seat>`` to PlayerState field overrides."""
    per_colour = {2: 4, 3: 5, 4: 7}[num_players]
    state = GameState(
        num_players=num_players,
        bank=[per_colour] * 5 + [5],
        slots=[0, 1, 2, 3, 40, 41, 42, 43, 70, 71, 72, 73],
        decks=[list(range(4, 40)), list(range(44, 70)), list(range(74, 90))],
        nobles=[],
        players=[PlayerState() for _ in range(num_players)],
    )
    for key, fields in players.items():
        p = state.players[int(key[1:])]
        for name, value in fields.items():
            setattr(p, name, value)
    return state


def of_kind(moves: list[Move], action: int) -> list[Move]:
    return [m for m in moves if m.action == action]


def test_new_game_setup():
    for n, per_colour in ((2, 4), (3, 5), (4, 7)):
        s = new_game(n, seed=1)
        assert s.bank == [per_colour] * 5 + [5]
        assert len(s.nobles) == n + 1 and len(set(s.nobles)) == n + 1
        assert [CARDS[c].level for c in s.slots] == [1] * 4 + [2] * 4 + [3] * 4
        assert [len(d) for d in s.decks] == [36, 26, 16]
        assert s.current == 0 and s.round == 1 and s.outcome is None
        assert all(p.tokens == [0] * 6 and p.reserved == [] for p in s.players)


def test_same_seed_same_game():
    assert new_game(3, seed=42) == new_game(3, seed=42)
    assert new_game(3, seed=42) != new_game(3, seed=43)
    a = play_game(5, 3, "random", seed=99)
    b = play_game(5, 3, "random", seed=99)
    np.testing.assert_array_equal(a.rows, b.rows)
    assert (a.outcome, a.winners, a.points, a.rounds) == (b.outcome, b.winners, b.points, b.rounds)


def test_take2_needs_a_pile_of_four():
    s = make_state()
    s.bank = [4, 3, 4, 0, 5, 5]
    takes = {m.take for m in of_kind(legal_moves(s), TAKE2)}
    assert takes == {(2, 0, 0, 0, 0), (0, 0, 2, 0, 0), (0, 0, 0, 0, 2)}
    after = apply_move(s, Move(TAKE2, take=(2, 0, 0, 0, 0)))
    assert after.players[0].tokens == [2, 0, 0, 0, 0, 0] and after.bank[0] == 2
    assert s.bank[0] == 4  # apply_move does not modify its input


@pytest.mark.parametrize(
    ("bank", "expected"),
    [
        ([1, 1, 1, 1, 0, 5], {(1, 1, 1, 0, 0), (1, 1, 0, 1, 0), (1, 0, 1, 1, 0), (0, 1, 1, 1, 0)}),
        ([0, 0, 2, 1, 0, 5], {(0, 0, 1, 1, 0)}),
        ([0, 0, 0, 0, 3, 5], {(0, 0, 0, 0, 1)}),
        ([0, 0, 0, 0, 0, 5], set()),
    ],
)
def test_take3_fewer_colours_only_when_the_bank_lacks_them(bank, expected):
    s = make_state()
    s.bank = bank
    moves = of_kind(legal_moves(s), TAKE3)
    assert {m.take for m in moves} == expected
    assert len(moves) == len(expected)  # no return, no noble: one move per colour set


def test_reserve_limit_and_targets():
    s = make_state(p0={"reserved": [4, 5]})
    s.decks[1] = []  # no blind level 2
    s.slots[5] = None
    targets = sorted(m.target for m in of_kind(legal_moves(s), RESERVE))
    assert targets == [0, 1, 2, 3, 4, 6, 7, 8, 9, 10, 11, 12, 14]
    s.players[0].reserved.append(6)
    assert of_kind(legal_moves(s), RESERVE) == []


def test_reserve_gives_gold_if_any_left():
    s = make_state()
    after = apply_move(s, Move(RESERVE, 9))
    p = after.players[0]
    assert p.reserved == [71] and p.tokens[5] == 1 and after.bank[5] == 4
    assert after.slots[9] == 89  # refilled in place from the top of the level-3 deck
    s.bank[5] = 0
    after = apply_move(s, Move(RESERVE, 9))
    assert after.players[0].tokens[5] == 0 and after.bank[5] == 0


def test_blind_reserve_takes_the_top_of_the_deck():
    s = make_state(p0={"reserved": [4]})
    after = apply_move(s, Move(RESERVE, 13))
    assert after.players[0].reserved == [4, 69]
    assert len(after.decks[1]) == len(s.decks[1]) - 1 and after.slots == s.slots
    s.decks[1] = []
    assert 13 not in {m.target for m in of_kind(legal_moves(s), RESERVE)}


def _expected_returns(held: list[int], excess: int) -> set[tuple[int, ...]]:
    return {r for r in product(*(range(h + 1) for h in held)) if sum(r) == excess}


def test_every_return_choice_above_ten():
    # 9 tokens (gold included); taking W B R makes 12: return 2, from any colour held,
    # red (only just taken) and gold included.
    s = make_state(p0={"tokens": [3, 3, 2, 0, 0, 1]})
    take = (1, 1, 0, 1, 0)
    moves = [m for m in of_kind(legal_moves(s), TAKE3) if m.take == take]
    held_after = [4, 4, 2, 1, 0, 1]
    expected = _expected_returns(held_after, 2)
    assert {m.returned for m in moves} == expected and len(moves) == len(expected)
    assert (0, 0, 0, 1, 0, 1) in expected  # the just-taken red and the gold
    for m in moves:
        p = apply_move(s, m).players[0]
        assert sum(p.tokens) == 10 and min(p.tokens) >= 0
    # A take that stays at 10 or below needs no return.
    s.players[0].tokens = [2, 2, 2, 0, 0, 1]
    assert {m.returned for m in of_kind(legal_moves(s), TAKE3)} == {(0,) * 6}


def test_return_after_a_reserve_at_ten_includes_the_new_gold():
    s = make_state(p0={"tokens": [4, 0, 3, 3, 0, 0]})
    moves = [m for m in of_kind(legal_moves(s), RESERVE) if m.target == 0]
    assert {m.returned for m in moves} == {
        (1, 0, 0, 0, 0, 0),
        (0, 0, 1, 0, 0, 0),
        (0, 0, 0, 1, 0, 0),
        (0, 0, 0, 0, 0, 1),
    }
    s.bank[5] = 0  # no gold: the reserve keeps the player at 10
    assert {m.returned for m in of_kind(legal_moves(s), RESERVE)} == {(0,) * 6}


def test_build_with_bonuses_and_gold():
    # Card 88 costs 3G 6R 3K. Bonuses 1G 2R 0K leave 2G 4R 3K to pay; the player holds
    # 2G 3R 2K and 2 gold: coloured tokens first, then gold for the 1R + 1K short.
    s = make_state(p0={"tokens": [1, 0, 2, 3, 2, 2], "bonuses": [0, 0, 1, 2, 0], "bought": 3})
    s.slots[11] = K_CARD_LV3
    assert Move(BUILD, 11) in legal_moves(s)
    after = apply_move(s, Move(BUILD, 11))
    p = after.players[0]
    assert p.tokens == [1, 0, 0, 0, 0, 0]
    assert p.bonuses == [0, 0, 1, 2, 1] and p.bought == 4 and p.points == 4
    assert after.bank == [4, 4, 6, 7, 6, 7]
    assert after.slots[11] == 89
    # One gold fewer: no longer affordable.
    s.players[0].tokens[5] = 1
    assert Move(BUILD, 11) not in legal_moves(s)


def test_build_a_reserved_card_keeps_the_others_in_order():
    # Card 24: red bonus, cost 2B 1G; nothing on display is affordable with 2B 1G.
    s = make_state(p0={"reserved": [8, 24, 9], "tokens": [0, 2, 1, 0, 0, 0]})
    assert of_kind(legal_moves(s), BUILD) == [Move(BUILD, 13)]
    after = apply_move(s, Move(BUILD, 13))
    assert after.players[0].reserved == [8, 9] and after.players[0].bonuses[3] == 1
    assert after.slots == s.slots  # a reserved card leaves no slot to refill


def test_empty_deck_leaves_the_slot_empty():
    s = make_state(p0={"tokens": [0, 0, 0, 2, 1, 0]})
    s.decks[0] = []
    after = apply_move(s, Move(BUILD, 0))
    assert after.slots[0] is None and after.slots[1:] == s.slots[1:]
    assert 0 not in {m.target for m in legal_moves(after)}


def test_noble_at_the_end_of_a_non_build_turn():
    # Bonuses already meet noble 0 (4W 4B) — e.g. a second noble reached by the same build.
    s = make_state(p0={"bonuses": [4, 4, 0, 0, 0], "points": 5})
    s.nobles = [3, 0, 9]
    moves = legal_moves(s)
    assert {m.noble for m in moves} == {1}  # every move, whatever the action, brings it
    take = next(m for m in moves if m.action == TAKE3)
    after = apply_move(s, take)
    assert after.nobles == [3, 9] and after.players[0].points == 8


def test_choice_between_two_nobles():
    # Buying a white card brings the bonuses to 4W 4B 4K: nobles 0 (4W 4B) and 1 (4W 4K).
    s = make_state(p0={"bonuses": [3, 4, 0, 0, 4], "tokens": [0, 0, 0, 2, 1, 0]})
    s.nobles = [0, 5, 1]
    builds = [m for m in of_kind(legal_moves(s), BUILD) if m.target == 0]
    assert sorted(m.noble for m in builds) == [0, 2]
    others = [m for m in legal_moves(s) if m.action != BUILD]
    assert others and all(m.noble == -1 for m in others)
    after = apply_move(s, Move(BUILD, 0, noble=2))
    assert after.nobles == [0, 5] and after.players[0].points == NOBLES[1].vp
    # The other noble may visit at the end of a later turn (one per turn).
    after.current = 0
    assert {m.noble for m in legal_moves(after)} == {0}


def test_the_round_is_finished_after_15_points():
    # Seat 0 reaches 15 with a 1-point card (40: 3G 2R 2K); seats 1 and 2 still play.
    # Seat 2 gets there too with card 41 (1 point, 2W 3B 3R) and wins on points.
    s = make_state(
        3,
        p0={"points": 14, "tokens": [0, 0, 3, 2, 2, 0]},
        p2={"points": 15, "bought": 9, "tokens": [2, 3, 0, 3, 0, 0]},
    )
    take = Move(TAKE3, take=(1, 1, 1, 0, 0))
    s = apply_move(s, Move(BUILD, 4))
    assert s.players[0].points == 15 and s.final_round and s.outcome is None
    s = apply_move(s, take)
    assert s.outcome is None and s.current == 2
    s = apply_move(s, Move(BUILD, 5))  # seat 2 reaches 16 in the same round
    assert s.outcome == FINISHED and s.round == 1
    assert winners(s) == [2] and legal_moves(s) == []
    with pytest.raises(ValueError):
        apply_move(s, take)


def test_no_end_before_15_points():
    s = make_state(2, p0={"points": 13, "tokens": [0, 0, 3, 2, 2, 0]})
    s = apply_move(s, Move(BUILD, 4))
    s = apply_move(s, Move(TAKE3, take=(1, 1, 1, 0, 0)))
    assert s.players[0].points == 14 and s.outcome is None and s.round == 2


def test_tie_breaks_and_shared_win():
    s = make_state(3)
    for p, (points, bought) in zip(s.players, ((15, 9), (15, 8), (12, 5)), strict=True):
        p.points, p.bought = points, bought
    assert winners(s) == [1]
    s.players[0].bought = 8
    assert winners(s) == [0, 1]
    s.players[2].points = 16
    assert winners(s) == [2]


def test_pass_and_blocked():
    # Nothing in the bank but gold, every player with 3 reserved cards and nothing affordable.
    s = make_state(2, p0={"reserved": [70, 71, 72]}, p1={"reserved": [73, 74, 75]})
    s.bank = [0, 0, 0, 0, 0, 5]
    assert legal_moves(s) == []
    s = pass_turn(s)
    assert s.current == 1 and s.outcome is None and s.passes == 1
    assert legal_moves(s) == []
    s = pass_turn(s)
    assert s.outcome == BLOCKED and legal_moves(s) == []
    with pytest.raises(ValueError):
        pass_turn(s)


def test_a_pass_does_not_block_when_another_player_moves():
    s = make_state(2, p0={"reserved": [70, 71, 72]})
    s.bank = [0, 0, 0, 0, 0, 5]
    s = pass_turn(s)
    reserve = of_kind(legal_moves(s), RESERVE)[0]
    s = apply_move(s, reserve)
    assert s.outcome is None and s.round == 2 and s.passes == 0


def test_round_cap_truncates():
    s = make_state(2)
    s.max_rounds = 3
    s.round = 3
    s = apply_move(s, Move(TAKE3, take=(1, 1, 1, 0, 0)))
    assert s.outcome is None
    s = apply_move(s, Move(TAKE3, take=(1, 1, 1, 0, 0)))
    assert s.outcome == TRUNCATED and s.round == 3
    record = play_game(1, 2, "random", seed=3, max_rounds=2)
    assert record.outcome == TRUNCATED and record.rounds == 2 and len(record.rows) <= 4


def test_moves_are_distinct_and_all_applicable():
    s = new_game(4, seed=8)
    for _ in range(60):
        moves = legal_moves(s)
        assert len(set(moves)) == len(moves)
        kinds = Counter(m.action for m in moves)
        assert kinds[TAKE3] >= 1 or s.bank[:5] == [0] * 5
        for m in moves:
            apply_move(s, m)  # raises on an illegal token count
        s = apply_move(s, moves[len(moves) // 2])
        if s.outcome:
            break
