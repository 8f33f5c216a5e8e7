"""Legal moves and their effect, as ``docs/input-format.md`` states them.

A :class:`Move` is a whole decision: the action, its target, the tokens taken, the tokens
returned to get back to 10 and the noble that visits. :func:`legal_moves` lists every
distinct legal move; :func:`apply_move` plays one and runs the end of the turn (token
limit, noble, end of round / game). A player with no legal move passes
(:func:`pass_turn`); passes are not decisions and are not logged.

Move lists are built from cached pieces: the return choices depend only on the tokens held
after the action, so the same tuples of :class:`Move` are reused across turns and games.
"""

from __future__ import annotations

from functools import cache, lru_cache
from itertools import combinations
from typing import NamedTuple

from splendor.cards import CARDS, NOBLES
from splendor.columns import BUILD, NUM_VISIBLE, RESERVE, TAKE2, TAKE3
from splendor.limits import MAX_RESERVED, MAX_TOKENS, TAKE2_MIN_PILE, WINNING_POINTS
from splendor.state import (
    BLOCKED,
    FINISHED,
    GOLD,
    TRUNCATED,
    UNKNOWN_CARD,
    GameState,
)

NO_TAKE = (0, 0, 0, 0, 0)
NO_RETURN = (0, 0, 0, 0, 0, 0)
BLIND = NUM_VISIBLE  # reserve target 12/13/14 = top of the level 1/2/3 deck
RESERVED = NUM_VISIBLE  # build target 12 + r = the player's reserved card r


class Move(NamedTuple):
    """One decision.

    ``target``: build -> face-up slot 0-11 (absolute slot, not the log's running index) or
    12 + r for the player's reserved card r; reserve -> face-up slot 0-11 or 12/13/14 for a
    blind reserve from the level 1/2/3 deck; token takes -> -1.
    ``take``: tokens taken per colour (W B G R K). ``returned``: tokens returned per colour
    (W B G R K gold). ``noble``: index in ``state.nobles`` of the visiting noble, -1 none.
    """

    action: int
    target: int = -1
    take: tuple[int, ...] = NO_TAKE
    returned: tuple[int, ...] = NO_RETURN
    noble: int = -1


# --- cached building blocks --------------------------------------------------------------

_INTERNED: dict[tuple, Move] = {}


def _move(action: int, target: int, take: tuple, returned: tuple, noble: int) -> Move:
    """The shared Move object for these fields (moves are values; sharing saves time)."""
    key = (action, target, take, returned, noble)
    m = _INTERNED.get(key)
    if m is None:
        m = _INTERNED[key] = Move(*key)
    return m


@cache
def return_choices(held: tuple[int, ...], excess: int) -> tuple[tuple[int, ...], ...]:
    """Every distinct multiset of ``excess`` tokens (6-tuples) that can be returned from
    ``held`` (6 counts, gold last)."""
    out: list[tuple[int, ...]] = []
    acc = [0] * 6

    def rec(i: int, left: int) -> None:
        if i == 5:
            if left <= held[5]:
                acc[5] = left
                out.append(tuple(acc))
            return
        for k in range(min(left, held[i]), -1, -1):
            acc[i] = k
            rec(i + 1, left - k)
        acc[i] = 0

    rec(0, excess)
    return tuple(out)


@cache
def _plain_moves(action: int, target: int, take: tuple, nobles: tuple) -> tuple[Move, ...]:
    return tuple(_move(action, target, take, NO_RETURN, nb) for nb in nobles)


@lru_cache(maxsize=1 << 16)
def _moves_returning(
    action: int, target: int, take: tuple, held_after: tuple, nobles: tuple
) -> tuple[Move, ...]:
    rets = return_choices(held_after, sum(held_after) - MAX_TOKENS)
    return tuple(_move(action, target, take, r, nb) for r in rets for nb in nobles)


def _with_returns(
    action: int, target: int, take: tuple, held_after: tuple, nobles: tuple
) -> tuple[Move, ...]:
    if sum(held_after) <= MAX_TOKENS:
        return _plain_moves(action, target, take, nobles)
    return _moves_returning(action, target, take, held_after, nobles)


