"""The full preprocessing pipeline: game logs -> a saved train/val/test dataset.

``run_preprocessing(config)``: validate the config, discover the game files, process them
with the Dask job (:func:`imitation_learning.parallel_processor.run_job`), build the
feature matrix X, split by game, fit the scaler on train, and write the dataset atomically
to ``data.processed_dir`` (see :mod:`imitation_learning.dataset` for the files).
With ``preprocessing.out_of_core`` the partitions write shards and the driver assembles
memory-mapped files instead (:mod:`imitation_learning.out_of_core`); same files.

    python -m imitation_learning.data_preprocessing [--config PATH]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Mapping
from contextlib import nullcontext

import numpy as np

from imitation_learning.dataset import (
    CONTINUOUS,
    SPLITS,
    Scaler,
    build_feature_matrix,
    load_dataset,
    save_dataset,
    split_by_game,
)

__all__ = [
    "build_feature_matrix",
    "load_dataset",
    "main",
    "run_preprocessing",
    "save_dataset",
    "split_by_game",
    "Scaler",
]


def run_preprocessing(config: Mapping | None = None, *, progress: bool = True) -> dict:
    """Run the whole pipeline; return a summary.

    Summary keys: ``files`` (game files discovered), ``files_rejected`` (files left out
    whole), ``rows_read``, ``rows_rejected``, ``rows_per_split`` ({train, val, test}),
    ``wall_time_s``, ``rows_per_s`` (rows read per second of wall time), ``output_dir``,
    ``dashboard_link`` (None without a cluster), ``rejections`` (``Rejection.to_dict()``
    list), ``timings`` (seconds per stage).
    """
    from imitation_learning.config import validate_config
    from imitation_learning.features import NUM_FEATURES
    from imitation_learning.out_of_core import save_dataset_from_shards, shard_folder
    from imitation_learning.parallel_processor import discover_csv_files, run_job
    from imitation_learning.preflight import check_output_dir

    t_start = time.perf_counter()
    cfg = validate_config(config or {})
    data, prep = cfg["data"], cfg["preprocessing"]

    files = discover_csv_files(data["data_root"], max_games=prep.get("max_games"))
    check_output_dir(data["processed_dir"], parents=True)  # before the work, not after
    t_discovered = time.perf_counter()
    out_of_core = prep["out_of_core"]
    # Out-of-core: the partitions write shards beside the output, removed at the end.
    with shard_folder(data["processed_dir"]) if out_of_core else nullcontext() as shard_dir:
        job = run_job(
            files,
            cfg,
            num_workers=prep.get("num_workers"),
            progress=progress,
            report_path=prep.get("report"),
            **({"shard_dir": shard_dir} if out_of_core else {}),
        )
        t_processed = time.perf_counter()
        result = job.result
        labels, masks = result.labels, result.masks
        rows_read, rows_rejected = result.rows_read, result.rows_rejected
        files_rejected = len(result.files_rejected)
        rejections = [r.to_dict() for r in result.rejections]
        job_info = {"timings": job.timings, "link": job.dashboard_link, "workers": job.num_workers}
        df, features = result.df, result.features
        shards, shard_rows = result.shards, result.shard_rows
        del job, result  # once X is built, nothing else holds on to df and the features

        if not out_of_core:
            X, names, kinds = build_feature_matrix(df, features)
        game_ids = df["game_id"].to_numpy()
        num_players = df["num_players"].to_numpy()
        del df, features
        t_built = time.perf_counter()

        ratios = (data["train_ratio"], data["val_ratio"], data["test_ratio"])
        split_masks = split_by_game(game_ids, ratios, seed=cfg["seed"])
        if not out_of_core:
            continuous = np.flatnonzero(np.asarray(kinds) == CONTINUOUS)
            scaler = Scaler.fit(X, split_masks["train"], continuous)
        t_split = time.perf_counter()

        timings = {
            "discover_s": t_discovered - t_start,
            **{f"job_{k}": v for k, v in job_info["timings"].items()},
            "job_wall_s": t_processed - t_discovered,
            "build_features_s": t_built - t_processed,
            "split_and_scaler_s": t_split - t_built,
        }
        common = {
            "split_masks": split_masks,
            "game_ids": game_ids,
            "num_players": num_players,
            "input_files": files,
            "rejections": rejections,
            "rows_read": rows_read,
            "config": cfg,
            "timings": timings,
        }
        if out_of_core:
            # X assembled from the shards into memory-mapped files; scaler fitted there
            strategic = NUM_FEATURES if prep["enable_feature_engineering"] else 0
            out_dir, num_features = save_dataset_from_shards(
                data["processed_dir"],
                shards=shards,
                shard_rows=shard_rows,
                strategic_width=strategic,
                **common,
            )
        else:
            out_dir = save_dataset(
                data["processed_dir"],
                X=X,
                feature_names=names,
                column_kinds=kinds,
                labels=labels,
                masks=masks,
                scaler=scaler,
                **common,
            )
            num_features = len(names)
    t_end = time.perf_counter()
    timings["save_s"] = t_end - t_split
    timings["total_s"] = t_end - t_start

    wall = t_end - t_start
    return {
        "files": len(files),
        "files_rejected": files_rejected,
        "rows_read": rows_read,
        "rows_rejected": rows_rejected,
        "rows_per_split": {s: int(split_masks[s].sum()) for s in SPLITS},
        "wall_time_s": wall,
        "rows_per_s": rows_read / wall if wall > 0 else 0.0,
        "output_dir": str(out_dir),
        "dashboard_link": job_info["link"],
        "num_workers": job_info["workers"],
        "num_features": num_features,
        "out_of_core": out_of_core,
        "rejections": rejections,
        "timings": timings,
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
    from imitation_learning.file_processing import StrictModeError

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
