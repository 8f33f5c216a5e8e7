"""``splendor-il simulate``: self-play logs from the command line.

Parses the flags, opens a pool of worker processes (the job's cluster helper,
:func:`imitation_learning.cluster.pool_client`) when ``--num-workers`` is above 1 or a
``--scheduler-address`` is given, and hands its client to :func:`splendor.simulate.simulate`,
which plays the games in this process otherwise.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from imitation_learning.cluster import pool_client
from splendor.agents import AGENTS
from splendor.limits import PLAYER_COUNTS
from splendor.log_writer import DIALECTS, LINE_ENDINGS, get_dialect
from splendor.simulate import simulate
from splendor.state import DEFAULT_MAX_ROUNDS


def _run(args: argparse.Namespace) -> int:
    options = dict(
        players=tuple(args.players),
        agent=args.agent,
        seed=args.seed,
        out=Path(args.out),
        progress=not args.no_progress,
        max_rounds=args.max_rounds,
        dialect=args.dialect,
        line_endings=args.line_endings,
    )
    if (args.num_workers > 1 or args.scheduler_address) and args.games > 1:
        get_dialect(args.dialect)  # an unknown name fails before a cluster starts
        with pool_client(args.num_workers, scheduler_address=args.scheduler_address) as client:
            entries = simulate(args.games, client=client, **options)
    else:
        entries = simulate(args.games, **options)
    outcomes: dict[str, int] = {}
    for e in entries:
        outcomes[e["outcome"]] = outcomes.get(e["outcome"], 0) + 1
    rows = sum(e["rows"] for e in entries)
    print(f"{len(entries)} games, {rows} rows written to {args.out} ({outcomes})")
    return 0


def register_cli(subparsers) -> argparse.ArgumentParser:
    """Add the ``simulate`` subcommand to ``splendor-il``."""
    p = subparsers.add_parser(
        "simulate",
        help="generate self-play game logs",
        description="Play self-play games and write their logs (<out>/<n>_games/<id>.csv) "
        "and <out>/manifest.csv.",
    )
    p.add_argument("--games", type=int, required=True, help="number of games in total")
    p.add_argument(
        "--players",
        type=int,
        nargs="+",
        default=list(PLAYER_COUNTS),
        choices=PLAYER_COUNTS,
        help="player counts; the games are split evenly over them (default: 2 3 4)",
    )
    p.add_argument("--agent", choices=sorted(AGENTS), default="greedy", help="default: greedy")
    p.add_argument("--seed", type=int, default=0, help="run seed (game ids and game seeds)")
    p.add_argument("--out", default="data/games", help="output folder (default: data/games)")
    p.add_argument(
        "--max-rounds",
        type=int,
        default=DEFAULT_MAX_ROUNDS,
        help=f"round cap, games reaching it end as truncated (default {DEFAULT_MAX_ROUNDS})",
    )
    p.add_argument(
        "--num-workers",
        type=int,
        default=1,
        help="worker processes playing games in parallel (default 1: in this process)",
    )
    p.add_argument(
        "--scheduler-address",
        default=None,
        help="play on an existing Dask cluster (its workers must see --out)",
    )
    p.add_argument(
        "--dialect",
        choices=tuple(DIALECTS),
        default="current",
        help="how the logs are written: current (this exporter), legacy (older exporters: "
        "'nan' cells, float integers, blind reserves from 11, CRLF) or legacy-402 (legacy "
        "without current_player); the games are the same (default: current)",
    )
    p.add_argument(
        "--line-endings",
        choices=tuple(LINE_ENDINGS),
        default=None,
        help="line endings of the logs (default: lf for current, crlf for the legacy dialects)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_run)
    return p
