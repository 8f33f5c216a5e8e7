"""The ``scaler`` check: ``scaler.npz`` is the scaler fitted on the train rows of X.

This module owns :class:`ScalerScan` and its tolerance (:data:`STATS_TOLERANCE`, derived
in :mod:`imitation_learning.check.soundness`): the scaler covers the continuous columns,
the train rows un-standardised have its mean and standard deviation, and every
un-standardised value is a whole number.
"""

from __future__ import annotations

import numpy as np

from imitation_learning.check.report import PASS, SKIP, CheckResult
from imitation_learning.check.shapes import Layout
from imitation_learning.check.x_scan import Scan
from imitation_learning.dataset.feature_matrix import (
    CONTINUOUS,
)

FLOAT32_EPS = float(np.finfo(np.float32).eps)

#: Allowed |mean(z)| and |std(z) - 1| over the train rows (see the module docstring).
STATS_TOLERANCE = FLOAT32_EPS


class ScalerScan(Scan):
    """Train statistics of z = X's continuous columns, and whole-number test of
    ``z * scale + mean`` on every split."""

    def __init__(self, ds: dict, layout: Layout):
        self.res = CheckResult("scaler")
        self.layout = layout
        self.skip_reason = None
        if layout.kinds is None or not layout.scaler_ok:
            self.skip_reason = "column kinds or scaler arrays unusable (see shapes)"
            return
        scaler = ds["scaler"]
        kinds = np.asarray(layout.kinds)
        self.cont = np.flatnonzero(kinds == CONTINUOUS)
        names = ds["feature_names"]
        self.cont_names = [names[i] for i in self.cont]
        if not np.array_equal(np.sort(scaler.columns), self.cont):
            self.res.problem(
                f"scaler.npz standardises {len(scaler.columns)} columns, stats.json has "
                f"{len(self.cont)} continuous ones"
            )
        other = np.setdiff1d(np.arange(len(kinds)), self.cont)
        if (scaler.mean[other] != 0).any() or (scaler.scale[other] != 1).any():
            self.res.problem("scaler.npz changes columns that are not continuous")
        if not (np.isfinite(scaler.mean).all() and (scaler.scale > 0).all()):
            self.res.problem("scaler.npz has a non-finite mean or a scale <= 0")
            self.skip_reason = "the scaler cannot be inverted"
            return
        self.mean = scaler.mean[self.cont]
        self.scale = scaler.scale[self.cont]
        n = len(self.cont)
        self.count, self.sum, self.sumsq = 0, np.zeros(n), np.zeros(n)
        self.train_non_finite = 0
        self.fraction: dict[str, dict] = {}

    def begin(self, split, X, named):
        self.active = self.skip_reason is None and named
        if self.active:
            self.fraction[split] = {"values_not_whole": 0}

    def update(self, split, start, block, finite):
        if not self.active:
            return
        if split == "train":
            self.train_non_finite += int((~finite).sum())
        rows = block if finite.all() else block[finite]
        if not len(rows):
            return
        z = rows[:, self.cont].astype(np.float64)
        if split == "train":
            self.count += len(z)
            self.sum += z.sum(axis=0)
            self.sumsq += np.einsum("ij,ij->j", z, z)
        tol = FLOAT32_EPS * self.scale * np.maximum(z.max(axis=0), -z.min(axis=0)) + 1e-9
        z *= self.scale
        z += self.mean
        off = np.abs(z - np.rint(z)) > tol
        if off.any():
            bad = int(off.sum())
            self.fraction[split]["values_not_whole"] += bad
            r, c = (int(v[0]) for v in np.nonzero(off))
            self.res.problem(
                f"{split}: {self.cont_names[c]} un-standardised is {z[r, c]:.6g}, not a whole "
                "number (X was standardised with another scaler)"
            )

    def result(self):
        res = self.res
        if self.skip_reason:
            res.status = SKIP if res.status == PASS else res.status
            res.summary = f"not checked: {self.skip_reason}"
            return res
        res.per_split = dict(self.fraction)
        deviation = {}
        if self.train_non_finite:
            res.problem(
                f"{self.train_non_finite} train rows are not finite: their statistics "
                "cannot be verified"
            )
        elif self.count:
            mz = self.sum / self.count
            sz = np.sqrt(np.maximum(self.sumsq / self.count - mz**2, 0.0))
            constant = (self.scale == 1.0) & (sz <= STATS_TOLERANCE)
            std_err = np.where(constant, 0.0, np.abs(sz - 1.0))
            mean_err = np.abs(mz)
            deviation = {
                "max_mean_deviation_over_scale": float(mean_err.max(initial=0.0)),
                "max_std_deviation_over_scale": float(std_err.max(initial=0.0)),
                "tolerance": STATS_TOLERANCE,
                "train_rows": int(self.count),
            }
            for what, err in (("mean", mean_err), ("std", std_err)):
                bad = np.flatnonzero(err > STATS_TOLERANCE)
                if len(bad):
                    c = bad[np.argmax(err[bad])]
                    res.problem(
                        f"{len(bad)} columns' train {what} differs from the saved one; worst "
                        f"{self.cont_names[c]}: off by {err[c]:.3g} x scale (tolerance "
                        f"{STATS_TOLERANCE:.3g})"
                    )
        elif (self.mean != 0).any() or (self.scale != 1).any():
            res.problem("no train rows, yet the scaler is not the identity")
        res.per_split["train"] = {**res.per_split.get("train", {}), **deviation}
        if res.status == PASS:
            res.summary = (
                f"{len(self.cont)} continuous columns; train mean, std within "
                f"{deviation.get('max_mean_deviation_over_scale', 0):.2g}, "
                f"{deviation.get('max_std_deviation_over_scale', 0):.2g} x scale of the saved "
                f"(tolerance {STATS_TOLERANCE:.2g}); all values whole numbers"
            )
        else:
            res.summary = "the scaler does not match the train rows of X"
        return res
