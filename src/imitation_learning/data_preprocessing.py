"""The full preprocessing pipeline: game logs -> a saved train/val/test dataset.

``run_preprocessing(config)``: validate the config, discover the game files, process them
and save the dataset atomically to ``data.processed_dir`` with the two-phase Dask job of
:mod:`imitation_learning.assembly` (X built, split by game, scaled and written by the
workers; see :mod:`imitation_learning.dataset` for the files).

    python -m imitation_learning.data_preprocessing [--config PATH]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Mapping

from imitation_learning.dataset.feature_matrix import build_feature_matrix
from imitation_learning.dataset.scaler import Scaler
from imitation_learning.dataset.splits import split_by_game
from imitation_learning.dataset.store import load_dataset, save_dataset

__all__ = [
    "build_feature_matrix",
    "load_dataset",
    "main",
    "run_preprocessing",
    "save_dataset",
    "split_by_game",
    "Scaler",
]


def run_preprocessing(
    config: Mapping | None = None, *, progress: bool = True, cache_dir=None
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

    The rows never pass through this process: the workers build X, write the split files
    and the labels and masks (:func:`imitation_learning.assembly.build_dataset`); the
    ``preprocessing.out_of_core`` setting is accepted and changes nothing (both modes are
    this path).
    """
    from imitation_learning.assembly import build_dataset
    from imitation_learning.config import validate_config
    from imitation_learning.parallel_processor import discover_csv_files
    from imitation_learning.preflight import check_output_dir

    t_start = time.perf_counter()
    cfg = validate_config(config or {})
    data, prep = cfg["data"], cfg["preprocessing"]

    files = discover_csv_files(data["data_root"], max_games=prep.get("max_games"))
    check_output_dir(data["processed_dir"], parents=True)  # before the work, not after
    discover_s = time.perf_counter() - t_start
    run = build_dataset(
        files,
        cfg,
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
        "out_of_core": prep["out_of_core"],
        "rejections": run.rejections,
        "timings": timings,
        "cache": run.cache,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m imitation_learning.data_preprocessing",
        description="Preprocess Splendor game logs into a train/val/test dataset.",
    )
    parser.add_argument("--config", help="YAML configuration (default: built-in defaults)")
    parser.add_argument("--no-progress", action="store_true", help="do not show the progress bar")
    args = parser.parse_args(argv)

    from imitation_learning.config import ConfigError, load_config

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    from imitation_learning.per_file.file_processing import StrictModeError

    try:
        summary = run_preprocessing(config, progress=not args.no_progress)
    except StrictModeError as exc:  # preprocessing.strict: stopped at the first rejection
        print(f"strict mode: input rejected: {exc.rejection}", file=sys.stderr)
        return 3
    shown = {k: v for k, v in summary.items() if k != "rejections"}
    print(json.dumps(shown, indent=2, default=str))
    for rej in summary["rejections"][:20]:
        where = rej["file"] + (f", line {rej['line']}" if rej["line"] is not None else "")
        print(f"rejected: {where}: {rej['reason']}")
    if len(summary["rejections"]) > 20:
        print(f"... and {len(summary['rejections']) - 20} more (see rejections.json)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
