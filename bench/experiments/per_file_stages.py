"""Speed of the per-file step against a bare pyarrow parse, on one core.

Usage (from the repository root)::

    uv run python bench/experiments/per_file_stages.py [FOLDER ...] [--repeat N] [--base B] [--cpu C]
    uv run python bench/experiments/per_file_stages.py --games 300 [--dialects current legacy] [--repeat N]

Game logs are the ``<n>_games/*.csv`` files under the folders (default ``data/games``; more
can be generated with ``uv run splendor-il simulate --games N --out FOLDER``). The process
is pinned to one CPU. Printed: rows/s of a bare ``pyarrow.csv.read_csv`` (one thread, the
column types given: the fastest general CSV reader here), of the reader's own numpy tokenizer
alone (for comparison), and of
``process_game_log`` with masks and features on, their ratio (target >= 0.5), and the time
per row of each stage of the per-file step, to show where the time goes.

With ``--games N`` the files are the benchmark dataset of N games (``bench/cache/``, made by
``splendor-il simulate --seed 2027``) written in each of ``--dialects`` (default: this
exporter's and the older exporters'), the same games in each; every figure is given per
dialect, and the per-file rate of each dialect over the first's (target for the older
dialect: >= 0.9). Each dialect is read with its blind-reserve base.
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
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

DEFAULT_FOLDERS = ["data/games"]
TARGET_RATIO = 0.5
TARGET_DIALECT_RATIO = 0.9


def _files(folders: list[str]) -> list[Path]:
    found: list[Path] = []
    for folder in folders:
        found += sorted(p for p in Path(folder).glob("*_games/*.csv") if p.is_file())
    return found


def _stage_timer() -> tuple[Callable[[Path], None], dict[str, float]]:
    """A per-file function running the stages of ``process_game_log`` one by one (the same
    calls), and the dict where it adds up the seconds spent in each stage."""
    from imitation_learning.per_file.compaction import build_frame, compact
    from imitation_learning.per_file.features import compute_features
    from imitation_learning.per_file.labels import compute_labels, find_inconsistent_rows
    from imitation_learning.per_file.masks import compute_masks, masks_contain_labels
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
    fns: dict[str, tuple[Callable[[Path], object], list[Path]]],
    stage_runs: dict[str, tuple[list[Path], int]],
    repeat: int,
) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """Fastest pass (seconds) of each function over its files, and of each stage of each
    staged run (files, blind-reserve base). The passes alternate between the functions (and
    the staged runs) so that a change in the machine's load hits them alike."""
    best = dict.fromkeys(fns, float("inf"))
    stage_best: dict[str, dict[str, float]] = {name: {} for name in stage_runs}
    for _ in range(repeat):
        for name, (fn, files) in fns.items():
            start = time.perf_counter()
            for path in files:
                fn(path)
            best[name] = min(best[name], time.perf_counter() - start)
        for name, (files, base) in stage_runs.items():
            run, totals = _stage_timer()
            for path in files:
                run(path, base)
            for stage, seconds in totals.items():
                stage_best[name][stage] = min(stage_best[name].get(stage, float("inf")), seconds)
    return best, stage_best


def _print_stages(stages: dict[str, float], rows: int, bare: float) -> None:
    total = sum(stages.values())
    print(f"stages (sum {total / rows * 1e6:.1f} us/row; bare parse {bare / rows * 1e6:.1f}):")
    for stage, seconds in sorted(stages.items(), key=lambda kv: -kv[1]):
        share = seconds / total
        print(f"{stage:>24}: {seconds / rows * 1e6:>7.1f} us/row  {share:>6.1%}")


