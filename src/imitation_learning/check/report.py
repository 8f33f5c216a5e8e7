"""The report of ``splendor-il check``'s soundness checks: their names, results and verdict.

This module owns :data:`CHECKS` (every check's name, in report order, and what its pass
proves), the statuses (:data:`PASS`, :data:`FAIL`, :data:`SKIP`), :class:`CheckResult` (one
check's status, summary, figures per split and a few examples of what failed) and the
report as a whole (:func:`report_dict`, :func:`passed`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

PASS, FAIL, SKIP = "pass", "fail", "skip"

#: The checks, in report order: name -> what a pass proves.
CHECKS: dict[str, str] = {
    "files": "every file present and readable",
    "x_finite": "X is finite",
    "shapes": "shapes agree with feature_names.json, label_classes.json and stats.json",
    "training_summary": "preprocessing_stats.json agrees with X's width, the rows and the masks",
    "labels_valid": "every label is -1 or a class index",
    "labels_in_masks": "every label inside its own mask",
    "x_in_step": "X rows in step with masks and labels",
    "games_disjoint": "no game in two splits",
    "scaler": "scaler = statistics of the train rows of X un-standardised",
    "column_groups": "one-hot groups, position and binary columns valid",
}

#: Examples kept per check.
MAX_EXAMPLES = 3


@dataclass
class CheckResult:
    """One check: ``status`` pass / fail / skip, a one-line ``summary``, figures per split
    and a few ``examples`` of what failed."""

    name: str
    status: str = PASS
    summary: str = ""
    per_split: dict = field(default_factory=dict)
    examples: list[str] = field(default_factory=list)

    @property
    def description(self) -> str:
        return CHECKS[self.name]

    def problem(self, text: str) -> None:
        """Record a failure (the first few texts are kept as examples)."""
        self.status = FAIL
        if len(self.examples) < MAX_EXAMPLES:
            self.examples.append(text)

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "description": self.description,
            "status": self.status,
            "summary": self.summary,
            "per_split": self.per_split,
            "examples": self.examples,
        }


def report_dict(results: list[CheckResult]) -> list[dict]:
    return [r.to_dict() for r in results]


def passed(results: list[CheckResult]) -> bool:
    """True when no check failed (a skipped check does not fail)."""
    return all(r.status != FAIL for r in results)
