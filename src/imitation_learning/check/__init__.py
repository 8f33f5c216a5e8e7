"""``splendor-il check``: is a saved dataset sound, and learnable?

The soundness checks (pass / fail, :func:`check_soundness` in
:mod:`~imitation_learning.check.soundness`) read the small files and each split's X once;
one module a check or two: :mod:`~imitation_learning.check.report` (the checks' names and
results), :mod:`~imitation_learning.check.shapes` (opening the dataset; ``shapes``,
``labels_valid``, ``labels_in_masks``),
:mod:`~imitation_learning.check.training_summary` (``training_summary``),
:mod:`~imitation_learning.check.x_scan` (the pass
over X; ``x_finite``), :mod:`~imitation_learning.check.in_step` (``x_in_step``),
:mod:`~imitation_learning.check.games` (``games_disjoint``),
:mod:`~imitation_learning.check.scaler_check` (``scaler``) and
:mod:`~imitation_learning.check.column_groups` (``column_groups``).
:mod:`~imitation_learning.check.learnability` measures whether X predicts the logged
decisions better than chance. This package re-exports the names the command line uses.
"""

from __future__ import annotations

from imitation_learning.check.report import (
    CHECKS,
    FAIL,
    PASS,
    SKIP,
    CheckResult,
    passed,
    report_dict,
)
from imitation_learning.check.scaler_check import STATS_TOLERANCE
from imitation_learning.check.shapes import DatasetNotFoundError, open_dataset
from imitation_learning.check.soundness import check_soundness

__all__ = [
    "CHECKS",
    "FAIL",
    "PASS",
    "SKIP",
    "STATS_TOLERANCE",
    "CheckResult",
    "DatasetNotFoundError",
    "check_soundness",
    "open_dataset",
    "passed",
    "report_dict",
]
