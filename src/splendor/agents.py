"""Self-play agents: ``choose(state, moves) -> Move`` over the list of legal moves.

- :class:`RandomAgent`: uniform over the legal moves.
- :class:`GreedyAgent`: buys the most valuable affordable card; otherwise picks a target
  card (best points per turn still needed) and plays the take or reserve that brings it
  closest, returning the tokens it needs least. Ties are broken at random (seeded).
"""

from __future__ import annotations

import random

from splendor.cards import CARDS, NOBLES
from splendor.columns import BUILD, RESERVE
from splendor.rules import BLIND, RESERVED, Move, shortfall
from splendor.state import GOLD, GameState


class RandomAgent:
    name = "random"

    def __init__(self, seed: int | None = None):
        self.rng = random.Random(seed)

    def choose(self, state: GameState, moves: list[Move]) -> Move:
        return moves[self.rng.randrange(len(moves))]


def _distance(cost: tuple[int, ...], bonuses: list[int], tokens: list[int]) -> int:
    """Tokens still missing to build a card once gold is used (0 = affordable)."""
    return max(0, shortfall(cost, bonuses, tokens) - tokens[GOLD])


class GreedyAgent:
    name = "greedy"

    # Weights of the heuristic (points are what wins; a bonus toward a noble is worth some).
    NOBLE_BONUS = 0.6  # a card whose bonus a noble still needs
    ENGINE = 0.35  # any card: its bonus makes later cards cheaper
    GOLD_SPENT = 0.15  # per gold token used to build
    RESERVE_PENALTY = 1.2  # reserving costs a turn; do it when takes do not help more

    def __init__(self, seed: int | None = None):
        self.rng = random.Random(seed)

    def _noble_needs(self, state: GameState, bonuses: list[int]) -> list[int]:
        """Per colour, how many nobles on the board still need more of that bonus."""
        need = [0] * 5
        for nid in state.nobles:
            for c, r in enumerate(NOBLES[nid].req):
                if bonuses[c] < r:
                    need[c] += 1
        return need

    def _card_value(self, card_id: int, noble_need: list[int]) -> float:
        card = CARDS[card_id]
        return card.vp + self.ENGINE + self.NOBLE_BONUS * min(1, noble_need[card.bonus])

    def choose(self, state: GameState, moves: list[Move]) -> Move:
        p = state.players[state.current]
        noble_need = self._noble_needs(state, p.bonuses)
        jitter = self.rng.random

        builds = [m for m in moves if m.action == BUILD]
        if builds:
            return max(
                builds, key=lambda m: self._build_score(state, m, noble_need) + 1e-6 * jitter()
            )

        # Target: the card with the best value per turn of tokens still to collect.
        candidates = [cid for cid in state.slots if cid is not None] + list(p.reserved)
        if not candidates:
            return moves[self.rng.randrange(len(moves))]

        def target_score(cid: int) -> float:
            turns = _distance(CARDS[cid].cost, p.bonuses, p.tokens) / 3
            bonus = 0.3 if cid in p.reserved else 0.0
            return (self._card_value(cid, noble_need) + bonus) / (1 + turns)

        target = max(candidates, key=target_score)
        cost = CARDS[target].cost
        # Colours wanted by the other cards on display, as a weak tie-breaker.
        demand = [0] * 5
        for cid in candidates:
            for c, n in enumerate(CARDS[cid].cost):
                demand[c] += n

        def score(m: Move) -> float:
            tokens = list(p.tokens)
            for c, n in enumerate(m.take):
                tokens[c] += n
            extra = 0.0
            if m.action == RESERVE:
                if state.bank[GOLD] > 0:
                    tokens[GOLD] += 1
                reserved_id = self._reserved_card(state, m)
                extra -= self.RESERVE_PENALTY
                if reserved_id == target:
                    extra += 0.5
                elif reserved_id is not None:
                    extra += 0.1 * CARDS[reserved_id].vp
            for c, n in enumerate(m.returned):
                tokens[c] -= n
            dist = _distance(cost, p.bonuses, tokens)
            useful = sum(min(t, d) for t, d in zip(tokens, demand, strict=False)) / 100
            return -dist + extra + useful + 0.05 * tokens[GOLD] + 1e-6 * jitter()

        return max(moves, key=score)

    @staticmethod
    def _reserved_card(state: GameState, m: Move) -> int | None:
        if m.target < BLIND:
            return state.slots[m.target]
        return None  # blind: unknown to the player

    def _build_score(self, state: GameState, m: Move, noble_need: list[int]) -> float:
        p = state.players[state.current]
        cid = state.slots[m.target] if m.target < RESERVED else p.reserved[m.target - RESERVED]
        card = CARDS[cid]
        gold = shortfall(card.cost, p.bonuses, p.tokens)
        noble_points = NOBLES[state.nobles[m.noble]].vp if m.noble >= 0 else 0
        return self._card_value(cid, noble_need) + noble_points - self.GOLD_SPENT * gold


AGENTS = {"random": RandomAgent, "greedy": GreedyAgent}


def make_agent(name: str, seed: int | None = None):
    """An agent by name (``random`` or ``greedy``)."""
    try:
        return AGENTS[name](seed)
    except KeyError:
        raise ValueError(f"unknown agent {name!r}; choose from {sorted(AGENTS)}") from None
