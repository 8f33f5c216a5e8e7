"""Strategic features: what a player can afford, how far they are from nobles, who leads.

``compute_features(compacted) -> float32 (n, F)`` with the names of
``get_all_feature_names()`` (stable order, F = 886), groups as in ``docs/dataset.md``:

1. tokens (26): per colour W B G R K, whether a take-2 is possible (pile >= 4), the pile
   left after a take-2 (the pile itself when no take-2 is possible), the pile left after a
   take-1 (floored at 0), the starting pile for the player count (4 / 5 / 7), and how many
   tokens of that colour can be taken this turn (2, 1 or 0); plus whether a gold can be
   gained this turn (gold left and fewer than 3 reserved cards). Gold's starting pile is left
   out: it is 5 whatever the player count, a constant. The other token features of gold
   (take-2, piles after a take) are constant or copy a log column, so they are left out too.
2. cards (4 x 15 x 9 = 540): for each player slot k and each card position j (0-11 the
   compacted face-up cards, the running index of the labels; 12-14 player k's reserved
   cards): can build it, must use gold to build it, per-colour distance (tokens still
   missing after bonuses and coloured tokens), total distance, points if bought (the card's
   points plus the best noble that would visit with the card's bonus added).
3. nobles (4 x 5 x 7 + 4 x 2 = 148): for each player slot and noble slot, per-colour
   distance (requirement minus bonuses, floored at 0), total, acquirable; per player the
   closest noble's total distance and how many nobles are acquirable now.
4. card-noble synergy (4 x 15 x 2 = 120): for each player slot and card position, how many
   nobles would be acquirable after buying that card, and the closest noble's distance then.
5. player comparison (4 x 9 + 2 + 4 x 2 = 46): per player total bonuses (cards bought),
   buying capacity per colour (tokens + bonuses), tokens held (gold included), how many of
   the 5 colours they hold tokens of, reserved count; the leader's points and total bonuses;
   per player the gap to the leader and the rank (1 = most points; ties share a rank).
   A player's points are left out here: they are the log column ``player{k}_vp``.
6. game progression (6): points the leader still needs to reach 15, cards bought so far by
   all players, points each player still needs to reach 15.

Conventions: player slots are the log's rotated slots (slot 0 = player deciding). Every
feature of an absent player slot (k >= num_players), an empty card position or an empty
noble slot is 0. Aggregates over nobles (closest distance) are 0 when no noble is left.
The leader is the player with the most points; among tied leaders, the one with the fewest
bought cards (the game's tie-break) gives ``leader_total_bonuses``.

Name order: group by group, and inside a group field-major (all ``can_build`` features, then
all ``must_use_gold`` ...), each field over player slots, then positions / nobles / colours.
The computation runs "feature-major": every array has the rows on its last axis, shaped
(field or colour, player, position or noble, rows), so that reductions over colours and
nobles are additions of contiguous slabs and each group lands in the output as one block.
Everything is broadcast; there is no loop over rows.
"""

from __future__ import annotations

import re

import numpy as np

from splendor import columns as C
from splendor.limits import MAX_RESERVED, TAKE2_MIN_PILE, TOKENS_PER_COLOUR

from .compaction import Compacted

WINNING_POINTS = 15
NUM_POSITIONS = C.NUM_VISIBLE + MAX_RESERVED  # 15 card positions per player

_P = range(C.NUM_PLAYER_SLOTS)
_J = range(NUM_POSITIONS)
_N = range(C.NUM_NOBLE_SLOTS)

_TOKEN_FIELDS = (
    "take2_possible",
    "after_take2",
    "after_take1",
    "starting_pile",
    "max_take_this_turn",
)
_CARD_FIELDS = (
    ("can_build", "must_use_gold")
    + tuple(f"distance_{c}" for c in C.COLOURS)
    + ("distance_total", "points_if_bought")
)
_NOBLE_FIELDS = tuple(f"distance_{c}" for c in C.COLOURS) + ("distance_total", "acquirable")
_NOBLE_SUMMARY_FIELDS = ("closest_noble_distance", "nobles_acquirable")
_SYNERGY_FIELDS = ("nobles_acquirable_after_buying", "closest_noble_distance_after_buying")
_PLAYER_FIELDS = (
    ("total_bonuses",)
    + tuple(f"buying_capacity_{c}" for c in C.COLOURS)
    + ("tokens_held", "token_colours_held", "reserved_count")
)
_STANDING_FIELDS = ("points_gap_to_leader", "rank")


