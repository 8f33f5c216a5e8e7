"""Self-play: play games with an agent, write their logs and a manifest.

Reproducibility: game ``i`` of a run (``i`` counted over the whole run) gets the id
``seed * 1_000_000 + i`` and its own seed derived from ``(seed, i)``; each seat's agent is
seeded from ``(game seed, seat)``. Re-running the same command writes identical files.

Games per player count: ``num_games`` is split evenly over the requested counts, the first
counts (in the order given) taking one more game each when it does not divide evenly;
the games of the first count are played first (indices 0..), then the next, and so on.
"""

from __future__ import annotations

import argparse
import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from splendor.agents import AGENTS, make_agent
from splendor.log_codec import encode_values
from splendor.log_writer import atomic_write_text, write_game_log
from splendor.rules import apply_move, legal_moves, pass_turn, winners
from splendor.state import DEFAULT_MAX_ROUNDS, new_game

GAME_ID_STRIDE = 1_000_000
MANIFEST_FIELDS = (
    "game_id",
    "num_players",
    "agent",
    "outcome",
    "winners",
    "points",
    "rounds",
    "rows",
)


@dataclass
class GameRecord:
    game_id: int
    num_players: int
    agent: str
    seed: int
    rows: np.ndarray  # float64 (n, 403)
    outcome: str  # finished / blocked / truncated
    winners: list[int]
    points: list[int]
    rounds: int

    def manifest_row(self) -> dict:
        return {
            "game_id": self.game_id,
            "num_players": self.num_players,
            "agent": self.agent,
            "outcome": self.outcome,
            "winners": ";".join(map(str, self.winners)),
            "points": ";".join(map(str, self.points)),
            "rounds": self.rounds,
            "rows": len(self.rows),
        }


def derive_seed(*parts: int) -> int:
    """A 63-bit seed from integers (stable across runs and platforms)."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(2, np.uint64)[0] >> 1)


def play_game(
    game_id: int,
    num_players: int,
    agent_name: str,
    seed: int,
    max_rounds: int = DEFAULT_MAX_ROUNDS,
) -> GameRecord:
    """Play one game, every seat driven by ``agent_name``; return its rows and outcome."""
    state = new_game(num_players, seed, max_rounds=max_rounds, game_id=game_id)
    agents = [make_agent(agent_name, derive_seed(seed, seat)) for seat in range(num_players)]
    rows = []
    while state.outcome is None:
        moves = legal_moves(state)
        if not moves:
            state = pass_turn(state)
            continue
        move = agents[state.current].choose(state, moves)
        rows.append(encode_values(state, move, game_id))
        state = apply_move(state, move)
    values = np.array(rows, dtype=np.float64).reshape(len(rows), -1)
    return GameRecord(
        game_id=game_id,
        num_players=num_players,
        agent=agent_name,
        seed=seed,
        rows=values,
        outcome=state.outcome,
        winners=winners(state),
        points=[p.points for p in state.players],
        rounds=state.round,
    )


def split_games(num_games: int, players: tuple[int, ...]) -> list[int]:
    """Games per player count: an even split, the remainder to the first counts."""
    base, extra = divmod(num_games, len(players))
    return [base + (1 if i < extra else 0) for i in range(len(players))]


def _write_manifest(out: Path, entries: list[dict]) -> Path:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=MANIFEST_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(entries)
    path = out / "manifest.csv"
    atomic_write_text(path, buf.getvalue())
    return path


def simulate(
    num_games: int,
    players: tuple[int, ...] = (2, 3, 4),
    agent: str = "greedy",
    seed: int = 0,
    out: Path | str = Path("data/games"),
    progress: bool = True,
    max_rounds: int = DEFAULT_MAX_ROUNDS,
) -> list[dict]:
    """Play ``num_games`` games split over ``players``, write each log under ``out`` and
    ``out/manifest.csv``; return the manifest entries."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    plan = [
        n
        for n, count in zip(players, split_games(num_games, tuple(players)), strict=True)
        for _ in range(count)
    ]
    entries = []
    for index, n in enumerate(tqdm(plan, desc="self-play", unit="game", disable=not progress)):
        game_id = seed * GAME_ID_STRIDE + index
        record = play_game(game_id, n, agent, derive_seed(seed, index), max_rounds)
        write_game_log(record.rows, out, n, game_id)
        entries.append(record.manifest_row())
    _write_manifest(out, entries)
    return entries


def _run(args: argparse.Namespace) -> int:
    entries = simulate(
        args.games,
        players=tuple(args.players),
        agent=args.agent,
        seed=args.seed,
        out=Path(args.out),
        progress=not args.no_progress,
        max_rounds=args.max_rounds,
    )
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
        default=[2, 3, 4],
        choices=(2, 3, 4),
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
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_run)
    return p
