"""The vectorised masks against the rules engine, on states of generated games.

For every state reached in self-play (2, 3 and 4 players, random and greedy agents), each
head's mask must equal the union over ``legal_moves(state)`` of the class each move gives
that head (labels of ``encode_row(state, move)``), class by class. ``gems_removed`` class 0
is always set in the mask (spec), so the union gets it too.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest

from imitation_learning.labels import compute_labels
from imitation_learning.masks import compute_masks
from splendor import columns as C
from splendor.agents import make_agent
from splendor.log_codec import encode_row
from splendor.rules import apply_move, legal_moves, pass_turn
from splendor.state import GameState, new_game

# (num_players, agent names by seat, seed); each game is one seed.
GAMES = [
    (n, agents, seed)
    for n in (2, 3, 4)
    for agents in ("random", "greedy", "mixed")
    for seed in range(3)
]


def agents_for(n: int, kind: str, seed: int) -> list:
    if kind == "mixed":
        return [make_agent("greedy" if s % 2 else "random", seed * 10 + s) for s in range(n)]
    return [make_agent(kind, seed * 10 + s) for s in range(n)]


def generated_states(n: int, kind: str, seed: int) -> list[tuple[GameState, list]]:
    agents = agents_for(n, kind, seed)
    state = new_game(n, seed=1000 * n + seed)
    out = []
    while not state.is_over:
        moves = legal_moves(state)
        if not moves:
            state = pass_turn(state)
            continue
        out.append((state, moves))
        state = apply_move(state, agents[state.current].choose(state, moves))
    return out


@dataclass
class Seen:
    states: int = 0
    moves: int = 0
    counts: dict = field(default_factory=dict)

    def add(self, name: str, k: int) -> None:
        self.counts[name] = self.counts.get(name, 0) + int(k)


def engine_union(samples: list[tuple[GameState, list]]) -> tuple[np.ndarray, dict]:
    """The state rows and, per head, the union of the legal moves' labels (bool (n, k))."""
    states = np.stack([encode_row(s, None) for s, _ in samples])
    move_rows = np.stack([encode_row(s, m) for s, moves in samples for m in moves])
    owner = np.repeat(np.arange(len(samples)), [len(moves) for _, moves in samples])
    labels = compute_labels(move_rows)
    union = {}
    for head, classes in C.HEADS.items():
        u = np.zeros((len(samples), classes), dtype=bool)
        lab = labels[head]
        ok = lab >= 0
        u[owner[ok], lab[ok]] = True
        union[head] = u
    union["gems_removed"][:, 0] = True
    labels["owner"] = owner
    return states, union, labels


@pytest.fixture(scope="module")
def comparison():
    seen = Seen()
    disagreements = []
    for n, kind, seed in GAMES:
        samples = generated_states(n, kind, seed)
        states, union, labels = engine_union(samples)
        masks = compute_masks(states)
        seen.states += len(samples)
        seen.moves += len(labels["owner"])
        for head in C.HEADS:
            diff = masks[head] != union[head]
            for i in np.flatnonzero(diff.any(axis=1))[:3]:
                disagreements.append(
                    (
                        (n, kind, seed, int(i)),
                        head,
                        "mask only: " + str(np.flatnonzero(masks[head][i] & ~union[head][i])),
                        "engine only: " + str(np.flatnonzero(union[head][i] & ~masks[head][i])),
                    )
                )
        # Situations the sample must contain.
        owner = labels["owner"]
        returns = np.zeros(len(samples), dtype=bool)
        returns[owner[labels["gems_removed"] > 0]] = True
        noble = np.zeros(len(samples), dtype=bool)
        noble[owner[labels["noble"] >= 0]] = True
        noble_by_build = np.zeros(len(samples), dtype=bool)
        noble_by_build[owner[(labels["noble"] >= 0) & (labels["action_type"] == C.BUILD)]] = True
        already = np.zeros(len(samples), dtype=bool)  # a noble visits whatever the move
        already[owner[(labels["noble"] >= 0) & (labels["action_type"] != C.BUILD)]] = True
        tokens = np.nansum(states[:, C.PLAYER_GEMS[0]], axis=1)
        reserved = (~np.isnan(states[:, C.PLAYER_RESERVED[0, :, C.F_LEVEL]])).sum(axis=1)
        seen.add("states needing a return", returns.sum())
        seen.add("states at 10 tokens", (tokens == 10).sum())
        seen.add("states with a noble in reach", noble.sum())
        seen.add("states with a noble reached by a build", noble_by_build.sum())
        seen.add("states with a noble already qualified", already.sum())
        seen.add("states with an empty deck", (states[:, C.DECKS] == 0).any(axis=1).sum())
        seen.add("states with 3 reserved cards", (reserved == 3).sum())
        seen.add(
            "states with an empty face-up slot",
            np.isnan(states[:, C.CARDS[:, C.F_LEVEL]]).any(axis=1).sum(),
        )
        seen.add(
            "states with fewer than 3 colours in the bank",
            ((states[:, C.BANK[:5]] > 0).sum(axis=1) < 3).sum(),
        )
    return seen, disagreements


def test_sample_is_large_and_covers_the_hard_cases(comparison):
    seen, _ = comparison
    assert seen.states >= 2000, seen.states
    # Already-qualified nobles are rare (a noble visits as soon as it is met, so it takes
    # two nobles met on the same turn); everything else occurs by the dozen.
    for name, count in seen.counts.items():
        least = 1 if name == "states with a noble already qualified" else 20
        assert count >= least, (name, count, seen.counts)


def test_masks_equal_union_of_legal_moves(comparison):
    seen, disagreements = comparison
    assert not disagreements, "\n".join(map(str, disagreements[:20]))
