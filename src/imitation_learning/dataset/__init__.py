"""The saved dataset: X's columns, the split by game, the scaler, the atomic save and load.

The pipeline (:mod:`imitation_learning.data_preprocessing`) and the job
(:mod:`imitation_learning.job`) turn the four outputs of the per-file step into the
files of ``docs/dataset.md``. This package re-exports the public names of
its modules, one responsibility each:

- :mod:`~imitation_learning.dataset.feature_matrix`: X's columns, their kinds, and
  :func:`build_feature_matrix` (float32, from the compact ``df`` and the strategic features);
- :mod:`~imitation_learning.dataset.splits`: :func:`split_by_game`, train / val / test
  masks; a game never spans two splits;
- :mod:`~imitation_learning.dataset.scaler`: :class:`Moments` and :class:`Scaler`, mean
  and scale fitted on the train rows, for the continuous columns;
- :mod:`~imitation_learning.dataset.files`: one file's bytes (.npy, .npz, .json), synced;
- :mod:`~imitation_learning.dataset.atomic_dir`: :class:`AtomicDir`, every file written
  into a temporary sibling folder, then swapped in;
- :mod:`~imitation_learning.dataset.stats`: the figures of ``stats.json`` and
  ``preprocessing_stats.json``;
- :mod:`~imitation_learning.dataset.store`: :func:`save_dataset` and :func:`load_dataset`.

Layout of the output folder::

    X_{train,val,test}.npy        float32 (rows, F), continuous columns standardised
    labels_{split}.npz            head -> int16 (rows,)       (-1 = not applicable)
    masks_{split}.npz             head -> bool (rows, classes)
    feature_names.json            the F column names of X, in order
    label_classes.json            splendor.columns.class_tables()
    scaler.npz                    mean, scale (float64, (F,)), columns (int64), continuous (bool, (F,))
    stats.json                    counts and game ids per split, label and mask statistics,
                                  inputs, rejections, config, package versions, timings,
                                  column kinds
    rejections.json               the run's rejection report (Rejection.to_dict() list)
    preprocessing_stats.json      what training code reads: input_dim (= F), split sizes,
                                  legal classes per head over the train rows

Every file, with dtypes, shapes and keys: ``docs/dataset.md``.
"""

from __future__ import annotations

from imitation_learning.dataset.atomic_dir import AtomicDir, is_dataset_dir
from imitation_learning.dataset.feature_matrix import (
    BINARY,
    CARD_POSITION_COLUMNS,
    CONTINUOUS,
    EXCLUDED_LOG_COLUMNS,
    KINDS,
    LOG_FEATURE_COLUMNS,
    METADATA_COLUMNS,
    NUM_FIXED_COLUMNS,
    NUM_ONEHOT,
    NUM_PLAYERS_ONEHOT,
    ONEHOT,
    POSITION,
    POSITION_COLUMNS,
    RESERVED_POSITION_COLUMNS,
    SEAT_ONEHOT,
    build_feature_matrix,
    feature_columns,
    strategic_feature_kinds,
)
from imitation_learning.dataset.files import fsync_path
from imitation_learning.dataset.scaler import Moments, Scaler
from imitation_learning.dataset.splits import SPLITS, split_by_game
from imitation_learning.dataset.stats import (
    TRAINING_SUMMARY_FILE,
    dataset_stats,
    head_stats,
    split_stats,
    training_summary,
)
from imitation_learning.dataset.store import (
    labels_masks_layouts,
    load_dataset,
    save_dataset,
    write_dataset,
    write_labels_and_masks,
    write_metadata,
)

__all__ = [
    "BINARY",
    "CARD_POSITION_COLUMNS",
    "CONTINUOUS",
    "EXCLUDED_LOG_COLUMNS",
    "KINDS",
    "LOG_FEATURE_COLUMNS",
    "METADATA_COLUMNS",
    "NUM_FIXED_COLUMNS",
    "NUM_ONEHOT",
    "NUM_PLAYERS_ONEHOT",
    "ONEHOT",
    "POSITION",
    "POSITION_COLUMNS",
    "RESERVED_POSITION_COLUMNS",
    "SEAT_ONEHOT",
    "SPLITS",
    "TRAINING_SUMMARY_FILE",
    "AtomicDir",
    "Moments",
    "Scaler",
    "build_feature_matrix",
    "dataset_stats",
    "feature_columns",
    "fsync_path",
    "head_stats",
    "is_dataset_dir",
    "load_dataset",
    "save_dataset",
    "split_by_game",
    "split_stats",
    "strategic_feature_kinds",
    "training_summary",
    "write_dataset",
    "labels_masks_layouts",
    "write_labels_and_masks",
    "write_metadata",
]
