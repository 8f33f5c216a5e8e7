"""The split of the rows into train, val and test, by game.

This module owns :data:`SPLITS` (their names and order) and :func:`split_by_game`: which
split every game's rows go to, a function of the set of game ids and the seed only, so
that the same games give the same split however they were read or partitioned.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

SPLITS = ("train", "val", "test")


def split_counts(num_games: int, ratios: Sequence[float]) -> np.ndarray:
    """Games per split: largest-remainder rounding, then every split with a non-zero ratio
    gets at least one game when there are enough games (taken from the largest split).
    With fewer games than such splits, they are served in order (train, then val, ...)."""
    ratios = np.asarray(ratios, dtype=np.float64)
    if ratios.ndim != 1 or (ratios < 0).any() or ratios.sum() <= 0:
        raise ValueError(f"bad split ratios {ratios.tolist()}")
    ratios = ratios / ratios.sum()
    exact = ratios * num_games
    counts = np.floor(exact).astype(np.int64)
    leftover = num_games - int(counts.sum())
    # Stable: ties in the remainder go to the earlier split.
    order = np.argsort(-(exact - counts), kind="stable")
    counts[order[:leftover]] += 1

    wanted = np.flatnonzero(ratios > 0)
    if num_games < len(wanted):
        counts[:] = 0
        counts[wanted[:num_games]] = 1
        return counts
    for i in wanted:
        if counts[i] == 0:
            counts[np.argmax(counts)] -= 1
            counts[i] = 1
    return counts


def split_by_game(
    game_ids: np.ndarray,
    ratios: Sequence[float] | Mapping[str, float] = (0.8, 0.1, 0.1),
    seed: int = 42,
) -> dict[str, np.ndarray]:
    """Assign every game to train / val / test; returns split -> bool mask over the rows.

    The assignment depends only on the set of game ids and the seed: the unique ids are
    sorted, permuted with ``np.random.default_rng(seed)``, and cut into consecutive runs of
    ``split_counts`` games (largest-remainder rounding of ratio x number of games). Every
    split with a non-zero ratio gets at least one game when there are at least as many games
    as such splits; with fewer games, train is served first, then val, then test. A game's
    rows all land in the same split.
    """
    if isinstance(ratios, Mapping):
        ratios = [ratios[s] for s in SPLITS]
    if len(ratios) != len(SPLITS):
        raise ValueError(f"need {len(SPLITS)} ratios (train, val, test), got {list(ratios)}")
    game_ids = np.asarray(game_ids)
    unique = np.unique(game_ids)  # sorted
    shuffled = np.random.default_rng(seed).permutation(unique)
    counts = split_counts(len(unique), ratios)
    which = np.repeat(np.arange(len(SPLITS)), counts)  # split index per shuffled game
    split_of_unique = np.empty(len(unique), dtype=np.int64)
    split_of_unique[np.searchsorted(unique, shuffled)] = which
    split_of_row = split_of_unique[np.searchsorted(unique, game_ids)]
    return {s: split_of_row == i for i, s in enumerate(SPLITS)}
