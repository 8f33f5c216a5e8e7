"""The ``training_summary`` check: ``preprocessing_stats.json`` agrees with the arrays.

Training code sizes its network from this file alone (``input_dim``), so a summary that
disagrees with X or the masks breaks training in ways that are hard to trace. This module
owns :func:`check_training_summary`: the file is there; ``input_dim`` and ``num_features``
equal X's width; ``{train,val,test}_size`` equal the rows of each split's X and
``total_samples`` their sum; and, head by head, the mean, least and most legal classes of
the train masks equal ``mask_statistics``. It reads the masks the shape check found usable
(small: booleans), never X.
"""

from __future__ import annotations

import math

import numpy as np

from imitation_learning.check.report import PASS, CheckResult
from imitation_learning.check.shapes import Layout
from imitation_learning.dataset.splits import SPLITS
from imitation_learning.dataset.stats import TRAINING_SUMMARY_FILE
from splendor import columns as C

#: Relative tolerance of ``avg_legal_actions`` (a float64 mean written as JSON).
AVG_TOLERANCE = 1e-9


def check_training_summary(ds: dict, layout: Layout) -> CheckResult:
    res = CheckResult("training_summary")
    summary = ds.get("preprocessing_stats")
    if not isinstance(summary, dict):
        res.problem(
            f"no {TRAINING_SUMMARY_FILE} (a dataset saved before it existed: "
            "run splendor-il preprocess again)"
        )
        res.summary = f"{TRAINING_SUMMARY_FILE} missing"
        return res

    width = len(ds["feature_names"])
    for key in ("input_dim", "num_features"):
        if summary.get(key) != width:
            res.problem(f"{key} is {summary.get(key)}, X has {width} columns")
    for split in SPLITS:
        rows = layout.rows.get(split)
        if summary.get(f"{split}_size") != rows:
            res.problem(f"{split}_size is {summary.get(f'{split}_size')}, X_{split} has {rows} rows")
    total = sum(layout.rows.get(s, 0) for s in SPLITS)
    if summary.get("total_samples") != total:
        res.problem(f"total_samples is {summary.get('total_samples')}, the splits hold {total}")

    saved = summary.get("mask_statistics")
    if not isinstance(saved, dict) or set(saved) != set(C.HEADS):
        res.problem(f"mask_statistics has heads {sorted(saved or {})}, not the 7 heads")
        saved = {}
    checked = []
    for head in C.HEADS:
        if head not in saved or not layout.heads.get(("train", head)):
            continue
        legal = np.asarray(ds["masks_train"][head]).astype(bool).sum(axis=1, dtype=np.int64)
        n = len(legal)
        expected = {
            "avg_legal_actions": float(legal.mean()) if n else 0.0,
            "min_legal_actions": int(legal.min()) if n else 0,
            "max_legal_actions": int(legal.max()) if n else 0,
        }
        got = saved[head]
        for key, want in expected.items():
            value = got.get(key) if isinstance(got, dict) else None
            ok = (
                isinstance(value, int | float)
                and math.isclose(value, want, rel_tol=AVG_TOLERANCE, abs_tol=AVG_TOLERANCE)
                if key == "avg_legal_actions"
                else value == want
            )
            if not ok:
                res.problem(f"{head} {key} is {value}, the train masks give {want}")
        checked.append(head)
    res.summary = (
        f"input_dim {width}, sizes " + ", ".join(f"{s} {layout.rows.get(s)}" for s in SPLITS)
        + f", mask statistics of {len(checked)} heads"
        if res.status == PASS
        else f"{TRAINING_SUMMARY_FILE} disagrees with the arrays"
    )
    return res
