"""The ``x_in_step`` check: X's rows in step with the masks (hence the labels).

This module owns :class:`InStepScan`: the card-building and take-2 legality of the masks
(``card_selection``, ``gem_take2``) against X's can-build and take-2-possible columns, two
computations of the same state by different code, so X shifted against the labels breaks
most rows.
"""

from __future__ import annotations

import numpy as np

from imitation_learning.check.report import PASS, SKIP, CheckResult
from imitation_learning.check.shapes import Layout
from imitation_learning.check.x_scan import Scan
from imitation_learning.dataset.splits import SPLITS
from splendor import columns as C

CAN_BUILD_COLUMNS = [f"player0_cardpos{j}_can_build" for j in range(C.HEADS["card_selection"])]

TAKE2_POSSIBLE_COLUMNS = [f"bank_{c}_take2_possible" for c in C.COLOURS]


class InStepScan(Scan):
    """Masks of card_selection / gem_take2 against X's can-build / take-2-possible columns."""

    def __init__(self, ds: dict, layout: Layout):
        self.res = CheckResult("x_in_step")
        self.ds, self.layout = ds, layout
        index = {name: i for i, name in enumerate(ds["feature_names"])}
        config = ds["stats"].get("config") or {}
        masking = (config.get("preprocessing") or {}).get("enable_masking", True)
        self.skip_reason = None
        if not masking:
            self.skip_reason = "the dataset was saved without masks (enable_masking: false)"
        elif not all(n in index for n in CAN_BUILD_COLUMNS + TAKE2_POSSIBLE_COLUMNS):
            self.skip_reason = "X has no can-build / take-2 features (feature engineering off)"
        else:
            self.cols = np.array([index[n] for n in CAN_BUILD_COLUMNS + TAKE2_POSSIBLE_COLUMNS])
        self.counts: dict[str, dict] = {}
        self.active = False

    def begin(self, split, X, named):
        heads_ok = all(self.layout.heads.get((split, h)) for h in ("card_selection", "gem_take2"))
        self.active = self.skip_reason is None and named and heads_ok
        if self.active:
            self.legal = np.concatenate(
                [
                    np.asarray(self.ds[f"masks_{split}"]["card_selection"], dtype=bool),
                    np.asarray(self.ds[f"masks_{split}"]["gem_take2"], dtype=bool),
                ],
                axis=1,
            )
            self.counts[split] = {"rows_checked": 0, "rows_out_of_step": 0}

    def update(self, split, start, block, finite):
        if not self.active:
            return
        from_x = block[:, self.cols] != 0
        differ = (from_x != self.legal[start : start + len(block)]).any(axis=1) & finite
        c = self.counts[split]
        c["rows_checked"] += int(finite.sum())
        if differ.any():
            c["rows_out_of_step"] += int(differ.sum())
            r = int(np.flatnonzero(differ)[0])
            self.res.problem(
                f"{split} row {start + r}: X's can-build / take-2 columns disagree with the masks"
            )

    def result(self):
        res = self.res
        if self.skip_reason:
            res.status, res.summary = SKIP, f"not checked: {self.skip_reason}"
            return res
        res.per_split = self.counts
        checked = sum(c["rows_checked"] for c in self.counts.values())
        bad = sum(c["rows_out_of_step"] for c in self.counts.values())
        if res.status == PASS:
            res.summary = (
                f"{checked} rows: card_selection and gem_take2 masks = X's can-build and "
                "take-2 columns"
            )
        else:
            res.summary = (
                f"{bad} of {checked} rows: card_selection / gem_take2 masks differ from X's "
                "can-build / take-2 columns"
            )
        unchecked = [s for s in SPLITS if s not in self.counts]
        if unchecked:
            res.summary += f" (not checked, see shapes: {', '.join(unchecked)})"
        if checked == 0 and res.status == PASS:
            res.status = SKIP
        return res
