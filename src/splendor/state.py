"""The game state: small lists of ints, cheap to copy.

A :class:`GameState` holds everything the rules need. Cards and nobles are ids into
:data:`splendor.cards.CARDS` / :data:`splendor.cards.NOBLES`. Colour vectors are lists in
the order white, blue, green, red, black (then gold for token vectors).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from splendor.cards import CARD_IDS_BY_LEVEL, NOBLES
from splendor.limits import GOLD_TOKENS, TOKENS_PER_COLOUR

GOLD = 5  # index of gold in a token vector
DEFAULT_MAX_ROUNDS = 100
UNKNOWN_CARD = -1  # deck placeholder in a state decoded from a log (decks known by count)

FINISHED, BLOCKED, TRUNCATED = "finished", "blocked", "truncated"


@dataclass(slots=True)
class PlayerState:
    tokens: list[int] = field(default_factory=lambda: [0] * 6)  # 5 colours + gold
    bonuses: list[int] = field(default_factory=lambda: [0] * 5)
    reserved: list[int] = field(default_factory=list)  # card ids, reservation order
    points: int = 0  # cards + nobles
    bought: int = 0  # number of cards bought

    def copy(self) -> PlayerState:
        return PlayerState(
            self.tokens.copy(), self.bonuses.copy(), self.reserved.copy(), self.points, self.bought
        )


@dataclass(slots=True)
class GameState:
    num_players: int
    bank: list[int]  # 5 colours + gold
    slots: list[int | None]  # 12 face-up slots, 0-3 level 1, 4-7 level 2, 8-11 level 3
    decks: list[list[int]]  # per level, the top card is the LAST element
    nobles: list[int]  # nobles still on the board, board order
    players: list[PlayerState]  # by absolute seat
    current: int = 0  # seat about to play
    round: int = 1
    max_rounds: int = DEFAULT_MAX_ROUNDS
    final_round: bool = False  # someone reached 15 points: the round is being finished
    passes: int = 0  # players who passed in the current round
    outcome: str | None = None  # None while the game runs, else FINISHED/BLOCKED/TRUNCATED
    game_id: int | None = None  # carried into the log rows; None = not set

    def copy(self) -> GameState:
        return GameState(
            self.num_players,
            self.bank.copy(),
            self.slots.copy(),
            [d.copy() for d in self.decks],
            self.nobles.copy(),
            [p.copy() for p in self.players],
            self.current,
            self.round,
            self.max_rounds,
            self.final_round,
            self.passes,
            self.outcome,
            self.game_id,
        )

    @property
    def is_over(self) -> bool:
        return self.outcome is not None


def new_game(
    num_players: int,
    seed: int | None = None,
    max_rounds: int = DEFAULT_MAX_ROUNDS,
    game_id: int | None = None,
) -> GameState:
    """A fresh game: each level's deck shuffled on its own, 4 cards per level face up,
    ``num_players + 1`` nobles revealed. Same seed -> same game."""
    if num_players not in TOKENS_PER_COLOUR:
        raise ValueError(f"num_players must be 2, 3 or 4, got {num_players}")
    rng = random.Random(seed)
    decks = []
    for ids in CARD_IDS_BY_LEVEL:
        deck = list(ids)
        rng.shuffle(deck)
        decks.append(deck)
    slots: list[int | None] = [decks[i // 4].pop() for i in range(12)]
    nobles = rng.sample(range(len(NOBLES)), num_players + 1)
    n = TOKENS_PER_COLOUR[num_players]
    return GameState(
        num_players=num_players,
        bank=[n] * 5 + [GOLD_TOKENS],
        slots=slots,
        decks=decks,
        nobles=nobles,
        players=[PlayerState() for _ in range(num_players)],
        max_rounds=max_rounds,
        game_id=game_id,
    )