def get_all_feature_names() -> list[str]:
    """The F feature names, in the column order of :func:`compute_features`."""
    names = [f"bank_{c}_{f}" for f in _TOKEN_FIELDS for c in C.COLOURS]
    names.append("bank_gold_gainable_by_reserve")
    names += [f"player{k}_cardpos{j}_{f}" for f in _CARD_FIELDS for k in _P for j in _J]
    names += [f"player{k}_noble{m}_{f}" for f in _NOBLE_FIELDS for k in _P for m in _N]
    names += [f"player{k}_{f}" for f in _NOBLE_SUMMARY_FIELDS for k in _P]
    names += [f"player{k}_cardpos{j}_{f}" for f in _SYNERGY_FIELDS for k in _P for j in _J]
    names += [f"player{k}_{f}" for f in _PLAYER_FIELDS for k in _P]
    names += ["leader_points", "leader_total_bonuses"]
    names += [f"player{k}_{f}" for f in _STANDING_FIELDS for k in _P]
    names += ["leader_points_to_win", "cards_bought_total"]
    names += [f"player{k}_points_to_win" for k in _P]
    return names


def get_binary_feature_names() -> list[str]:
    """The features that are 0/1 by construction (flags, not counts), in feature order."""
    flags = re.compile(
        r"(_take2_possible|_gold_gainable_by_reserve|_can_build|_must_use_gold|_noble\d+_acquirable)$"
    )
    return [name for name in get_all_feature_names() if flags.search(name)]


NUM_FEATURES = len(get_all_feature_names())

_F32 = np.float32
_GOLD = 5
_NO_NOBLE = _F32(1000)  # stands for "no noble" in minimum distances, replaced by 0
# Row indices into the transposed log (403, n), arranged field-major.
_CARD_ROWS = C.CARDS.T  # (12 fields, 12 slots)
_RESERVED_ROWS = C.PLAYER_RESERVED.transpose(2, 0, 1)  # (12 fields, 4 players, 3)
_NOBLE_REQ_ROWS = C.NOBLES[:, 1:].T  # (5 colours, 5 nobles)
_NOBLE_VP_ROWS = C.NOBLES[:, 0]  # (5,)
_GEM_ROWS = C.PLAYER_GEMS.T  # (6 colours, 4 players)
_BONUS_ROWS = C.PLAYER_REDUCTION.T  # (5 colours, 4 players)


