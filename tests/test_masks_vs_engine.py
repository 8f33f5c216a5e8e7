"""The vectorised masks against the rules engine, on games played here with the engine.

Each game of the sample is played move by move with ``splendor.rules`` (2, 3 and 4 players,
random and greedy agents), keeping the engine's own state and its legal moves at every
decision. The logged rows go through the CSV writer and back through the reader, and the
masks and labels are computed from what the reader returns, as the preprocessing job does.

On the engine's side nothing of the log format's code is used: the class of a move for
each head comes from the tables of ``docs/input-format.md``, written out in this file
(:data:`TAKE3_CLASS`, :data:`REMOVED_CLASS`, anchored on the spec's worked examples). For
every row and head, the mask must equal the union of the classes of the state's legal
moves (``gems_removed`` class 0 is always set, spec), and the labels must be the classes
of the move the agent played.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
import pytest

from imitation_learning.per_file.labels import compute_labels, find_inconsistent_rows
from imitation_learning.per_file.masks import compute_masks
from splendor import rules
from splendor.agents import make_agent
from splendor.log_codec import encode_values
from splendor.log_reader import read_game_log
from splendor.log_writer import write_game_log
from splendor.rules import Move, apply_move, legal_moves, pass_turn
from splendor.simulate import derive_seed
from splendor.state import GameState, new_game

# (num_players, agent, seed): one game each, every seat driven by that agent.
GAMES = [(n, agent, seed) for n in (2, 3, 4) for agent in ("random", "greedy") for seed in range(4)]

# --- the spec's class tables, written out by hand ------------------------------------------

#: Classes per head (``docs/input-format.md``, "The 7 prediction heads").
HEAD_CLASSES = {
    "action_type": 4,
    "card_selection": 15,
    "card_reservation": 15,
    "gem_take3": 26,
    "gem_take2": 5,
    "noble": 5,
    "gems_removed": 84,
}

ACTION_CLASS = {"build": 0, "reserve": 1, "take 2 tokens": 2, "take 3 tokens": 3}
#: The engine's action codes by what they mean (the engine's constants, the spec's names).
ENGINE_ACTION = {
    rules.BUILD: "build",
    rules.RESERVE: "reserve",
    rules.TAKE2: "take 2 tokens",
    rules.TAKE3: "take 3 tokens",
}

COLOUR_LETTERS = "WBGRK"
#: gem_take3 classes, copied from the spec's table: the colours taken -> class.
TAKE3_CLASS = {
    letters: i
    for i, letters in enumerate(
        "- W B G R K WB WG WR WK BG BR BK GR GK RK WBG WBR WBK WGR WGK WRK BGR BGK BRK GRK".split()
    )
}

#: gems_removed classes: every (w, b, g, r, k, gold) with total 0..3, in ascending
#: lexicographic order (the spec's definition, enumerated here).
REMOVED_CLASS = {
    t: i
    for i, t in enumerate(sorted(t for t in itertools.product(range(4), repeat=6) if sum(t) <= 3))
}


def test_class_tables_match_the_spec_examples():
    assert len(TAKE3_CLASS) == HEAD_CLASSES["gem_take3"]
    assert TAKE3_CLASS["WB"] == 6 and TAKE3_CLASS["RK"] == 15 and TAKE3_CLASS["GRK"] == 25
    assert len(REMOVED_CLASS) == HEAD_CLASSES["gems_removed"]
    # the spec's worked examples
    assert REMOVED_CLASS[(0, 0, 0, 0, 0, 0)] == 0
    assert REMOVED_CLASS[(0, 0, 0, 0, 0, 1)] == 1  # one gold
    assert REMOVED_CLASS[(0, 0, 0, 0, 1, 0)] == 4  # one black
    assert REMOVED_CLASS[(1, 0, 0, 0, 0, 0)] == 56  # one white
    assert REMOVED_CLASS[(3, 0, 0, 0, 0, 0)] == 83  # three whites
    assert set(ENGINE_ACTION.values()) == set(ACTION_CLASS)


def running_index(state: GameState, slot: int) -> int:
    """The log's visible card index of face-up ``slot``: present cards before it."""
    return sum(card is not None for card in state.slots[:slot])


def move_classes(state: GameState, move: Move) -> dict[str, int]:
    """The class of ``move`` for every head (-1 = not applicable), by the spec's tables."""
    action = ENGINE_ACTION[move.action]
    out = dict.fromkeys(HEAD_CLASSES, -1)
    out["action_type"] = ACTION_CLASS[action]
    if action in ("build", "reserve"):
        # build: slot 0-11 or 12 + r (reserved card r); reserve: slot 0-11 or 12/13/14 blind
        index = running_index(state, move.target) if move.target < 12 else move.target
        out["card_selection" if action == "build" else "card_reservation"] = index
    elif action == "take 3 tokens":
        taken = "".join(c for c, n in zip(COLOUR_LETTERS, move.take, strict=True) if n)
        out["gem_take3"] = TAKE3_CLASS[taken]
    else:
        (colour,) = [c for c, n in enumerate(move.take) if n]
        assert move.take[colour] == 2
        out["gem_take2"] = colour
    out["noble"] = move.noble
    out["gems_removed"] = REMOVED_CLASS[tuple(move.returned)]
    return out


# --- the sample --------------------------------------------------------------------------


@dataclass
class Decision:
    state: GameState
    moves: list[Move]
    played: Move


