"""The full preprocessing pipeline: game logs -> a saved train/val/test dataset.

``run_preprocessing(config)``: validate the config, discover the game files, process them
and save the dataset atomically to ``data.processed_dir`` with the two-phase Dask job of
:mod:`imitation_learning.job` (X built, split by game, scaled and written by the
workers; see :mod:`imitation_learning.dataset` for the files). Its command line is
``splendor-il preprocess`` (:mod:`splendor_il.preprocess_cli`).
"""

from __future__ import annotations

import time

from imitation_learning.dataset.feature_matrix import build_feature_matrix
from imitation_learning.dataset.scaler import Scaler
from imitation_learning.dataset.splits import split_by_game
from imitation_learning.dataset.store import load_dataset, save_dataset

__all__ = [
    "build_feature_matrix",
    "load_dataset",
    "run_preprocessing",
    "save_dataset",
    "split_by_game",
    "Scaler",
]


def run_preprocessing(
    config=None, *, progress: bool = True, cache_dir=None, files=None
) -> dict:
    """Run the whole pipeline; return a summary.

    Summary keys: ``files`` (game files discovered), ``files_rejected`` (files left out
    whole), ``rows_read``, ``rows_rejected``, ``rows_per_split`` ({train, val, test}),
    ``wall_time_s``, ``rows_per_s`` (rows read per second of wall time), ``output_dir``,
    ``dashboard_link`` (None without a cluster), ``in_process`` (whether the run went in
    this process, without a cluster), ``rejections`` (``Rejection.to_dict()``
    list), ``timings`` (seconds per stage), ``cache`` (the result cache's figures: its
    ``dir``, ``files_cached``, ``files_processed``, ``damaged`` entries, its ``entries``
    and ``bytes`` on disk; None without a cache).

    ``cache_dir``: the per-file result cache's folder
    (:mod:`imitation_learning.result_cache`), None (the default here) for none; the
    command line uses one beside the output by default.

    ``files``: the game files, when the caller has discovered them and checked the output
    folder already (the command line does, before any work); else both are done here.

    The rows never pass through this process: the workers build X, write the split files
    and the labels and masks (:func:`imitation_learning.job.build_dataset`).
    """
    from imitation_learning.config import Settings
    from imitation_learning.job.build import build_dataset
    from imitation_learning.job.discovery import discover_csv_files
    from imitation_learning.preflight import check_output_dir

    t_start = time.perf_counter()
    settings = Settings.of(config)  # validated once (as it is when already a Settings)
    data, prep = settings.data, settings.preprocessing

    if files is None:
        files = discover_csv_files(data.data_root, max_games=prep.max_games)
        check_output_dir(data.processed_dir, parents=True)  # before the work, not after
    discover_s = time.perf_counter() - t_start
    run = build_dataset(
        files,
        settings,
        progress=progress,
        t_start=t_start,
        timings={"discover_s": discover_s},
        cache_dir=cache_dir,
    )
    timings = dict(run.timings)
    wall = time.perf_counter() - t_start
    timings["total_s"] = wall
    return {
        "files": len(files),
        "files_rejected": run.files_rejected,
        "rows_read": run.rows_read,
        "rows_rejected": run.rows_rejected,
        "rows_per_split": run.rows_per_split,
        "wall_time_s": wall,
        "rows_per_s": run.rows_read / wall if wall > 0 else 0.0,
        "output_dir": str(run.output_dir),
        "dashboard_link": run.dashboard_link,
        "num_workers": run.num_workers,
        "in_process": run.in_process,
        "num_features": run.num_features,
        "out_of_core": prep.out_of_core,
        "rejections": run.rejections,
        "timings": timings,
        "cache": run.cache,
    }
