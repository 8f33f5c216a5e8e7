"""The ``column_groups`` check: X's one-hot groups, position and binary columns.

This module owns :class:`GroupScan`: ``num_players_{2,3,4}`` one-hot, the rotated seats a
permutation of the players in the game, position columns their index or -1 (face-up cards
compacted, reserved cards only for players in the game), binary columns 0 or 1, and the
rows per player count equal to ``stats.json``'s.
"""

from __future__ import annotations

import numpy as np

from imitation_learning.check.report import PASS, SKIP, CheckResult
from imitation_learning.check.shapes import Layout
from imitation_learning.check.x_scan import Scan
from imitation_learning.dataset.feature_matrix import (
    BINARY,
    CARD_POSITION_COLUMNS,
    NUM_PLAYERS_ONEHOT,
    SEAT_ONEHOT,
)
from splendor import columns as C
from splendor.limits import MAX_RESERVED, PLAYER_COUNTS


class GroupScan(Scan):
    """One-hot groups, position columns, binary columns; rows per player count."""

    def __init__(self, ds: dict, layout: Layout):
        self.res = CheckResult("column_groups")
        self.ds, self.layout = ds, layout
        index = {name: i for i, name in enumerate(ds["feature_names"])}
        self.skip_reason = None
        needed = NUM_PLAYERS_ONEHOT + SEAT_ONEHOT + CARD_POSITION_COLUMNS
        reserved = [
            f"player{k}_reserved{r}_position"
            for k in range(C.NUM_PLAYER_SLOTS)
            for r in range(MAX_RESERVED)
        ]
        if layout.kinds is None or not all(n in index for n in needed + reserved):
            self.skip_reason = "column names or kinds unusable (see shapes)"
            return
        self.players = np.array([index[n] for n in NUM_PLAYERS_ONEHOT])
        self.seats = np.array([index[n] for n in SEAT_ONEHOT])
        self.cards = np.array([index[n] for n in CARD_POSITION_COLUMNS])
        self.reserved = np.array([index[n] for n in reserved])
        self.binary = np.flatnonzero(np.asarray(layout.kinds) == BINARY)
        self.counts: dict[str, dict] = {}

    def begin(self, split, X, named):
        self.active = self.skip_reason is None and named
        if self.active:
            self.counts[split] = {
                "bad_rows": {
                    "num_players": 0,
                    "seats": 0,
                    "card_positions": 0,
                    "reserved_positions": 0,
                    "binary": 0,
                },
                "rows_by_num_players": dict.fromkeys(map(str, PLAYER_COUNTS), 0),
                "non_finite_rows": 0,
            }

    def _bad(self, split, start, what, bad_rows, text):
        if bad_rows.any():
            self.counts[split]["bad_rows"][what] += int(bad_rows.sum())
            r = int(np.flatnonzero(bad_rows)[0])
            self.res.problem(f"{split} row {start + r}: {text}")

    def update(self, split, start, block, finite):
        if not self.active:
            return
        counts = self.counts[split]
        counts["non_finite_rows"] += int((~finite).sum())
        n_slots = C.NUM_PLAYER_SLOTS
        onehot = block[:, np.concatenate([self.players, self.seats])]
        not01 = ((onehot != 0) & (onehot != 1)).any(axis=1)

        players = block[:, self.players]
        bad = ((players != 0) & (players != 1)).any(axis=1) | (players.sum(axis=1) != 1)
        self._bad(split, start, "num_players", bad & finite, "num_players one-hot not one-hot")
        n = np.asarray(PLAYER_COUNTS)[players.argmax(axis=1)]  # (rows,)
        good = finite & ~bad
        for count in PLAYER_COUNTS:
            counts["rows_by_num_players"][str(count)] += int((good & (n == count)).sum())

        seats = block[:, self.seats].reshape(-1, n_slots, n_slots)  # (rows, slot, seat)
        in_game = np.arange(n_slots)[None, :] < n[:, None]  # slot k < num_players; seat s < n
        bad_seats = (
            not01
            | (seats.sum(axis=2) != in_game).any(axis=1)
            | (seats.sum(axis=1) != in_game).any(axis=1)
        )
        self._bad(
            split,
            start,
            "seats",
            bad_seats & good,
            "rotated seats not one seat per player in the game, each seat once",
        )

        cards = block[:, self.cards]
        present = cards >= 0
        bad_cards = ((cards != np.arange(C.NUM_VISIBLE)) & (cards != -1)).any(axis=1) | (
            present[:, 1:] & ~present[:, :-1]
        ).any(axis=1)
        self._bad(
            split,
            start,
            "card_positions",
            bad_cards & finite,
            "card{i}_position not i or -1, or face-up cards not compacted",
        )

        res = block[:, self.reserved].reshape(-1, n_slots, MAX_RESERVED)
        index = C.NUM_VISIBLE + np.arange(MAX_RESERVED)
        bad_res = ((res != index) & (res != -1)).any(axis=(1, 2)) | (
            (res != -1) & ~in_game[:, :, None]
        ).any(axis=(1, 2))
        self._bad(
            split,
            start,
            "reserved_positions",
            bad_res & good,
            "reserved position not 12+r or -1, or a reserved card for a player not in the game",
        )

        if len(self.binary):
            b = block[:, self.binary]
            self._bad(
                split,
                start,
                "binary",
                ((b != 0) & (b != 1)).any(axis=1) & finite,
                "a binary column not 0 or 1",
            )

    def result(self):
        res = self.res
        if self.skip_reason:
            res.status, res.summary = SKIP, f"not checked: {self.skip_reason}"
            return res
        splits_stats = self.ds["stats"].get("splits", {})
        for split, counts in self.counts.items():
            by_players = splits_stats.get(split, {}).get("by_num_players", {})
            saved = {str(n): by_players.get(str(n), {}).get("rows") for n in PLAYER_COUNTS}
            if counts["non_finite_rows"] == 0 and not any(counts["bad_rows"].values()):
                if saved != counts["rows_by_num_players"]:
                    res.problem(
                        f"{split}: rows per player count {counts['rows_by_num_players']} in X, "
                        f"{saved} in stats.json"
                    )
        res.per_split = self.counts
        if res.status == PASS:
            res.summary = (
                f"num_players, seats, card and reserved positions, {len(self.binary)} binary "
                "columns; rows per player count as in stats.json"
            )
        else:
            total = sum(sum(c["bad_rows"].values()) for c in self.counts.values())
            res.summary = f"{total} rows with an invalid group"
        return res