def play_and_log(n: int, agent: str, seed: int, root) -> tuple[list[Decision], np.ndarray]:
    """Play one game with the engine; return its decisions and the rows read back from
    its log (written by the CSV writer, read by the reader)."""
    game_id = 700_000 + 100 * n + seed
    game_seed = 1000 * n + seed
    state = new_game(n, game_seed, game_id=game_id)
    agents = [make_agent(agent, derive_seed(game_seed, seat)) for seat in range(n)]
    decisions, rows = [], []
    while state.outcome is None:
        moves = legal_moves(state)
        if not moves:
            state = pass_turn(state)
            continue
        move = agents[state.current].choose(state, moves)
        decisions.append(Decision(state, moves, move))
        rows.append(encode_values(state, move, game_id))
        state = apply_move(state, move)
    written = np.array(rows, dtype=np.float64)
    path = write_game_log(written, root, n, game_id)
    log = read_game_log(path)
    assert log.rejections == [] and len(log.values) == len(decisions)
    assert np.array_equal(log.values, written, equal_nan=True)  # the round trip is exact
    return decisions, log.values


@dataclass
class Seen:
    states: int = 0
    moves: int = 0
    counts: dict = field(default_factory=dict)
    disagreements: list = field(default_factory=list)
    wrong_labels: list = field(default_factory=list)
    illegal_decisions: list = field(default_factory=list)

    def add(self, name: str, rows) -> None:
        self.counts[name] = self.counts.get(name, 0) + int(np.sum(rows))


@pytest.fixture(scope="module")
def comparison(tmp_path_factory) -> Seen:
    root = tmp_path_factory.mktemp("engine-games")
    seen = Seen()
    for n, agent, seed in GAMES:
        decisions, values = play_and_log(n, agent, seed, root)
        masks = compute_masks(values)
        labels = compute_labels(values)
        for head, classes in HEAD_CLASSES.items():
            assert masks[head].shape == (len(values), classes), head
        seen.states += len(decisions)
        for i, d in enumerate(decisions):
            where = (n, agent, seed, i)
            union = {head: np.zeros(classes, dtype=bool) for head, classes in HEAD_CLASSES.items()}
            union["gems_removed"][0] = True
            per_move = [move_classes(d.state, m) for m in d.moves]
            for classes in per_move:
                for head, c in classes.items():
                    if c >= 0:
                        union[head][c] = True
            for head in HEAD_CLASSES:
                if not np.array_equal(masks[head][i], union[head]):
                    seen.disagreements.append(
                        (
                            where,
                            head,
                            f"mask only: {np.flatnonzero(masks[head][i] & ~union[head])}",
                            f"engine only: {np.flatnonzero(union[head] & ~masks[head][i])}",
                        )
                    )
            played = move_classes(d.state, d.played)
            for head, c in played.items():
                if labels[head][i] != c:
                    seen.wrong_labels.append((where, head, int(labels[head][i]), c))
                if c >= 0 and not masks[head][i, c]:
                    seen.illegal_decisions.append((where, head, c))
            seen.moves += len(d.moves)
            _count_situations(seen, d, per_move)
        seen.illegal_decisions += find_inconsistent_rows(values, labels, masks)
    return seen


def _count_situations(seen: Seen, d: Decision, per_move: list[dict]) -> None:
    """Situations the sample must contain, from the engine's state and moves."""
    player = d.state.players[d.state.current]
    returned = [sum(m.returned) for m in d.moves]
    noble_moves = [(m, c) for m, c in zip(d.moves, per_move, strict=True) if c["noble"] >= 0]
    seen.add("states needing a return", any(returned))
    seen.add("states where a move returns 3", 3 in returned)
    seen.add("states at 10 tokens", sum(player.tokens) == 10)
    seen.add("states with a noble in reach", bool(noble_moves))
    seen.add(
        "states with a noble reached by a build",
        any(ENGINE_ACTION[m.action] == "build" for m, _ in noble_moves),
    )
    # a noble visits whatever the move (rare: two nobles met on the same turn)
    seen.add(
        "states with a noble already qualified",
        any(ENGINE_ACTION[m.action] != "build" for m, _ in noble_moves),
    )
    seen.add("states with an empty deck", any(len(deck) == 0 for deck in d.state.decks))
    seen.add("states with 3 reserved cards", len(player.reserved) == 3)
    seen.add("states with an empty face-up slot", None in d.state.slots)
    seen.add("states with fewer than 3 colours in the bank", sum(x > 0 for x in d.state.bank[:5]) < 3)
    seen.add("states with a blind reserve", any(c["card_reservation"] >= 12 for c in per_move))
    seen.add("states with a reserved card to build", any(c["card_selection"] >= 12 for c in per_move))


MINIMUM = {"states with a noble already qualified": 1}


def test_sample_is_large_and_covers_the_hard_cases(comparison):
    assert comparison.states >= 2000, comparison.states
    assert len(comparison.counts) == 12
    for name, count in comparison.counts.items():
        assert count >= MINIMUM.get(name, 20), (name, count, comparison.counts)


def test_masks_equal_union_of_legal_moves(comparison):
    assert not comparison.disagreements, "\n".join(map(str, comparison.disagreements[:20]))


def test_labels_are_the_classes_of_the_moves_played(comparison):
    assert not comparison.wrong_labels, comparison.wrong_labels[:20]


def test_logged_decisions_are_legal_and_consistent(comparison):
    assert not comparison.illegal_decisions, comparison.illegal_decisions[:20]
