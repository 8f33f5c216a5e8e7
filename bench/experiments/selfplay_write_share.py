"""Self-play throughput on one core: games/s and rows/s, logs written to a temporary folder.

    uv run python bench/experiments/selfplay_write_share.py [--games 150] [--players 2 3 4]

For each agent (random, greedy) it runs ``splendor.simulate.simulate`` (play, encode, write
each log and the manifest) in this single process and prints the figures, plus the share of
the time spent formatting and writing the CSV files. Rates are per CPU second of this
process (one core, whatever else the machine runs); wall-clock rates are shown beside them.
Prints only; asserts nothing.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import Counter
from pathlib import Path

from splendor import log_writer, simulate


def bench(agent: str, games: int, players: tuple[int, ...], seed: int) -> None:
    write_time = 0.0
    original = log_writer.write_game_log

    def timed_write(*args, **kwargs):
        nonlocal write_time
        t = time.process_time()
        try:
            return original(*args, **kwargs)
        finally:
            write_time += time.process_time() - t

    simulate.write_game_log = timed_write
    try:
        with tempfile.TemporaryDirectory() as out:
            t0, c0 = time.perf_counter(), time.process_time()
            entries = simulate.simulate(
                games, players=players, agent=agent, seed=seed, out=Path(out), progress=False
            )
            elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    finally:
        simulate.write_game_log = original
    rows = sum(e["rows"] for e in entries)
    outcomes = dict(Counter(e["outcome"] for e in entries))
    rounds = sum(e["rounds"] for e in entries) / len(entries)
    print(
        f"{agent:>6}: {len(entries)} games, {rows} rows, {cpu:.2f} s CPU -> "
        f"{len(entries) / cpu:.1f} games/s, {rows / cpu:,.0f} rows/s per core "
        f"(writing logs {100 * write_time / cpu:.0f}% of it; wall {elapsed:.2f} s, "
        f"{len(entries) / elapsed:.1f} games/s); mean rounds {rounds:.1f}, outcomes {outcomes}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--games", type=int, default=150, help="games per agent (default 150)")
    parser.add_argument("--players", type=int, nargs="+", default=[2, 3, 4])
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    print(f"self-play on one core, players {args.players}, logs written to a temporary folder")
    for agent in ("random", "greedy"):
        bench(agent, args.games, tuple(args.players), args.seed)


if __name__ == "__main__":
    main()
