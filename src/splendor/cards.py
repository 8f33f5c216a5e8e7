"""The 90 development cards and 10 nobles, loaded once from the package data.

Cards and nobles are referred to by their integer id (their row in the CSV, 0-based); the
engine keeps ids in its state and looks the details up in :data:`CARDS` / :data:`NOBLES`.
Colours are indices into :data:`splendor.columns.COLOURS` (white 0 ... black 4).
"""

from __future__ import annotations

import csv
import io
from functools import cache
from importlib import resources
from typing import NamedTuple

import numpy as np

from splendor.columns import COLOURS


class Card(NamedTuple):
    id: int
    level: int  # 1, 2 or 3
    bonus: int  # colour index 0..4
    vp: int
    cost: tuple[int, int, int, int, int]  # printed cost per colour

    @property
    def features(self) -> tuple[int, ...]:
        """The 12 log fields: vp, level, cost per colour, one-hot bonus."""
        onehot = tuple(int(c == self.bonus) for c in range(5))
        return (self.vp, self.level) + self.cost + onehot


class Noble(NamedTuple):
    id: int
    vp: int
    req: tuple[int, int, int, int, int]  # bonuses required per colour

    @property
    def features(self) -> tuple[int, ...]:
        """The 6 log fields: vp, requirement per colour."""
        return (self.vp,) + self.req


def _read_csv(name: str) -> list[dict[str, str]]:
    text = resources.files("splendor.data").joinpath(name).read_text(encoding="utf-8")
    return list(csv.DictReader(io.StringIO(text)))


@cache
def load_cards() -> tuple[Card, ...]:
    """The official 90 cards, in file order (40 level 1, 30 level 2, 20 level 3)."""
    return tuple(
        Card(
            id=i,
            level=int(r["level"]),
            bonus=COLOURS.index(r["bonus"]),
            vp=int(r["vp"]),
            cost=tuple(int(r[f"cost_{c}"]) for c in COLOURS),
        )
        for i, r in enumerate(_read_csv("cards.csv"))
    )


@cache
def load_nobles() -> tuple[Noble, ...]:
    """The 10 nobles, in file order."""
    return tuple(
        Noble(id=i, vp=int(r["vp"]), req=tuple(int(r[f"req_{c}"]) for c in COLOURS))
        for i, r in enumerate(_read_csv("nobles.csv"))
    )


CARDS: tuple[Card, ...] = load_cards()
NOBLES: tuple[Noble, ...] = load_nobles()
CARD_IDS_BY_LEVEL: tuple[tuple[int, ...], ...] = tuple(
    tuple(c.id for c in CARDS if c.level == lv) for lv in (1, 2, 3)
)
# Feature tables in log order (float64 so they drop straight into a row).
CARD_FEATURES = np.array([c.features for c in CARDS], dtype=np.float64)  # (90, 12)
NOBLE_FEATURES = np.array([n.features for n in NOBLES], dtype=np.float64)  # (10, 6)
CARD_BY_FEATURES: dict[tuple[int, ...], int] = {c.features: c.id for c in CARDS}
NOBLE_BY_FEATURES: dict[tuple[int, ...], int] = {n.features: n.id for n in NOBLES}
assert len(CARD_BY_FEATURES) == 90 and [len(x) for x in CARD_IDS_BY_LEVEL] == [40, 30, 20]
