"""Speed of the per-file step against a bare pyarrow parse, on one core.

Usage (from the repository root)::

    uv run python bench/per_file.py [FOLDER ...] [--repeat N] [--base B] [--cpu C]

Game logs are the ``<n>_games/*.csv`` files under the folders (default ``data/games``; more
can be generated with ``uv run splendor-il simulate --games N --out FOLDER``). The process
is pinned to one CPU. Printed: rows/s of a bare ``pyarrow.csv.read_csv`` (one thread, the
column types given: the fastest general CSV reader here), of the reader's own numpy tokenizer
alone (for comparison), and of
``process_game_log`` with masks and features on, their ratio (target >= 0.5), and the time
per row of each stage of the per-file step, to show where the time goes.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

if not __package__:  # run as a script: make the bench package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DEFAULT_FOLDERS = ["data/games"]
TARGET_RATIO = 0.5


def _files(folders: list[str]) -> list[Path]:
    found: list[Path] = []
    for folder in folders:
        found += sorted(p for p in Path(folder).glob("*_games/*.csv") if p.is_file())
    return found


def _stage_timer() -> tuple[Callable[[Path], None], dict[str, float]]:
    """A per-file function running the stages of ``process_game_log`` one by one (the same
    calls), and the dict where it adds up the seconds spent in each stage."""
    from imitation_learning.compaction import build_frame, compact
    from imitation_learning.features import compute_features
    from imitation_learning.labels import compute_labels, find_inconsistent_rows
    from imitation_learning.masks import compute_masks, masks_contain_labels
    from splendor.log_reader import read_game_log

    totals: dict[str, float] = {}

    def timed(stage: str, fn: Callable, *args):
        start = time.perf_counter()
        out = fn(*args)
        totals[stage] = totals.get(stage, 0.0) + time.perf_counter() - start
        return out

    def run(path: Path, base: int) -> None:
        log = timed("read_game_log", lambda: read_game_log(path, blind_reserve_base=base))
        values = log.values
        labels = timed("compute_labels", compute_labels, values)
        timed("find_inconsistent_rows", find_inconsistent_rows, values, labels)
        masks = timed("compute_masks", compute_masks, values)
        timed("masks_contain_labels", masks_contain_labels, masks, labels)
        compacted = timed("compact", compact, values)
        timed("build_frame", build_frame, compacted)
        timed("compute_features", compute_features, compacted)

    return run, totals


def _measure(
    fns: dict[str, Callable[[Path], object]], files: list[Path], base: int, repeat: int
) -> tuple[dict[str, float], dict[str, float]]:
    """Fastest pass (seconds) of each function, and of each stage. The passes alternate
    between the functions (and the staged run) so that a change in the machine's load hits
    them alike."""
    best = dict.fromkeys(fns, float("inf"))
    stage_best: dict[str, float] = {}
    for _ in range(repeat):
        for name, fn in fns.items():
            start = time.perf_counter()
            for path in files:
                fn(path)
            best[name] = min(best[name], time.perf_counter() - start)
        run, totals = _stage_timer()
        for path in files:
            run(path, base)
        for stage, seconds in totals.items():
            stage_best[stage] = min(stage_best.get(stage, float("inf")), seconds)
    return best, stage_best


def main(argv: list[str] | None = None) -> None:
    import pyarrow.csv as pacsv

    from bench.measure import _tokenize_plain, _typed_convert_options
    from imitation_learning.file_processing import process_game_log

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="*", default=DEFAULT_FOLDERS)
    parser.add_argument("--repeat", type=int, default=7, help="passes (the fastest counts)")
    parser.add_argument("--base", type=int, default=12, help="blind-reserve base of the files")
    parser.add_argument("--cpu", type=int, default=None, help="CPU to pin to (default: any one)")
    args = parser.parse_args(argv)

    if hasattr(os, "sched_setaffinity"):
        cpu = args.cpu if args.cpu is not None else min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpu})
        print(f"pinned to CPU {cpu}")

    files = _files(args.folders)
    if not files:
        raise SystemExit(
            f"no <n>_games/*.csv files under {args.folders} "
            "(generate some: uv run splendor-il simulate --games 150 --out data/games)"
        )
    config = {
        "reader": {"blind_reserve_base": args.base},
        "preprocessing": {"enable_masking": True, "enable_feature_engineering": True},
    }
    results = [process_game_log(p, config) for p in files]  # warm-up, and the row count
    rows = sum(r.rows_read for r in results)
    kept = sum(len(r) for r in results)
    print(f"{len(files)} files, {rows} data rows ({kept} kept), best of {args.repeat} passes")

    arrow_opts = pacsv.ReadOptions(use_threads=False)
    typed = _typed_convert_options()
    best, stages = _measure(
        {
            "bare": lambda p: pacsv.read_csv(p, read_options=arrow_opts, convert_options=typed),
            "tokenizer": _tokenize_plain,
            "full": lambda p: process_game_log(p, config),
        },
        files,
        args.base,
        args.repeat,
    )
    bare, full = best["bare"], best["full"]
    bare_rate, full_rate = rows / bare, rows / full
    ratio = full_rate / bare_rate
    print(f"{'bare pyarrow parse':>24}: {bare_rate:>10,.0f} rows/s  (column types given)")
    print(
        f"{'numpy tokenizer alone':>24}: {rows / best['tokenizer']:>10,.0f} rows/s  (the reader's fast path)"
    )
    print(f"{'process_game_log':>24}: {full_rate:>10,.0f} rows/s")
    verdict = "meets" if ratio >= TARGET_RATIO else "below"
    print(f"{'ratio':>24}: {ratio:>10.2f}  ({verdict} the target {TARGET_RATIO})")

    total = sum(stages.values())
    print(f"\nstages (sum {total / rows * 1e6:.1f} us/row; bare parse {bare / rows * 1e6:.1f}):")
    for stage, seconds in sorted(stages.items(), key=lambda kv: -kv[1]):
        share = seconds / total
        print(f"{stage:>24}: {seconds / rows * 1e6:>7.1f} us/row  {share:>6.1%}")
    print(f"{'mean rows per file':>24}: {np.mean([r.rows_read for r in results]):.0f}")


if __name__ == "__main__":
    main()
