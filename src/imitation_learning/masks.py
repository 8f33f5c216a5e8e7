"""Legal-action masks of the 7 prediction heads, computed from the raw state of each row.

Input: ``values``, float64 ``(n, 403)`` raw rows in ``columns.COLUMNS`` order (NaN = missing),
as returned by ``splendor.log_reader.read_game_log(...).values``. Player slot 0 is the player
deciding. The rules are those of ``shared/spec/rules.md``; the mask semantics are the
"Legal action masks" section of ``shared/spec/gamelog-format.md``: each head's mask is the
union, over every legal move of the row's state, of the class that move gives that head.

Everything is numpy over the block of rows. The ``gems_removed`` head, the only expensive
one, is computed on the subset of rows whose player holds at least 8 tokens (a move gains at
most 3, so only those can go above 10).
"""

from __future__ import annotations

import numpy as np

from splendor import columns as C

TOKEN_LIMIT = 10
MAX_GAIN = 3  # the most tokens one move can bring

_TAKE3_SIZE = C.TAKE3_MATRIX.sum(axis=1)  # (26,)
_REMOVED_TOTAL = C.REMOVED_MATRIX.sum(axis=1)  # (84,)

# Token gains (6 colours, gold last) of the token-gaining moves, in the order the
# legality matrix of ``_returns_mask`` uses: the 25 take-3 classes, the 5 take-2, a reserve
# that brings a gold.
_GAINS = np.concatenate(
    [
        np.pad(C.TAKE3_MATRIX[1:], ((0, 0), (0, 1))),
        np.pad(2 * np.eye(5, dtype=np.int8), ((0, 0), (0, 1))),
        np.array([[0, 0, 0, 0, 0, 1]], dtype=np.int8),
    ]
).astype(np.int64)  # (31, 6)


def _counts(x: np.ndarray) -> np.ndarray:
    """Counts with missing (and non-finite garbage) read as 0."""
    return np.where(np.isfinite(x), x, 0.0)


def _present(level: np.ndarray) -> np.ndarray:
    return ~np.isnan(level)


def _affordable(cards: np.ndarray, bonus: np.ndarray, gems: np.ndarray) -> np.ndarray:
    """``cards`` (n, k, 12) -> bool (n, k): the player can pay it (gold covers the shortfall).

    price per colour = max(0, cost - bonus); shortfall = sum max(0, price - tokens) <= gold.
    """
    cost = _counts(cards[..., C.F_COST])
    price = np.maximum(0.0, cost - bonus[:, None, :])
    shortfall = np.maximum(0.0, price - gems[:, None, :5]).sum(axis=-1)
    return shortfall <= gems[:, 5:6]


def _scatter_visible(out: np.ndarray, present: np.ndarray, chosen: np.ndarray) -> None:
    """Set ``out[row, running index]`` for the face-up slots in ``chosen`` (subset of present).

    The running index of a present slot is the number of present slots before it.
    """
    running = np.cumsum(present, axis=1) - 1
    rows, slots = np.nonzero(chosen & present)
    out[rows, running[rows, slots]] = True


def _build_returns_table() -> np.ndarray:
    """bool (5, 4**6, 84): ``[e, code, c]`` = return class ``c`` has ``e`` tokens and fits
    in holdings whose base-4 code (each colour capped at 3) is ``code``; ``e = 4`` is the
    all-False row (an excess that cannot be returned in one class)."""
    holdings = np.array(list(np.ndindex(*(4,) * 6)), dtype=np.int8)  # row i has code i
    fits = (C.REMOVED_MATRIX[None, :, :] <= holdings[:, None, :]).all(axis=-1)  # (4096, 84)
    sizes = np.arange(5)[:, None, None]
    return fits[None, :, :] & (_REMOVED_TOTAL[None, None, :] == sizes)


_RETURNS_TABLE = _build_returns_table()
_BASE4 = 4 ** np.arange(5, -1, -1)


def _returns_mask(gems: np.ndarray, legal: np.ndarray) -> np.ndarray:
    """bool (m, 84): the return tuples required by the legal token-gaining moves.

    ``gems`` (m, 6) integer holdings before the move; ``legal`` (m, 31) which moves of
    ``_GAINS`` are legal. A move leaving T > 10 tokens requires returning e = T - 10 of
    them: every multiset of size e drawn from the holdings after the move. A return holds at
    most 3 of a colour, so the holdings are capped at 3 and looked up by their base-4 code.
    """
    after = gems[:, None, :] + _GAINS[None, :, :]  # (m, 31, 6)
    excess = after.sum(axis=-1) - TOKEN_LIMIT  # (m, 31)
    # Moves that are illegal or need no return look up e = 0 (class 0, always set anyway).
    size = np.where(legal & (excess > 0), np.clip(excess, 0, 4), 0)
    code = np.clip(after, 0, 3) @ _BASE4  # (m, 31)
    return _RETURNS_TABLE[size, code].any(axis=1)


