"""Speed of the reader's row checks (:func:`splendor.row_checks.validate_rows`) on valid blocks.

Usage (from the repository root)::

    uv run python -m bench run row-checks [-- --games N --repeat R]

The blocks are ``N`` games (default 300, evenly spaced, so every player count) of the
cached full-size benchmark dataset in the older exporters' dialect (``bench/cache/``), each file read once by
:func:`splendor.log_reader.read_game_log`; then ``validate_rows`` runs over every block
``R`` times (default 7). Printed: the best pass, in microseconds per file and million rows
per second; the same for blocks with one bad row each (a negative bank count in the block's
middle row), which fail the whole-block test and so run every rule cell by cell to name
the bad row: what a file with a bad row pays.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

FULLSIZE_GAMES = 6650  # the cached dataset of bench.fullsize

if not __package__:  # run as a script: make the bench package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv: list[str] | None = None) -> None:
    from bench.datasets import get_dataset
    from splendor import row_checks
    from splendor.columns import COL
    from splendor.log_reader import read_game_log

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--games", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args(argv)

    dataset = get_dataset(FULLSIZE_GAMES, dialect="legacy")
    files = [Path(p) for p in dataset.paths]
    files = files[:: max(1, len(files) // args.games)][: args.games]  # every player count
    blocks = [read_game_log(p, blind_reserve_base=dataset.blind_reserve_base).values for p in files]
    rows = sum(len(b) for b in blocks)
    print(f"{len(blocks)} files, {rows} rows")
    damaged = []
    for block in blocks:
        bad = block.copy()
        bad[len(bad) // 2, COL["gems_board_white"]] = -1
        damaged.append(bad)
    for label, sample, expected in (
        ("validate_rows", blocks, 0),
        ("one bad row", damaged, 1),
    ):
        best = float("inf")
        for _ in range(args.repeat):
            start = time.perf_counter()
            for block in sample:
                if len(row_checks.validate_rows(block, (2, 3, 4))) != expected:
                    raise SystemExit(f"{label}: not {expected} bad row(s) in a block")
            best = min(best, time.perf_counter() - start)
        print(
            f"{label:16s} {best / len(blocks) * 1e6:8.1f} us/file  "
            f"{rows / best / 1e6:6.2f} M rows/s  (best of {args.repeat})"
        )


if __name__ == "__main__":
    main()