@cache
def _take3_options(available: tuple[int, ...]) -> tuple[tuple[int, ...], ...]:
    k = min(3, len(available))
    if k == 0:
        return ()
    return tuple(
        tuple(1 if c in combo else 0 for c in range(5)) for combo in combinations(available, k)
    )


_COSTS = [c.cost for c in CARDS]
_BONUS = [c.bonus for c in CARDS]
_TAKE2 = tuple(tuple(2 if c == i else 0 for c in range(5)) for i in range(5))


_NOBLE_REQ = [n.req for n in NOBLES]


@lru_cache(maxsize=1 << 16)
def noble_choices(nobles: tuple[int, ...], bonuses: tuple[int, ...]) -> tuple[int, ...]:
    """Indices (in ``nobles``) of the nobles these bonuses meet; ``(-1,)`` when none."""
    w, b, g, r, k = bonuses
    out = tuple(
        j
        for j, nid in enumerate(nobles)
        if w >= (q := _NOBLE_REQ[nid])[0] and b >= q[1] and g >= q[2] and r >= q[3] and k >= q[4]
    )
    return out or (-1,)


def shortfall(cost: tuple[int, ...], bonuses: list[int], tokens: list[int]) -> int:
    """Gold needed to build a card of this printed cost (0 when coloured tokens suffice).
    ``legal_moves`` inlines the same sum for speed."""
    return sum(max(0, c - b - t) for c, b, t in zip(cost, bonuses, tokens[:5], strict=True))


# --- legal moves ---------------------------------------------------------------------------


def legal_moves(state: GameState) -> list[Move]:
    """Every distinct legal move of the player about to decide, in a fixed order
    (builds, reserves, take-2, take-3). Empty when the player must pass or the game is over."""
    if state.outcome is not None:
        return []
    p = state.players[state.current]
    bank, held, bonuses = state.bank, p.tokens, p.bonuses
    held_t = tuple(held)
    nobles_t = tuple(state.nobles)
    nobles_now = noble_choices(nobles_t, tuple(bonuses))
    moves: list[Move] = []

    # Build: face-up cards, then reserved cards (the shortfall test unrolled: hot path).
    gold = held[GOLD]
    h0, h1, h2, h3, h4 = (b + t for b, t in zip(bonuses, held, strict=False))
    candidates = [(i, cid) for i, cid in enumerate(state.slots) if cid is not None]
    candidates += [(RESERVED + r, cid) for r, cid in enumerate(p.reserved)]
    for target, cid in candidates:
        c0, c1, c2, c3, c4 = _COSTS[cid]
        short = (
            (c0 - h0 if c0 > h0 else 0)
            + (c1 - h1 if c1 > h1 else 0)
            + (c2 - h2 if c2 > h2 else 0)
            + (c3 - h3 if c3 > h3 else 0)
            + (c4 - h4 if c4 > h4 else 0)
        )
        if short <= gold:
            gained = list(bonuses)
            gained[_BONUS[cid]] += 1
            nobles = noble_choices(nobles_t, tuple(gained)) if nobles_t else (-1,)
            moves.extend(_plain_moves(BUILD, target, NO_TAKE, nobles))

    # Reserve: face-up cards, then blind from each non-empty deck.
    if len(p.reserved) < MAX_RESERVED:
        after = held_t
        if bank[GOLD] > 0:
            after = held_t[:5] + (held_t[5] + 1,)
        targets = [i for i, cid in enumerate(state.slots) if cid is not None]
        targets += [BLIND + lv for lv in range(3) if state.decks[lv]]
        for t in targets:
            moves.extend(_with_returns(RESERVE, t, NO_TAKE, after, nobles_now))

    # Take 2 of a colour whose pile holds at least 4.
    for c in range(5):
        if bank[c] >= TAKE2_MIN_PILE:
            after = held_t[:c] + (held_t[c] + 2,) + held_t[c + 1 :]
            moves.extend(_with_returns(TAKE2, -1, _TAKE2[c], after, nobles_now))

    # Take 3 distinct colours (fewer only when fewer colours are in the bank).
    available = tuple(c for c in range(5) if bank[c] > 0)
    for take in _take3_options(available):
        after = tuple(h + t for h, t in zip(held_t, take + (0,), strict=True))
        moves.extend(_with_returns(TAKE3, -1, take, after, nobles_now))
    return moves


