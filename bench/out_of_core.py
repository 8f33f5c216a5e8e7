"""Out-of-core mode against the in-memory mode: the driver's peak memory and throughput.

    uv run python -m bench.out_of_core [--games 1000] [--workers 2] [--cache-dir DIR]

Runs the whole pipeline (``run_preprocessing``: the Dask job on a local cluster, X, split,
scaler, save) on ``--games`` self-play games (cached by :mod:`bench.datasets`), once per
mode, each in a fresh interpreter. Each run reports the driver's peak resident memory
(``VmHWM`` of the driver process: absolute, and its increase over the resident size after
the imports, at which the high-water mark is reset), the size of the saved dataset (all its
files), wall time and rows/s (rows read per second of the pipeline's wall time). The target
is a driver peak below the size of the final dataset in out-of-core mode. Also checks that
both modes saved the same bytes. Outputs go to ``bench/cache/out_of_core/`` (git-ignored).
Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from bench.datasets import CACHE_DIR, get_dataset

WORK_DIR = CACHE_DIR / "out_of_core"
MODES = ("in-memory", "out-of-core")


def probe(mode: str, data_root: str, out_dir: str, workers: int) -> dict:
    """One pipeline run in this (fresh) process; the figures as a dict."""
    import distributed  # noqa: F401  (the job's imports, before the baseline)
    import numpy  # noqa: F401
    import pandas  # noqa: F401
    import pyarrow.csv  # noqa: F401

    import imitation_learning.file_processing  # noqa: F401
    from bench.memprobe import _reset_peak, current_rss_bytes, peak_rss_bytes
    from imitation_learning.data_preprocessing import run_preprocessing

    config = {
        "data": {"data_root": data_root, "processed_dir": out_dir},
        "preprocessing": {
            "num_workers": workers,
            "out_of_core": mode == "out-of-core",
            "dashboard_address": "127.0.0.1:0",
        },
    }
    reset = _reset_peak()
    baseline = current_rss_bytes()
    summary = run_preprocessing(config, progress=False)
    peak = peak_rss_bytes()
    saved = sum(p.stat().st_size for p in Path(out_dir).iterdir())
    return {
        "mode": mode,
        "workers": summary["num_workers"],
        "files": summary["files"],
        "rows": summary["rows_read"],
        "baseline_rss_bytes": baseline,
        "peak_rss_bytes": peak,
        "peak_reset_at_baseline": reset,
        "peak_increase_bytes": peak - baseline,
        "dataset_bytes": saved,
        "wall_s": round(summary["wall_time_s"], 3),
        "rows_per_s": round(summary["rows_per_s"], 1),
    }


def _run_probe(mode: str, data_root: Path, out_dir: Path, workers: int) -> dict:
    command = [sys.executable, "-m", "bench.out_of_core", "--probe", mode]
    command += [str(data_root), str(out_dir), str(workers)]
    env = {k: v for k, v in os.environ.items() if k != "DASK_SCHEDULER_ADDRESS"}
    proc = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{mode} run failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _same_files(a: Path, b: Path) -> bool:
    names = sorted(p.name for p in a.iterdir())
    if names != sorted(p.name for p in b.iterdir()):
        return False
    return all((a / n).read_bytes() == (b / n).read_bytes() for n in names if n != "stats.json")


def _mib(n: int) -> str:
    return f"{n / 2**20:,.0f} MiB"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.out_of_core", description=__doc__)
    parser.add_argument("--games", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--cache-dir", default=str(CACHE_DIR), help="dataset cache")
    parser.add_argument("--probe", nargs=4, metavar=("MODE", "ROOT", "OUT", "WORKERS"))
    args = parser.parse_args(argv)
    if args.probe:
        mode, root, out, workers = args.probe
        print(json.dumps(probe(mode, root, out, int(workers))))
        return

    dataset = get_dataset(args.games, cache_dir=args.cache_dir)
    print(f"dataset: {dataset.games} games, {dataset.rows} rows ({dataset.root})")
    results = {}
    for mode in MODES:
        out = WORK_DIR / mode
        shutil.rmtree(out, ignore_errors=True)
        results[mode] = _run_probe(mode, dataset.root, out, args.workers)
    same = _same_files(WORK_DIR / MODES[0], WORK_DIR / MODES[1])

    print(
        f"{'mode':<12} {'workers':>7} {'rows':>8} {'wall':>8} {'rows/s':>9} "
        f"{'driver peak':>12} {'peak - imports':>15} {'dataset':>10}"
    )
    for mode, r in results.items():
        print(
            f"{mode:<12} {r['workers']:>7} {r['rows']:>8} {r['wall_s']:>7.2f}s "
            f"{r['rows_per_s']:>9,.0f} {_mib(r['peak_rss_bytes']):>12} "
            f"{_mib(r['peak_increase_bytes']):>15} {_mib(r['dataset_bytes']):>10}"
        )
    ooc, mem = results["out-of-core"], results["in-memory"]
    ratio = ooc["peak_rss_bytes"] / ooc["dataset_bytes"]
    verdict = "met" if ratio < 1 else "NOT met"
    print(f"out-of-core driver peak / dataset size: {ratio:.2f} (target < 1: {verdict})")
    print(
        f"in-memory driver peak / dataset size:   {mem['peak_rss_bytes'] / mem['dataset_bytes']:.2f}"
    )
    print(f"throughput out-of-core / in-memory:     {ooc['rows_per_s'] / mem['rows_per_s']:.2f}")
    print(f"same saved files (all but stats.json):  {same}")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
