"""The vectorised masks against the rules engine, on states of generated games.

Games come from ``splendor.simulate.play_game`` (2, 3 and 4 players, random and greedy
agents). For every logged row, each head's mask computed from the row must equal the union
over ``legal_moves(state)`` of the class each move gives that head (the labels of
``encode_row(state, move)``, built here with its list form ``encode_values``), class by
class, where ``state`` is the row's state decoded by the codec. ``gems_removed`` class 0 is always set in the mask (spec), so the union gets it
too. The row's own decision must also be in its masks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest

from imitation_learning.labels import compute_labels, find_inconsistent_rows
from imitation_learning.masks import compute_masks, masks_contain_labels
from splendor import columns as C
from splendor.log_codec import decode_state, encode_values
from splendor.rules import Move, legal_moves
from splendor.simulate import play_game

# (num_players, agent, seed): one game each, every seat driven by that agent.
GAMES = [(n, agent, seed) for n in (2, 3, 4) for agent in ("random", "greedy") for seed in range(4)]


def generated_states(n: int, agent: str, seed: int) -> tuple[np.ndarray, list[list[Move]]]:
    """The logged rows of one self-play game and the legal moves of each row's state.

    The masks are computed from the rows as written to the log (what the preprocessing job
    reads); the engine's moves come from the state decoded back from each row.
    """
    record = play_game(700_000 + 100 * n + seed, n, agent, seed=1000 * n + seed)
    states = [decode_state(row) for row in record.rows]
    return record.rows, states, [legal_moves(s) for s in states]


def engine_union(states: list, moves: list[list[Move]]) -> tuple[dict, dict, np.ndarray]:
    """Per head, the union of the legal moves' labels (bool (n, classes)); also the labels
    of every move and the index of the state each move belongs to."""
    # encode_values is encode_row's list form: one np.array call for the whole block.
    move_rows = np.array(
        [encode_values(s, m) for s, ms in zip(states, moves, strict=True) for m in ms],
        dtype=np.float64,
    )
    owner = np.repeat(np.arange(len(states)), [len(ms) for ms in moves])
    labels = compute_labels(move_rows)
    union = {}
    for head, classes in C.HEADS.items():
        u = np.zeros((len(states), classes), dtype=bool)
        lab = labels[head]
        ok = lab >= 0
        u[owner[ok], lab[ok]] = True
        union[head] = u
    union["gems_removed"][:, 0] = True
    return union, labels, owner


@dataclass
class Seen:
    states: int = 0
    moves: int = 0
    counts: dict = field(default_factory=dict)
    disagreements: list = field(default_factory=list)
    illegal_decisions: list = field(default_factory=list)

    def add(self, name: str, rows: np.ndarray) -> None:
        self.counts[name] = self.counts.get(name, 0) + int(rows.sum())


def _states_where(n: int, owner: np.ndarray, move_condition: np.ndarray) -> np.ndarray:
    out = np.zeros(n, dtype=bool)
    out[owner[move_condition]] = True
    return out


@pytest.fixture(scope="module")
def comparison() -> Seen:
    seen = Seen()
    for n, agent, seed in GAMES:
        rows, states, moves = generated_states(n, agent, seed)
        assert all(moves), "a logged row whose state has no legal move"
        union, move_labels, owner = engine_union(states, moves)
        masks = compute_masks(rows)
        seen.states += len(rows)
        seen.moves += len(owner)
        for head in C.HEADS:
            diff = masks[head] != union[head]
            for i in np.flatnonzero(diff.any(axis=1))[:3]:
                seen.disagreements.append(
                    (
                        (n, agent, seed, int(i)),
                        head,
                        "mask only: " + str(np.flatnonzero(masks[head][i] & ~union[head][i])),
                        "engine only: " + str(np.flatnonzero(union[head][i] & ~masks[head][i])),
                    )
                )
        row_labels = compute_labels(rows)
        for head, ok in masks_contain_labels(masks, row_labels).items():
            seen.illegal_decisions += [
                ((n, agent, seed, int(i)), head) for i in np.flatnonzero(~ok)
            ]
        seen.illegal_decisions += find_inconsistent_rows(rows, row_labels, masks)

        # Situations the sample must contain.
        k = len(rows)
        noble = move_labels["noble"] >= 0
        is_build = move_labels["action_type"] == C.BUILD
        tokens = np.nansum(rows[:, C.PLAYER_GEMS[0]], axis=1)
        reserved = (~np.isnan(rows[:, C.PLAYER_RESERVED[0, :, C.F_LEVEL]])).sum(axis=1)
        seen.add(
            "states needing a return", _states_where(k, owner, move_labels["gems_removed"] > 0)
        )
        returned = C.REMOVED_MATRIX.sum(axis=1)[np.maximum(move_labels["gems_removed"], 0)]
        seen.add("states where a move returns 3", _states_where(k, owner, returned == 3))
        seen.add("states at 10 tokens", tokens == 10)
        seen.add("states with a noble in reach", _states_where(k, owner, noble))
        seen.add(
            "states with a noble reached by a build", _states_where(k, owner, noble & is_build)
        )
        # a noble visits whatever the move (rare: two nobles met on the same turn)
        seen.add(
            "states with a noble already qualified", _states_where(k, owner, noble & ~is_build)
        )
        seen.add("states with an empty deck", (rows[:, C.DECKS] == 0).any(axis=1))
        seen.add("states with 3 reserved cards", reserved == 3)
        seen.add(
            "states with an empty face-up slot",
            np.isnan(rows[:, C.CARDS[:, C.F_LEVEL]]).any(axis=1),
        )
        seen.add(
            "states with fewer than 3 colours in the bank",
            (rows[:, C.BANK[:5]] > 0).sum(axis=1) < 3,
        )
    return seen


MINIMUM = {"states with a noble already qualified": 1}


def test_sample_is_large_and_covers_the_hard_cases(comparison):
    assert comparison.states >= 2000, comparison.states
    for name, count in comparison.counts.items():
        assert count >= MINIMUM.get(name, 20), (name, count, comparison.counts)


def test_masks_equal_union_of_legal_moves(comparison):
    assert not comparison.disagreements, "\n".join(map(str, comparison.disagreements[:20]))


def test_logged_decisions_are_legal_and_consistent(comparison):
    assert not comparison.illegal_decisions, comparison.illegal_decisions[:20]
