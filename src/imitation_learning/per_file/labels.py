"""Labels of the 7 prediction heads, and the decision-consistency check.

Input everywhere is ``values``: float64 ``(n, 403)`` raw rows in ``columns.COLUMNS`` order
(NaN = missing, ``action_type`` already an action code, ``card_reservation`` normalised to
the blind base 12), as returned by ``splendor.log_reader.read_game_log(...).values``.

Everything is vectorised over the block of rows: the multi-column decisions (``gem_take3_*``,
``gems_removed_*``) are encoded as integers (base 2 / base 4) and mapped to their class
through a lookup array.
"""

from __future__ import annotations

import numpy as np

from imitation_learning.per_file.masks import masks_contain_labels
from splendor import columns as C
from splendor.limits import MAX_TOKENS

# --- lookup tables -------------------------------------------------------------------------

# gem_take3: bit i = colour i taken -> class (or -1 for the empty set / more than 3 colours).
_TAKE3_WEIGHTS = 1 << np.arange(5)
_TAKE3_LOOKUP = np.full(32, -1, dtype=np.int16)
_TAKE3_LOOKUP[C.TAKE3_MATRIX[1:].astype(np.int64) @ _TAKE3_WEIGHTS] = np.arange(1, 26)

# gems_removed: base-4 code of the 6-tuple (white most significant) -> class (-1: total > 3).
_REMOVED_WEIGHTS = 4 ** np.arange(5, -1, -1)
_REMOVED_LOOKUP = np.full(4**6, -1, dtype=np.int16)
_REMOVED_LOOKUP[C.REMOVED_MATRIX.astype(np.int64) @ _REMOVED_WEIGHTS] = np.arange(84)

# The fast consistency test (_all_consistent): the heads owned by one action, that action,
# their decision cells (which head each gem cell belongs to), the cells a decision points to.
_ACTION_HEADS = ("card_selection", "card_reservation", "gem_take3", "gem_take2")
_HEAD_ACTIONS = np.array([C.BUILD, C.RESERVE, C.TAKE3, C.TAKE2])
_ACTION_CELLS = np.r_[C.CARD_SELECTION_COL, C.CARD_RESERVATION_COL, C.TAKE3_COLS, C.TAKE2_COLS]
_GEM_CELL_HEAD = np.repeat([2, 3], 5)  # columns of _ACTION_HEADS
_TARGET_COLS = np.r_[
    C.CARDS[:, C.F_LEVEL], C.PLAYER_RESERVED[0, :, C.F_LEVEL], C.NOBLES[:, 0]
]  # (20,) present when not missing: 12 face-up slots, 3 own reserved, 5 nobles