def compute_masks(values: np.ndarray) -> dict[str, np.ndarray]:
    """Legal-action masks of the 7 heads (``columns.HEADS`` order), bool ``(n, classes)`` each.

    - ``action_type``: kinds with at least one legal move.
    - ``card_selection``: affordable present face-up cards (running index) and own reserved
      cards (12 + r).
    - ``card_reservation``: with fewer than 3 reserved cards, the present face-up cards
      (running index) and 12 + L - 1 for each non-empty deck L.
    - ``gem_take3``: every 3-set of colours in the bank when at least 3 have tokens, else
      the one set of all available colours; nothing when the bank has no colour.
    - ``gem_take2``: colours whose pile holds at least 4.
    - ``noble``: nobles present whose requirements the player meets at the end of some
      legal move: with the current bonuses, or after a legal build adding its card's bonus.
    - ``gems_removed``: every return some legal token-gaining move can require; class 0
      always set.
    """
    values = np.asarray(values, dtype=np.float64)
    n = len(values)
    bank = _counts(values[:, C.BANK])  # (n, 6)
    gems = _counts(values[:, C.PLAYER_GEMS[0]])  # (n, 6)
    bonus = _counts(values[:, C.PLAYER_REDUCTION[0]])  # (n, 5)
    visible = values[:, C.CARDS]  # (n, 12, 12)
    reserved = values[:, C.PLAYER_RESERVED[0]]  # (n, 3, 12)
    visible_present = _present(visible[..., C.F_LEVEL])  # (n, 12)
    reserved_present = _present(reserved[..., C.F_LEVEL])  # (n, 3)
    decks = _counts(values[:, C.DECKS]) > 0  # (n, 3)

    # card_selection: build
    buildable_visible = visible_present & _affordable(visible, bonus, gems)
    buildable_reserved = reserved_present & _affordable(reserved, bonus, gems)
    card_selection = np.zeros((n, 15), dtype=bool)
    _scatter_visible(card_selection, visible_present, buildable_visible)
    card_selection[:, 12:] = buildable_reserved

    # card_reservation: reserve
    can_reserve = reserved_present.sum(axis=1) < C.NUM_RESERVED
    card_reservation = np.zeros((n, 15), dtype=bool)
    _scatter_visible(card_reservation, visible_present, visible_present & can_reserve[:, None])
    card_reservation[:, 12:] = decks & can_reserve[:, None]

    # gem_take3: the sets of min(3, #colours available) available colours
    available = bank[:, :5] > 0  # (n, 5)
    n_available = available.sum(axis=1)
    within = ~(C.TAKE3_MATRIX[None, :, :].astype(bool) & ~available[:, None, :]).any(axis=-1)
    gem_take3 = (
        within
        & (_TAKE3_SIZE[None, :] == np.minimum(n_available, 3)[:, None])
        & (n_available > 0)[:, None]
    )

    # gem_take2
    gem_take2 = bank[:, :5] >= 4

    action_type = np.stack(
        [card_selection.any(1), card_reservation.any(1), gem_take2.any(1), gem_take3.any(1)],
        axis=1,
    )
    any_move = action_type.any(axis=1)

    # noble: qualified now (any legal move ends the turn that way), or after a legal build
    nobles = values[:, C.NOBLES]  # (n, 5, 6)
    noble_present = _present(nobles[..., 0])
    requirement = _counts(nobles[..., 1:])  # (n, 5, 5)
    qualified_now = (bonus[:, None, :] >= requirement).all(axis=-1) & any_move[:, None]
    buildable = np.concatenate([buildable_visible, buildable_reserved], axis=1)  # (n, 15)
    card_bonus = _counts(
        np.concatenate([visible[..., C.F_BONUS], reserved[..., C.F_BONUS]], axis=1)
    )  # (n, 15, 5)
    bonus_after = bonus[:, None, :] + card_bonus  # (n, 15, 5)
    qualified_after = (bonus_after[:, :, None, :] >= requirement[:, None, :, :]).all(axis=-1)
    qualified_by_build = (qualified_after & buildable[:, :, None]).any(axis=1)  # (n, 5)
    noble = noble_present & (qualified_now | qualified_by_build)

    # gems_removed: only rows that can end a move above 10 tokens
    gems_removed = np.zeros((n, 84), dtype=bool)
    gems_removed[:, 0] = True
    near = np.flatnonzero(gems.sum(axis=1) >= TOKEN_LIMIT + 1 - MAX_GAIN)
    if near.size:
        reserve_gold = card_reservation[near].any(axis=1) & (bank[near, 5] > 0)  # (m,)
        legal = np.concatenate(
            [gem_take3[near, 1:], gem_take2[near], reserve_gold[:, None]], axis=1
        )  # (m, 31)
        held = np.clip(gems[near], 0, 99).astype(np.int64)  # garbage-proof integer counts
        gems_removed[near] |= _returns_mask(held, legal)

    masks = {
        "action_type": action_type,
        "card_selection": card_selection,
        "card_reservation": card_reservation,
        "gem_take3": gem_take3,
        "gem_take2": gem_take2,
        "noble": noble,
        "gems_removed": gems_removed,
    }
    assert list(masks) == list(C.HEADS)
    return masks


def masks_contain_labels(
    masks: dict[str, np.ndarray], labels: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """Per head, bool ``(n,)``: the row's label is -1 (not applicable) or set in its mask.

    A label outside the head's classes (other than -1) counts as not contained. The heads
    are those of ``labels``, in its order; all of them are looked up in one gather (the
    masks side by side), and the arrays returned are the columns of one ``(n, heads)`` block.
    """
    heads = list(labels)
    classes = np.array([masks[head].shape[1] for head in heads])
    offsets = np.cumsum(classes) - classes  # where each head's classes start in the block
    block = np.concatenate([np.asarray(masks[head], dtype=bool) for head in heads], axis=1)
    label = np.stack([np.asarray(labels[head], dtype=np.int64) for head in heads], axis=1)
    valid = (label >= 0) & (label < classes)
    hit = np.take_along_axis(block, np.where(valid, label + offsets, 0), axis=1)
    ok = (label == -1) | (valid & hit)
    return dict(zip(heads, ok.T, strict=True))
