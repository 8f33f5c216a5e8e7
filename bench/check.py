"""`splendor-il check` on a dataset folder: wall time, CPU time and peak memory.

    uv run python -m bench.check [DATASET_DIR] [--games 1000] [--max-rows N] [--repeat 1]

Without ``DATASET_DIR``, ``--games`` greedy self-play games (cached by :mod:`bench.datasets`)
are preprocessed once (one worker) into ``bench/cache/check/g<games>/`` and checked. Each run
is a fresh interpreter (``--probe``) that imports the check, resets the kernel's high-water
mark of its memory (``VmHWM``, see :mod:`bench.memprobe`) and runs the whole check as the
command line does (soundness, then learnability with the default ``--max-rows`` sample unless
given), without progress bars. Printed: rows, the size of X, wall and CPU seconds of each
part, the peak resident memory (absolute, and above the size after the imports), and whether
the dataset was sound. The target (issue 16): under 60 s and under 1 GB on the full-size
dataset (~550,000 rows). The X files are read through the page cache: a first run after the
files were written elsewhere may read from disk; ``--repeat`` shows both.
Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from bench.datasets import CACHE_DIR, get_dataset

WORK_DIR = CACHE_DIR / "check"


def probe(dataset_dir: str, max_rows: int | None) -> dict:
    """One check of ``dataset_dir`` in this (fresh) process; the figures as a dict."""
    import numpy  # noqa: F401
    import tqdm  # noqa: F401

    import imitation_learning.check.learnability  # noqa: F401
    import imitation_learning.check.soundness  # noqa: F401
    import splendor_il.check_cli as check_cli
    from bench.memprobe import current_rss_bytes, peak_rss_bytes, reset_peak

    reset = reset_peak()
    baseline = current_rss_bytes()
    wall, cpu = time.perf_counter(), time.process_time()
    report = check_cli.run_check(dataset_dir, max_rows=max_rows, progress=False)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    peak = peak_rss_bytes()
    x_bytes = sum((Path(dataset_dir) / f"X_{s}.npy").stat().st_size for s in report["rows"])
    learn = report["learnability"] or {"settings": {}, "heads": []}
    return {
        "dataset": dataset_dir,
        "rows": sum(report["rows"].values()),
        "columns": report["columns"],
        "x_bytes": x_bytes,
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "soundness_s": report["timings"]["soundness_s"],
        "learnability_s": report["timings"]["learnability_s"],
        "train_rows_sampled": learn["settings"].get("train_rows_sampled"),
        "baseline_rss_bytes": baseline,
        "peak_rss_bytes": peak,
        "peak_reset_at_baseline": reset,
        "peak_increase_bytes": peak - baseline,
        "sound": report["sound"],
        "margins": {h["head"]: h["margin"] for h in learn["heads"]},
    }


def _run_probe(dataset_dir: Path, max_rows: int | None) -> dict:
    command = [sys.executable, "-m", "bench.check", "--probe", str(dataset_dir)]
    if max_rows is not None:
        command += ["--max-rows", str(max_rows)]
    proc = subprocess.run(command, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"check run failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _prepared_dataset(games: int, cache_dir: str) -> Path:
    """The preprocessed dataset of ``games`` cached games (made once)."""
    from imitation_learning.data_preprocessing import run_preprocessing
    from imitation_learning.dataset import is_dataset_dir

    out = WORK_DIR / f"g{games}"
    if not is_dataset_dir(out):
        logs = get_dataset(games, cache_dir=cache_dir)
        config = {
            "data": {"data_root": str(logs.root), "processed_dir": str(out)},
            "preprocessing": {"num_workers": 1},
        }
        print(f"preprocessing {games} games into {out} ...", flush=True)
        run_preprocessing(config, progress=False)
    return out


def _mib(n: int) -> str:
    return f"{n / 2**20:,.0f} MiB"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.check", description=__doc__)
    parser.add_argument("dataset_dir", nargs="?", help="a saved dataset (default: --games)")
    parser.add_argument("--games", type=int, default=1000)
    parser.add_argument("--max-rows", type=int, default=None, help="default: the check's own")
    parser.add_argument("--repeat", type=int, default=1, help="runs, each in a fresh process")
    parser.add_argument("--cache-dir", default=str(CACHE_DIR), help="game log cache")
    parser.add_argument("--probe", metavar="DIR", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.probe:
        print(json.dumps(probe(args.probe, args.max_rows)))
        return

    path = (
        Path(args.dataset_dir)
        if args.dataset_dir
        else _prepared_dataset(args.games, args.cache_dir)
    )
    runs = [_run_probe(path, args.max_rows) for _ in range(args.repeat)]
    first = runs[0]
    print(
        f"dataset: {path} ({first['rows']:,} rows x {first['columns']:,} columns, "
        f"X {_mib(first['x_bytes'])}); cpus: {os.cpu_count()}"
    )
    print(
        f"{'run':>3} {'wall':>7} {'cpu':>7} {'soundness':>10} {'learnability':>13} "
        f"{'train rows':>11} {'peak RSS':>9} {'peak - imports':>15} {'sound':>6}"
    )
    for i, r in enumerate(runs, 1):
        print(
            f"{i:>3} {r['wall_s']:>6.1f}s {r['cpu_s']:>6.1f}s {r['soundness_s']:>9.1f}s "
            f"{r['learnability_s']:>12.1f}s {r['train_rows_sampled'] or 0:>11,} "
            f"{_mib(r['peak_rss_bytes']):>9} {_mib(r['peak_increase_bytes']):>15} "
            f"{str(r['sound']):>6}"
        )
    best = min(runs, key=lambda r: r["wall_s"])
    rate = best["rows"] / best["soundness_s"] if best["soundness_s"] else 0.0
    print(
        f"soundness: {rate:,.0f} rows/s ({best['x_bytes'] / best['soundness_s'] / 2**20:,.0f} MiB/s of X)"
    )
    print(
        "margins (model - best baseline): "
        + ", ".join(f"{h} {m:+.3f}" for h, m in best["margins"].items() if m is not None)
    )
    print(json.dumps(runs, indent=2))


if __name__ == "__main__":
    main()
