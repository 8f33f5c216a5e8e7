"""Soundness of a saved dataset: the pass/fail checks of ``splendor-il check``, run together.

This module owns :func:`check_soundness`, which runs the checks of
:mod:`imitation_learning.check` in one pass over X. It opens a dataset folder (X memory-mapped), reads each split's X once
in blocks of rows, and returns one :class:`CheckResult` per check of :data:`CHECKS`:

``files``
    every file of the dataset is there and loads.
``x_finite``
    X holds no NaN or infinity.
``shapes``
    X has one column per name of ``feature_names.json``, a float32 2-D array; every head of
    ``label_classes.json`` has labels (1-D, integer) and masks (2-D, one column per class)
    with X's rows; the rows equal the counts in ``stats.json``; the column kinds and the
    scaler cover the same columns.
``training_summary``
    ``preprocessing_stats.json`` (what training code reads) is there and agrees with the
    arrays: ``input_dim`` is X's width, the split sizes are X's rows, and the legal classes
    per head (mean, min, max) are those of the train masks.
``labels_valid``
    every label is -1 or a class index of its head.
``labels_in_masks``
    every label (not -1) is legal in its own row's mask.
``x_in_step``
    X's rows are in step with the masks (hence the labels): the card-building legality the
    masks give (``card_selection``) equals X's ``player0_cardpos{j}_can_build`` columns, and
    the take-2 legality (``gem_take2``) equals X's ``bank_{colour}_take2_possible`` columns.
    Both are computed from the same state by different code (masks from the raw log row,
    features from the compacted row), so X shifted by one row against the labels and masks
    breaks most rows. Skipped when the dataset was saved without masks or features.
``games_disjoint``
    no game in two splits: the game ids of each split in ``stats.json`` are disjoint, and no
    row of X appears, bit for bit, in two splits (a game copied under another id).
``scaler``
    ``scaler.npz`` is the scaler fitted on the train rows and applied to X: it covers the
    continuous columns (others mean 0, scale 1); the mean and standard deviation of the train
    rows of X un-standardised (``X * scale + mean``) equal the saved mean and scale; and every
    un-standardised value is a whole number, as every column of X is before standardisation
    (log values are counts and indices, the strategic features whole numbers 0..62).
``column_groups``
    the one-hot groups are one-hot (``num_players_{2,3,4}``: exactly one; rotated seats:
    slot k holds one seat when k < num_players, none otherwise, and the seats of a row are
    0..num_players-1 once each); position columns hold their index or -1 (face-up cards
    compacted, reserved cards only for players in the game); binary columns are 0 or 1; rows
    per player count equal ``stats.json``.

Float32 rounding, the tolerance of the scaler check: X holds ``z = fl32((x - mean) / scale)``,
and float32 rounding to nearest errs by at most eps32/2 relative, so ``|z*scale + mean - x|
<= eps32/2 * |x - mean|``. Summed over the train rows this moves the mean of the
un-standardised values by at most eps32/2 * mean|x - mean| <= eps32/2 * std, and their
standard deviation by at most eps32/2 * std (the norm of a difference bounds the difference
of the centred norms). The check allows ``eps32 * scale`` (twice the bound; float64
accumulation adds ~n * 1e-16, far below). A scaler fitted on other rows misses by about
``scale / sqrt(rows)``, orders of magnitude more. The whole-number test allows, per block and
column, ``eps32 * scale * max|z| + 1e-9``: twice the largest rounding error of the block.

Rows with a non-finite value are reported by ``x_finite`` and left out of the other X checks;
the scaler statistics cannot be verified when a train row is non-finite (the check fails).
Each X file is read once, block by block; the pages read are released as the scan goes
(``MADV_DONTNEED``), so memory stays at a few blocks whatever the size of X.
"""

from __future__ import annotations

import os

from imitation_learning.check.column_groups import GroupScan
from imitation_learning.check.games import FingerprintScan, check_games
from imitation_learning.check.in_step import InStepScan
from imitation_learning.check.report import CHECKS, FAIL, SKIP, CheckResult
from imitation_learning.check.scaler_check import ScalerScan
from imitation_learning.check.shapes import (
    DatasetNotFoundError,
    check_labels_in_masks,
    check_labels_valid,
    check_shapes,
    open_dataset,
)
from imitation_learning.check.training_summary import check_training_summary
from imitation_learning.check.x_scan import BLOCK_ROWS, FiniteScan, scan_x
from imitation_learning.dataset.splits import SPLITS


def check_soundness(
    path: str | os.PathLike,
    *,
    dataset: dict | None = None,
    progress: bool = False,
    block_rows: int = BLOCK_ROWS,
) -> list[CheckResult]:
    """Run every check of :data:`CHECKS` on the dataset in ``path`` (or on ``dataset``, a
    :func:`open_dataset` result of it). Raises :class:`DatasetNotFoundError` when ``path``
    holds no dataset; a dataset that does not load fails the ``files`` check."""
    files = CheckResult("files")
    if dataset is None:
        try:
            dataset = open_dataset(path)
        except DatasetNotFoundError:
            raise
        except Exception as exc:  # noqa: BLE001 - any load error is this check's failure
            files.problem(f"{type(exc).__name__}: {exc}")
    if files.status == FAIL:
        files.summary = "the dataset does not load: " + files.examples[0]
        skipped = [
            CheckResult(name, SKIP, "not run: the dataset does not load")
            for name in CHECKS
            if name != "files"
        ]
        return [files, *skipped]
    # X, labels, masks; 5 others, and preprocessing_stats.json where there is one
    ds = dataset
    files.summary = f"{len(SPLITS) * 3 + 5 + ('preprocessing_stats' in ds)} files loaded"

    shapes, layout = check_shapes(ds)
    summary = check_training_summary(ds, layout)
    labels_valid = check_labels_valid(ds, layout)
    labels_in_masks = check_labels_in_masks(ds, layout)

    scans = [
        FiniteScan(),
        InStepScan(ds, layout),
        FingerprintScan(),
        ScalerScan(ds, layout),
        GroupScan(ds, layout),
    ]
    scan_x(ds, layout, scans, progress=progress, block_rows=block_rows)
    finite, in_step, fingerprints, scaler, groups = (s.result() for s in scans)
    games = check_games(ds, layout, fingerprints)
    by_name = {
        r.name: r
        for r in (files, finite, shapes, summary, labels_valid, labels_in_masks, in_step, games)
        + (scaler, groups)
    }
    return [by_name[name] for name in CHECKS]
