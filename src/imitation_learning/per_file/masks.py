"""Legal-action masks of the 7 prediction heads, computed from the raw state of each row.

Input: ``values``, float64 ``(n, 403)`` raw rows in ``columns.COLUMNS`` order (NaN = missing),
as returned by ``splendor.log_reader.read_game_log(...).values``. Player slot 0 is the player
deciding. The rules and the mask semantics are those of ``docs/input-format.md``
("Legal-action masks", "The rules the masks follow"): each head's mask is the union, over
every legal move of the row's state, of the class that move gives that head.

Everything is numpy over the block of rows. The ``gems_removed`` head, the only expensive
one, is computed on the subset of rows whose player holds at least 8 tokens (a move gains at
most 3, so only those can go above 10).
"""

from __future__ import annotations

import numpy as np

from splendor import columns as C
from splendor.limits import MAX_RESERVED, MAX_TOKENS, TAKE2_MIN_PILE

MAX_GAIN = 3  # the most tokens one move can bring

_COLOUR_BITS = 1 << np.arange(5)  # bit i = colour i
_TAKE3_BITS = C.TAKE3_MATRIX.astype(np.int64) @ _COLOUR_BITS  # (26,) the colours of a class

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


def _affordable(
    cost: np.ndarray, bonus: np.ndarray, tokens: np.ndarray, gold: np.ndarray
) -> np.ndarray:
    """Colour-major ``cost`` (5, k, n) -> bool (k, n): the player can pay each card.

    ``bonus``, ``tokens``: (5, 1, n) per colour; ``gold``: (1, n). price per colour =
    max(0, cost - bonus); shortfall = sum max(0, price - tokens) <= gold (gold covers it).
    """
    price = np.maximum(0.0, cost - bonus)
    shortfall = np.maximum(0.0, price - tokens).sum(axis=0)
    return shortfall <= gold


def _scatter_visible(
    out: np.ndarray, present: np.ndarray, chosen: np.ndarray, prefix: np.ndarray
) -> None:
    """Set ``out[row, running index]`` for the face-up slots in ``chosen`` (subset of present).

    The running index of a present slot is the number of present slots before it.
    ``prefix`` (n, 12): the running indices in use (``j < number present``). When every
    row's present slots come first (no gap: the usual display), running index = slot.
    """
    if (present == prefix).all():
        out[:, : C.NUM_VISIBLE] = chosen & present
        return
    running = np.cumsum(present, axis=1) - 1
    rows, slots = np.nonzero(chosen & present)
    out[rows, running[rows, slots]] = True


def _consecutive(block: np.ndarray) -> tuple[slice, tuple[int, ...]]:
    """A block of consecutive columns (an index array of ``columns``) as a slice and shape."""
    first = int(block.flat[0])
    assert (block.ravel() == np.arange(first, first + block.size)).all()
    return slice(first, first + block.size), block.shape


_BANK, _GEMS, _BONUS, _CARDS, _RESERVED, _DECKS, _NOBLES = map(
    _consecutive,
    (
        C.BANK,
        C.PLAYER_GEMS[0],
        C.PLAYER_REDUCTION[0],
        C.CARDS,
        C.PLAYER_RESERVED[0],
        C.DECKS,
        C.NOBLES,
    ),
)


def _columns(values: np.ndarray, block: tuple[slice, tuple[int, ...]]) -> np.ndarray:
    """``values[:, block]`` for a block of :func:`_consecutive` columns: a view, no copy."""
    columns, shape = block
    return values[:, columns].reshape((len(values), *shape))


def _build_returns_table() -> np.ndarray:
    """bool (5, 4**6, 84): ``[e, code, c]`` = return class ``c`` has ``e`` tokens and fits
    in holdings whose base-4 code (each colour capped at 3) is ``code``; ``e = 4`` is the
    all-False row (an excess that cannot be returned in one class)."""
    holdings = np.array(list(np.ndindex(*(4,) * 6)), dtype=np.int8)  # row i has code i
    fits = (C.REMOVED_MATRIX[None, :, :] <= holdings[:, None, :]).all(axis=-1)  # (4096, 84)
    sizes = np.arange(5)[:, None, None]
    return fits[None, :, :] & (C.REMOVED_TOTAL[None, None, :] == sizes)


# Packed 8 classes a byte (84 -> 11 bytes): a move's required returns are or-ed bytewise.
_RETURNS_BITS = np.packbits(_build_returns_table(), axis=-1)  # uint8 (5, 4**6, 11)
_BASE4 = 4 ** np.arange(5, -1, -1)