def compute_features(compacted: Compacted) -> np.ndarray:
    """float32 ``(n, F)`` strategic features of the rows (see the module docstring)."""
    n = len(compacted.values)
    if n == 0:
        return np.empty((0, NUM_FEATURES), dtype=_F32)
    # (403, n): cast first, then transpose (a transposing copy of float32 is the cheaper one)
    vt = np.ascontiguousarray(compacted.values.astype(_F32).T)
    out = np.empty((NUM_FEATURES, n), dtype=_F32)
    cursor = 0

    def put(block: np.ndarray) -> None:
        nonlocal cursor
        block = block.reshape(-1, n)
        out[cursor : cursor + len(block)] = block
        cursor += len(block)

    player = compacted.player_present.T  # (4, n)
    noble_on = compacted.noble_present.T  # (5, n)
    reserved_present = compacted.reserved_present.transpose(1, 2, 0)  # (4, 3, n)
    bank = vt[C.BANK]  # (6, n)
    gems = vt[_GEM_ROWS]  # (6, 4, n)
    bonus = vt[_BONUS_ROWS]  # (5, 4, n)
    vp = vt[C.PLAYER_VP]  # (4, n)
    req = vt[_NOBLE_REQ_ROWS]  # (5 colours, 5 nobles, n)
    noble_vp = vt[_NOBLE_VP_ROWS] * noble_on  # (5, n)
    reserved_count = reserved_present.sum(axis=1)  # (4, n)

    # --- 1. tokens: (5 fields, 5 colours, n) --------------------------------------------
    # Gold is not among the colours: its starting pile is 5 whatever the player count (a
    # constant), and it cannot be taken by a token action; only "gainable by a reserve" stays.
    pile = bank[:5]
    take2 = pile >= TAKE2_MIN_PILE
    num_players = vt[C.COL["num_players"]]
    start = np.zeros(n, dtype=_F32)
    for players, size in TOKENS_PER_COLOUR.items():
        start[num_players == players] = size
    put(take2)
    put(pile - 2 * take2)
    put(np.maximum(pile - 1, 0))
    put(np.broadcast_to(start, pile.shape))
    put(np.where(take2, 2, np.minimum(pile, 1)))
    put((bank[_GOLD] > 0) & (reserved_count[0] < MAX_RESERVED))

    # --- 2. cards: (12 fields, 4 players, 15 positions, n) ------------------------------
    face_up = vt[_CARD_ROWS][:, None]  # (12, 1, 12, n)
    face_up = np.broadcast_to(face_up, (face_up.shape[0], C.NUM_PLAYER_SLOTS) + face_up.shape[2:])
    cards = np.concatenate([face_up, vt[_RESERVED_ROWS]], axis=2)
    face_present = np.broadcast_to(compacted.card_present.T, (C.NUM_PLAYER_SLOTS, C.NUM_VISIBLE, n))
    present = np.concatenate([face_present, reserved_present], axis=1) & player[:, None]

    distance = np.maximum(cards[C.F_COST] - bonus[:, :, None], 0)  # price after bonuses
    distance -= gems[:5, :, None]
    np.maximum(distance, 0, out=distance)  # (5, 4, 15, n)
    distance *= present
    distance_total = distance.sum(axis=0)  # (4, 15, n)
    can_build = present & (distance_total <= gems[_GOLD][:, None])

    # Nobles after buying each card: (5 nobles, 4 players, 15 positions, n). Bonuses are
    # one per card, so buying a card of colour c lowers a noble's total distance by one
    # exactly when that noble still misses colour c.
    noble_dist = np.maximum(req[:, :, None] - bonus[:, None], 0)  # (5 col, 5 nob, 4, n)
    noble_total = noble_dist.sum(axis=0)  # (5 nobles, 4 players, n)
    missing = noble_dist > 0
    card_bonus = cards[C.F_BONUS]  # (5 colours, 4, 15, n)
    gap_after = np.broadcast_to(
        noble_total[:, :, None], (C.NUM_NOBLE_SLOTS,) + present.shape
    ).copy()
    for colour in range(len(C.COLOURS)):
        gap_after -= card_bonus[colour][None] * missing[colour][:, :, None]
    noble_on_4d = noble_on[:, None, None]
    acquirable_after = (gap_after == 0) & noble_on_4d
    best_noble_after = (acquirable_after * noble_vp[:, None, None]).max(axis=0)

    put(can_build)
    put(can_build & (distance_total > 0))  # must use gold
    put(distance)
    put(distance_total)
    put((cards[C.F_VP] + best_noble_after) * present)  # points if bought

    # --- 3. nobles: (fields, 4 players, 5 nobles, n) ------------------------------------
    noble_valid = noble_on[:, None] & player[None]  # (5 nobles, 4 players, n)
    noble_acq = noble_valid & (noble_total == 0)
    put((noble_dist * noble_valid).transpose(0, 2, 1, 3))
    put((noble_total * noble_valid).transpose(1, 0, 2))
    put(noble_acq.transpose(1, 0, 2))
    closest = np.where(noble_valid, noble_total, _NO_NOBLE).min(axis=0)
    put(np.where(closest == _NO_NOBLE, 0, closest))
    put(noble_acq.sum(axis=0))

    # --- 4. card-noble synergy: (2 fields, 4 players, 15 positions, n) ------------------
    put(acquirable_after.sum(axis=0) * present)
    closest_after = np.where(noble_on_4d, gap_after, _NO_NOBLE).min(axis=0)
    put(np.where(closest_after == _NO_NOBLE, 0, closest_after) * present)

    # --- 5. player comparison: (fields, 4 players, n) -----------------------------------
    total_bonus = bonus.sum(axis=0)  # (4, n)
    coloured = gems[:5]
    put(total_bonus * player)
    put((coloured + bonus) * player)  # buying capacity per colour
    put(gems.sum(axis=0) * player)
    put((coloured > 0).sum(axis=0) * player)
    put(reserved_count * player)

    ranked_vp = np.where(player, vp, -np.inf)
    leader_points = ranked_vp.max(axis=0)
    leader_points = np.where(np.isfinite(leader_points), leader_points, 0)
    is_leader = player & (vp == leader_points)
    leader_bonus = np.where(is_leader, total_bonus, np.inf).min(axis=0)
    put(leader_points)
    put(np.where(np.isfinite(leader_bonus), leader_bonus, 0))
    put((leader_points - vp) * player)
    put((1 + (ranked_vp[None, :] > ranked_vp[:, None]).sum(axis=1)) * player)  # rank

    # --- 6. game progression ------------------------------------------------------------
    put(np.maximum(WINNING_POINTS - leader_points, 0))
    put((total_bonus * player).sum(axis=0))
    put(np.maximum(WINNING_POINTS - vp, 0) * player)

    assert cursor == NUM_FEATURES
    return np.ascontiguousarray(out.T)