def main(argv: list[str] | None = None) -> None:
    import pyarrow.csv as pacsv
    from bench.measure import tokenize_plain, typed_convert_options

    from imitation_learning.per_file.file_processing import process_game_log
    from splendor.log_writer import DIALECTS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="*", default=None)
    parser.add_argument("--repeat", type=int, default=7, help="passes (the fastest counts)")
    parser.add_argument("--base", type=int, default=12, help="blind-reserve base of the files")
    parser.add_argument("--cpu", type=int, default=None, help="CPU to pin to (default: any one)")
    parser.add_argument(
        "--games", type=int, default=None, help="the benchmark dataset of N games, not folders"
    )
    parser.add_argument(
        "--dialects",
        nargs="+",
        choices=tuple(DIALECTS),
        default=["current", "legacy"],
        help="with --games: the dialects to write the games in (default: current legacy)",
    )
    args = parser.parse_args(argv)
    if args.games is not None and args.folders:
        parser.error("give folders or --games, not both")

    # Files and blind-reserve base of each set of files measured (one set per dialect).
    sets: dict[str, tuple[list[Path], int]] = {}
    if args.games is not None:
        from bench.datasets import get_dataset

        for dialect in dict.fromkeys(args.dialects):
            ds = get_dataset(args.games, dialect=dialect)
            sets[dialect] = ([Path(p) for p in ds.paths], ds.blind_reserve_base)
    else:
        folders = args.folders or DEFAULT_FOLDERS
        files = _files(folders)
        if not files:
            raise SystemExit(
                f"no <n>_games/*.csv files under {folders} "
                "(generate some: uv run splendor-il simulate --games 150 --out data/games)"
            )
        sets["files"] = (files, args.base)

    if hasattr(os, "sched_setaffinity"):
        cpu = args.cpu if args.cpu is not None else min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpu})
        print(f"pinned to CPU {cpu}")

    def config(base: int) -> dict:
        return {
            "reader": {"blind_reserve_base": base},
            "preprocessing": {"enable_masking": True, "enable_feature_engineering": True},
        }

    arrow_opts = pacsv.ReadOptions(use_threads=False)
    typed = typed_convert_options()
    fns: dict[str, tuple[Callable[[Path], object], list[Path]]] = {}
    counts = {}
    for name, (files, base) in sets.items():
        cfg = config(base)
        results = [process_game_log(p, cfg) for p in files]  # warm-up, and the row count
        counts[name] = (
            sum(r.rows_read for r in results),
            sum(len(r) for r in results),
            float(np.mean([r.rows_read for r in results])),
        )
        fns[f"bare {name}"] = (
            lambda p: pacsv.read_csv(p, read_options=arrow_opts, convert_options=typed),
            files,
        )
        fns[f"tokenizer {name}"] = (tokenize_plain, files)
        fns[f"full {name}"] = (lambda p, cfg=cfg: process_game_log(p, cfg), files)
    best, stages = _measure(fns, sets, args.repeat)

    first = next(iter(sets))
    for name, (files, base) in sets.items():
        rows, kept, mean_rows = counts[name]
        bare, full = best[f"bare {name}"], best[f"full {name}"]
        ratio = bare / full
        print(
            f"\n[{name}] {len(files)} files, {rows} data rows ({kept} kept), blind-reserve base "
            f"{base}, best of {args.repeat} passes, {mean_rows:.0f} rows per file"
        )
        print(f"{'bare pyarrow parse':>24}: {rows / bare:>10,.0f} rows/s  (column types given)")
        tokenizer = best[f"tokenizer {name}"]
        print(f"{'numpy tokenizer alone':>24}: {rows / tokenizer:>10,.0f} rows/s  (the fast path)")
        print(f"{'process_game_log':>24}: {rows / full:>10,.0f} rows/s")
        verdict = "meets" if ratio >= TARGET_RATIO else "below"
        print(f"{'vs bare parse':>24}: {ratio:>10.2f}  ({verdict} the target {TARGET_RATIO})")
        _print_stages(stages[name], rows, bare)
    if len(sets) > 1:
        print(f"\nper-file rate over the {first} dialect's (same games, one core):")
        for name in sets:
            if name != first:
                ratio = best[f"full {first}"] / best[f"full {name}"]
                verdict = "meets" if ratio >= TARGET_DIALECT_RATIO else "below"
                print(f"{name:>24}: {ratio:>10.2f}  ({verdict} the target {TARGET_DIALECT_RATIO})")


if __name__ == "__main__":
    main()