# --- playing a move ------------------------------------------------------------------------


def _draw(state: GameState, level_index: int) -> int | None:
    deck = state.decks[level_index]
    if not deck:
        return None
    cid = deck.pop()
    if cid == UNKNOWN_CARD:
        raise ValueError("the deck's cards are unknown (state decoded from a log)")
    return cid


def _take_face_up(state: GameState, slot: int) -> int:
    cid = state.slots[slot]
    if cid is None:
        raise ValueError(f"face-up slot {slot} is empty")
    state.slots[slot] = _draw(state, slot // 4)
    return cid


def apply_move(state: GameState, move: Move) -> GameState:
    """The state after ``move`` (a legal move of ``state``; ``state`` is not modified).

    Runs the whole end of the turn: tokens returned, noble visit, next player, end of the
    round and of the game. Only cheap sanity checks are made; use :func:`legal_moves` to
    know what is legal.
    """
    if state.outcome is not None:
        raise ValueError("the game is over")
    s = state.copy()
    p = s.players[s.current]
    tokens, bank = p.tokens, s.bank
    action, target = move.action, move.target
    if action == TAKE3 or action == TAKE2:
        for c, n in enumerate(move.take):
            tokens[c] += n
            bank[c] -= n
    elif action == RESERVE:
        if len(p.reserved) >= MAX_RESERVED:
            raise ValueError("already 3 reserved cards")
        if target < BLIND:
            cid = _take_face_up(s, target)
        else:
            cid = _draw(s, target - BLIND)
            if cid is None:
                raise ValueError(f"blind reserve from an empty level {target - BLIND + 1} deck")
        p.reserved.append(cid)
        if bank[GOLD] > 0:
            bank[GOLD] -= 1
            tokens[GOLD] += 1
    elif action == BUILD:
        cid = _take_face_up(s, target) if target < RESERVED else p.reserved.pop(target - RESERVED)
        card = CARDS[cid]
        short = 0
        for c in range(5):
            price = max(0, card.cost[c] - p.bonuses[c])
            paid = min(price, tokens[c])
            tokens[c] -= paid
            bank[c] += paid
            short += price - paid
        tokens[GOLD] -= short
        bank[GOLD] += short
        p.bonuses[card.bonus] += 1
        p.bought += 1
        p.points += card.vp
    else:
        raise ValueError(f"unknown action {action}")
    if any(move.returned):
        for c, n in enumerate(move.returned):
            tokens[c] -= n
            bank[c] += n
    if min(tokens) < 0 or min(bank) < 0 or sum(tokens) > MAX_TOKENS:
        raise ValueError(f"illegal move {move}: tokens {tokens}, bank {bank}")
    if move.noble >= 0:
        nid = s.nobles.pop(move.noble)
        p.points += NOBLES[nid].vp
    _end_turn(s, passed=False)
    return s


def pass_turn(state: GameState) -> GameState:
    """The state after the player to move passes (they have no legal move)."""
    if state.outcome is not None:
        raise ValueError("the game is over")
    s = state.copy()
    _end_turn(s, passed=True)
    return s


def _end_turn(s: GameState, passed: bool) -> None:
    if passed:
        s.passes += 1
    elif s.players[s.current].points >= WINNING_POINTS:
        s.final_round = True
    s.current += 1
    if s.current < s.num_players:
        return
    # End of the round.
    s.current = 0
    if s.final_round:
        s.outcome = FINISHED
    elif s.passes == s.num_players:
        s.outcome = BLOCKED
    elif s.round >= s.max_rounds:
        s.outcome = TRUNCATED
    else:
        s.round += 1
        s.passes = 0


def winners(state: GameState) -> list[int]:
    """Seats of the winners: most points, then fewest bought cards; ties share the win.
    (Applied to blocked and truncated games too, as a record of who was ahead.)"""
    best = max(p.points for p in state.players)
    leaders = [i for i, p in enumerate(state.players) if p.points == best]
    fewest = min(state.players[i].bought for i in leaders)
    return [i for i in leaders if state.players[i].bought == fewest]