def _is_int_in(x: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """True where ``x`` is an integer value in ``lo..hi`` (NaN and infinities -> False)."""
    return (x == np.rint(x)) & (x >= lo) & (x <= hi)


def _as_index(x: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """``x`` as int16 where ``ok`` (an integer in range there), -1 elsewhere."""
    return np.where(ok, x, -1).astype(np.int16)


def _action_codes(values: np.ndarray) -> np.ndarray:
    a = values[:, C.ACTION_COL]
    return _as_index(a, _is_int_in(a, 0, 3))


def _take3_class(values: np.ndarray) -> np.ndarray:
    """Class of the gem_take3 columns, -1 unless they are 0/1 with 1 to 3 ones."""
    t = values[:, C.TAKE3_COLS]
    ones = t == 1
    ok = (ones | (t == 0)).all(axis=1)
    return np.where(ok, _TAKE3_LOOKUP[ones @ _TAKE3_WEIGHTS], -1).astype(np.int16)


def _take2_colour(values: np.ndarray) -> np.ndarray:
    """Colour of the gem_take2 columns, -1 unless exactly one 2 and zeros elsewhere."""
    t = values[:, C.TAKE2_COLS]
    is_two = t == 2
    is_zero = t == 0
    ok = (is_two.sum(axis=1) == 1) & (is_two | is_zero).all(axis=1)
    return np.where(ok, is_two.argmax(axis=1), -1).astype(np.int16)


def _removed_tuple(values: np.ndarray) -> np.ndarray:
    """The gems_removed 6-tuple, missing counted as 0 (the spec writes zeros)."""
    r = values[:, C.REMOVED_COLS]
    return np.where(np.isnan(r), 0.0, r)


def _removed_class(values: np.ndarray) -> np.ndarray:
    """Class of the gems_removed tuple, -1 when not integers 0..3 with a total <= 3."""
    r = _removed_tuple(values)
    ok = _is_int_in(r, 0, 3).all(axis=1)
    code = np.where(ok[:, None], r, 0).astype(np.int64) @ _REMOVED_WEIGHTS
    # The lookup holds -1 for the tuples of a total above 3.
    return np.where(ok, _REMOVED_LOOKUP[code], -1).astype(np.int16)


def _noble_index(values: np.ndarray) -> np.ndarray:
    """noble_selection as an index, -1 for none, missing or out of range."""
    x = values[:, C.NOBLE_SELECTION_COL]
    return _as_index(x, _is_int_in(x, 0, C.NUM_NOBLE_SLOTS - 1))


def compute_labels(values: np.ndarray) -> dict[str, np.ndarray]:
    """Labels of the 7 heads (``columns.HEADS`` order), int16 ``(n,)`` each, -1 = not applicable.

    A decision that cannot be encoded (unknown action, malformed gem columns, out-of-range
    index) also gives -1; :func:`find_inconsistent_rows` reports those rows.
    """
    values = np.asarray(values, dtype=np.float64)
    action = _action_codes(values)
    card_sel = values[:, C.CARD_SELECTION_COL]
    card_res = values[:, C.CARD_RESERVATION_COL]
    labels = {
        "action_type": action,
        "card_selection": _as_index(card_sel, (action == C.BUILD) & _is_int_in(card_sel, 0, 14)),
        "card_reservation": _as_index(
            card_res, (action == C.RESERVE) & _is_int_in(card_res, 0, 14)
        ),
        "gem_take3": np.where(action == C.TAKE3, _take3_class(values), -1).astype(np.int16),
        "gem_take2": np.where(action == C.TAKE2, _take2_colour(values), -1).astype(np.int16),
        "noble": _noble_index(values),
        "gems_removed": _removed_class(values),
    }
    assert list(labels) == list(C.HEADS)
    return labels


# --- consistency of the decision columns ------------------------------------------------


def _player_tokens(values: np.ndarray) -> np.ndarray:
    tokens = values[:, C.PLAYER_GEMS[0]]
    return np.where(np.isfinite(tokens), tokens, 0.0).sum(axis=1)


def find_inconsistent_rows(
    values: np.ndarray,
    labels: dict[str, np.ndarray] | None = None,
    masks: dict[str, np.ndarray] | None = None,
) -> list[tuple[int, str, str]]:
    """Rows whose decision columns contradict their ``action_type`` (or their state).

    Returns ``(row_index, column_or_head, reason)`` triples sorted by row (a row may appear
    several times). Checked: the action code; ``card_selection`` / ``card_reservation``
    present exactly on build / reserve rows, integer 0..14 and pointing to a card that is
    there; ``gem_take3_*`` 0/1 with 1..3 ones on take-3 rows; ``gem_take2_*`` exactly one 2
    on take-2 rows (on other rows both gem blocks must be missing or all 0);
    ``noble_selection`` in -1..4 and not pointing to an empty noble slot (missing counts as
    -1); ``gems_removed_*`` non-negative integers with a total <= 3 (missing counts as 0),
    none on a build, and exactly the excess over 10 tokens after the action.

    ``labels`` (from :func:`compute_labels`) is recomputed when not given. When ``masks``
    (from ``masks.compute_masks``) is given, a label that is not legal in its row's state is
    reported too, under the head's name.

    A block that passes the whole-block test :func:`_all_consistent` (the usual case)
    returns ``[]`` at once; otherwise every check runs to name each problem.
    """
    values = np.asarray(values, dtype=np.float64)
    if labels is None:
        labels = compute_labels(values)
    if _all_consistent(values, labels, masks):
        return []
    return _detailed_inconsistencies(values, labels, masks)


def _all_consistent(
    values: np.ndarray,
    labels: dict[str, np.ndarray],
    masks: dict[str, np.ndarray] | None = None,
) -> bool:
    """Whole-block test, a few numpy calls: ``True`` guarantees that no check of
    :func:`find_inconsistent_rows` fires on any row. ``labels`` must be
    ``compute_labels(values)``: the test reads the decisions through them.

    ``False`` only means "look closer" (:func:`_detailed_inconsistencies` decides). It is
    ``True`` when: every row has an action; each head's label is set exactly on the rows of
    its action (a label exists only for a well-formed decision) and the decision cells of the
    other actions are missing or 0; the chosen card, and the noble, are there; the
    ``gems_removed`` tuple is well formed on every row, empty on builds and the excess over
    10 tokens otherwise; with ``masks``, every label is legal.
    """
    n = len(values)
    if n == 0:
        return True
    action = labels["action_type"]
    if (action < 0).any():
        return False
    rows = np.arange(n)

    # The 4 heads whose decision belongs to one action: a label exactly on that action's
    # rows (a label exists only for a well-formed decision); the card cells present exactly
    # there, the gem cells missing or 0 elsewhere.
    mine = action[:, None] == _HEAD_ACTIONS  # (n, 4)
    heads = np.stack([labels[head] for head in _ACTION_HEADS], axis=1)  # (n, 4)
    if ((heads >= 0) != mine).any():
        return False
    cells = values[:, _ACTION_CELLS]  # (n, 12)
    if (np.isnan(cells[:, :2]) == mine[:, :2]).any():
        return False
    if ((np.abs(cells[:, 2:]) > 0) & ~mine[:, _GEM_CELL_HEAD]).any():  # NaN: not taken
        return False

    # The chosen card is there: a face-up one (running index below the number present) or,
    # for a build, an own reserved one; the chosen noble is there.
    present = ~np.isnan(values[:, _TARGET_COLS])  # (n, 20): face-up, reserved, nobles
    selection = heads[:, 0]
    card = np.maximum(selection, heads[:, 1])  # the row's card index, -1 when none
    if ((card >= present[:, : C.NUM_VISIBLE].sum(axis=1)) & (card < C.NUM_VISIBLE)).any():
        return False
    reserved_slot = np.clip(selection, C.NUM_VISIBLE, 14)
    if ((selection >= C.NUM_VISIBLE) & ~present[rows, reserved_slot]).any():
        return False
    noble = labels["noble"]
    chosen = values[:, C.NOBLE_SELECTION_COL]  # missing, -1, or the noble's index
    if not (np.isnan(chosen) | (chosen == -1) | (chosen == noble)).all():
        return False
    if ((noble >= 0) & ~present[rows, 15 + np.maximum(noble, 0)]).any():
        return False

    # gems_removed: well formed everywhere (a class), exactly the excess over 10 tokens after
    # a token-gaining action, nothing on a build.
    removed = labels["gems_removed"]
    if (removed < 0).any():
        return False
    gold_left = values[:, C.BANK[5]] > 0  # NaN: none
    gain = C.TAKE3_SIZE[np.maximum(heads[:, 2], 0)] + 2 * mine[:, 3] + (mine[:, 1] & gold_left)
    excess = np.maximum(0, _player_tokens(values) + gain - MAX_TOKENS)
    if (C.REMOVED_TOTAL[removed] != np.where(mine[:, 0], 0, excess)).any():
        return False

    if masks is not None:
        return all(ok.all() for ok in masks_contain_labels(masks, labels).values())
    return True


def _detailed_inconsistencies(
    values: np.ndarray,
    labels: dict[str, np.ndarray],
    masks: dict[str, np.ndarray] | None = None,
) -> list[tuple[int, str, str]]:
    """:func:`find_inconsistent_rows` without the fast path: every check, every row."""
    action = labels["action_type"]
    is_build, is_reserve = action == C.BUILD, action == C.RESERVE
    is_take2, is_take3 = action == C.TAKE2, action == C.TAKE3
    found: list[tuple[np.ndarray, str, str]] = []

    def check(bad: np.ndarray, column: str, reason: str) -> None:
        found.append((np.flatnonzero(bad), column, reason))

    check(action < 0, "action_type", "missing or unknown action_type")

    n_visible = (~np.isnan(values[:, C.CARDS[:, C.F_LEVEL]])).sum(axis=1)
    reserved_present = ~np.isnan(values[:, C.PLAYER_RESERVED[0, :, C.F_LEVEL]])  # (n, 3)
    rows = np.arange(len(values))

    # card_selection / card_reservation
    for name, col, mine, what in (
        ("card_selection", C.CARD_SELECTION_COL, is_build, "build"),
        ("card_reservation", C.CARD_RESERVATION_COL, is_reserve, "reserve"),
    ):
        x = values[:, col]
        missing = np.isnan(x)
        check(mine & missing, name, f"{what} row without {name}")
        check(~mine & (action >= 0) & ~missing, name, f"{name} set on a non-{what} row")
        in_range = _is_int_in(x, 0, 14)
        check(mine & ~missing & ~in_range, name, f"{name} not an integer in 0..14")
        idx = np.where(in_range, np.nan_to_num(x), 0).astype(np.int64)
        check(
            mine & in_range & (idx < 12) & (idx >= n_visible),
            name,
            f"{name} points past the face-up cards present",
        )
        if name == "card_selection":
            r = np.clip(idx - 12, 0, 2)
            check(
                mine & in_range & (idx >= 12) & ~reserved_present[rows, r],
                name,
                "card_selection points to an empty reserved slot",
            )

    # gem_take3
    t3 = values[:, C.TAKE3_COLS]
    t3_set = ~np.isnan(t3) & (t3 != 0)
    check(is_take3 & np.isnan(t3).any(axis=1), "gem_take3", "take-3 row with gem_take3 missing")
    t3_01 = _is_int_in(t3, 0, 1).all(axis=1)
    check(
        is_take3 & ~np.isnan(t3).any(axis=1) & ~t3_01,
        "gem_take3",
        "gem_take3 values not 0/1",
    )
    n_ones = (t3 == 1).sum(axis=1)
    check(is_take3 & t3_01 & (n_ones == 0), "gem_take3", "take-3 row taking no colour")
    check(is_take3 & t3_01 & (n_ones > 3), "gem_take3", "take-3 row taking more than 3 colours")
    check(
        ~is_take3 & (action >= 0) & t3_set.any(axis=1),
        "gem_take3",
        "gem_take3 set on a non-take-3 row",
    )

    # gem_take2
    t2 = values[:, C.TAKE2_COLS]
    t2_set = ~np.isnan(t2) & (t2 != 0)
    check(is_take2 & np.isnan(t2).any(axis=1), "gem_take2", "take-2 row with gem_take2 missing")
    check(
        is_take2 & ~np.isnan(t2).any(axis=1) & (labels["gem_take2"] < 0),
        "gem_take2",
        "gem_take2 is not exactly one 2 and zeros",
    )
    check(
        ~is_take2 & (action >= 0) & t2_set.any(axis=1),
        "gem_take2",
        "gem_take2 set on a non-take-2 row",
    )

    # noble_selection
    ns = values[:, C.NOBLE_SELECTION_COL]
    ns_ok = np.isnan(ns) | _is_int_in(ns, -1, C.NUM_NOBLE_SLOTS - 1)
    check(~ns_ok, "noble_selection", "noble_selection not an integer in -1..4")
    noble_present = ~np.isnan(values[:, C.NOBLES[:, 0]])  # (n, 5)
    nidx = labels["noble"]
    check(
        (nidx >= 0) & ~noble_present[rows, np.clip(nidx, 0, 4)],
        "noble_selection",
        "noble_selection points to an empty noble slot",
    )

    # gems_removed
    rem = _removed_tuple(values)  # missing counts as 0
    finite = np.isfinite(rem)
    check((rem < 0).any(axis=1), "gems_removed", "gems_removed negative")
    check(
        (~finite | (rem != np.round(rem))).any(axis=1),
        "gems_removed",
        "gems_removed not an integer",
    )
    total_removed = np.where(finite, rem, 0.0).sum(axis=1)
    check(total_removed > 3, "gems_removed", "gems_removed total > 3")
    check(is_build & (rem != 0).any(axis=1), "gems_removed", "tokens returned on a build row")
    # A token-gaining action must return exactly the excess over 10 (and nothing otherwise).
    gold_left = np.nan_to_num(values[:, C.BANK[5]]) > 0
    gain = np.select(
        [is_take3, is_take2, is_reserve],
        [np.where(t3_01, n_ones, 0), 2, gold_left.astype(np.int64)],
        0,
    )
    excess = np.maximum(0, _player_tokens(values) + gain - MAX_TOKENS)
    wellformed = labels["gems_removed"] >= 0
    check(
        (is_take3 | is_take2 | is_reserve) & wellformed & (total_removed != excess),
        "gems_removed",
        "gems_removed does not bring the player back to 10 tokens",
    )

    if masks is not None:
        for head, ok in masks_contain_labels(masks, labels).items():
            check(~ok, head, f"{head} label not legal in this state")

    out = [(int(i), column, reason) for idx, column, reason in found for i in idx]
    out.sort(key=lambda t: t[0])
    return out