def _returns_mask(gems: np.ndarray, legal: np.ndarray) -> np.ndarray:
    """bool (m, 84): the return tuples required by the legal token-gaining moves.

    ``gems`` (m, 6) integer holdings before the move; ``legal`` (m, 31) which moves of
    ``_GAINS`` are legal. A move leaving T > 10 tokens requires returning e = T - 10 of
    them: every multiset of size e drawn from the holdings after the move. A return holds at
    most 3 of a colour, so the holdings are capped at 3 and looked up by their base-4 code.
    """
    after = gems[:, None, :] + _GAINS[None, :, :]  # (m, 31, 6)
    excess = after.sum(axis=-1) - MAX_TOKENS  # (m, 31)
    # Moves that are illegal or need no return look up e = 0 (class 0, always set anyway).
    size = np.where(legal & (excess > 0), np.clip(excess, 0, 4), 0)
    code = np.clip(after, 0, 3) @ _BASE4  # (m, 31)
    bits = np.bitwise_or.reduce(_RETURNS_BITS[size, code], axis=1)  # (m, 11)
    return np.unpackbits(bits, axis=1, count=len(C.REMOVED_TOTAL)).view(bool)


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
    bank = _counts(_columns(values, _BANK))  # (n, 6)
    gems = _counts(_columns(values, _GEMS))  # (n, 6)
    bonus = _counts(_columns(values, _BONUS))  # (n, 5)
    # Cards and nobles are computed with the rows on the last axis, (field, card, n): every
    # broadcast then runs over long contiguous rows, and a sum or test over the colours
    # combines contiguous slabs (short last axes make numpy loop slowly).
    tokens_t = np.ascontiguousarray(gems.T)[:, None, :]  # (6, 1, n)
    bonus_t = np.ascontiguousarray(bonus.T)[:, None, :]  # (5, 1, n)
    # The 15 cards the player may build: face-up slots 0-11, own reserved 12-14.
    cards = np.empty((len(C.CARD_FIELDS), 15, n))  # (12 fields, 15 cards, n)
    cards[:, : C.NUM_VISIBLE] = _columns(values, _CARDS).transpose(2, 1, 0)
    cards[:, C.NUM_VISIBLE :] = _columns(values, _RESERVED).transpose(2, 1, 0)
    present_t = _present(cards[C.F_LEVEL])  # (15, n)
    present = present_t.T
    visible_present, reserved_present = present[:, : C.NUM_VISIBLE], present[:, C.NUM_VISIBLE :]
    decks = _counts(_columns(values, _DECKS)) > 0  # (n, 3)
    running = np.arange(C.NUM_VISIBLE) < visible_present.sum(axis=1)[:, None]  # indices used

    # card_selection: build
    buildable_t = present_t & _affordable(
        _counts(cards[C.F_COST]), bonus_t, tokens_t[:5], tokens_t[5]
    )  # (15, n)
    buildable = buildable_t.T
    card_selection = np.zeros((n, 15), dtype=bool)
    _scatter_visible(card_selection, visible_present, buildable[:, : C.NUM_VISIBLE], running)
    card_selection[:, 12:] = buildable[:, C.NUM_VISIBLE :]

    # card_reservation: reserve (every face-up card, whatever its slot: the running indices)
    can_reserve = (reserved_present.sum(axis=1) < MAX_RESERVED)[:, None]
    card_reservation = np.concatenate([running & can_reserve, decks & can_reserve], axis=1)

    # gem_take3: the sets of min(3, #colours available) available colours; colour sets as
    # bit masks (bit i = colour i), a set is within the available colours when it has no
    # bit outside them.
    available = bank[:, :5] > 0  # (n, 5)
    n_available = available.sum(axis=1)
    within = (_TAKE3_BITS[None, :] & ~(available @ _COLOUR_BITS)[:, None]) == 0  # (n, 26)
    gem_take3 = (
        within
        & (C.TAKE3_SIZE[None, :] == np.minimum(n_available, 3)[:, None])
        & (n_available > 0)[:, None]
    )

    # gem_take2
    gem_take2 = bank[:, :5] >= TAKE2_MIN_PILE

    action_type = np.stack(
        [card_selection.any(1), card_reservation.any(1), gem_take2.any(1), gem_take3.any(1)],
        axis=1,
    )
    any_move = action_type.any(axis=1)

    # noble: qualified now (any legal move ends the turn that way), or after a legal build
    nobles = _columns(values, _NOBLES)  # (n, 5, 6)
    noble_present = _present(nobles[..., 0])  # (n, 5)
    requirement = _counts(np.ascontiguousarray(nobles[..., 1:].transpose(2, 1, 0)))  # (5, 5, n)
    qualified_now = (bonus_t >= requirement).all(axis=0).T & any_move[:, None]  # (n, 5)
    bonus_after = bonus_t + _counts(cards[C.F_BONUS])  # (5 colours, 15 cards, n)
    qualified_after = (bonus_after[:, :, None, :] >= requirement[:, None, :, :]).all(axis=0)
    qualified_by_build = (qualified_after & buildable_t[:, None, :]).any(axis=0).T  # (n, 5)
    noble = np.ascontiguousarray(noble_present & (qualified_now | qualified_by_build))

    # gems_removed: only rows that can end a move above 10 tokens
    gems_removed = np.zeros((n, 84), dtype=bool)
    gems_removed[:, 0] = True
    near = np.flatnonzero(gems.sum(axis=1) >= MAX_TOKENS + 1 - MAX_GAIN)
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
