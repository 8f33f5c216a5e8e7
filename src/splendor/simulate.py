"""Self-play: play games with an agent, write their logs and a manifest.

Reproducibility: game ``i`` of a run (``i`` counted over the whole run) gets the id
``seed * 1_000_000 + i`` and its own seed derived from ``(seed, i)``; each seat's agent is
seeded from ``(game seed, seat)``. Re-running the same command writes identical files.

Dialects: ``dialect`` picks how the logs are written (:data:`splendor.log_writer.DIALECTS`:
``current``, ``legacy``, ``legacy-402``) and ``line_endings`` overrides the dialect's line
endings; neither changes the games played, so the same seed gives the same games (and the
same manifest) in every dialect.

Games per player count: ``num_games`` is split evenly over the requested counts, the first
counts (in the order given) taking one more game each when it does not divide evenly;
the games of the first count are played first (indices 0..), then the next, and so on.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from splendor.agents import make_agent
from splendor.limits import PLAYER_COUNTS
from splendor.log_codec import encode_values
from splendor.log_writer import (
    LINE_ENDINGS,
    atomic_write_text,
    get_dialect,
    write_game_log,
)
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
    state = np.random.SeedSequence([int(p) for p in parts]).generate_state(2, np.uint64)
    return int(state[0]) >> 1


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


def _play_chunk(
    chunk: list[tuple[int, int]],
    agent: str,
    seed: int,
    out: str,
    max_rounds: int,
    dialect: str = "current",
    line_endings: str | None = None,
) -> list[dict]:
    """Play and write the games ``(index, num_players)`` of ``chunk``; their manifest rows."""
    entries = []
    for index, n in chunk:
        game_id = seed * GAME_ID_STRIDE + index
        record = play_game(game_id, n, agent, derive_seed(seed, index), max_rounds)
        write_game_log(record.rows, out, n, game_id, dialect, line_endings)
        entries.append(record.manifest_row())
    return entries


#: Games per task when self-play runs on a pool of workers (a task of greedy games lasts
#: a fraction of a second, `docs/benchmarks.md`).
GAMES_PER_TASK = 25


def simulate(
    num_games: int,
    players: tuple[int, ...] = PLAYER_COUNTS,
    agent: str = "greedy",
    seed: int = 0,
    out: Path | str = Path("data/games"),
    progress: bool = True,
    max_rounds: int = DEFAULT_MAX_ROUNDS,
    dialect: str = "current",
    line_endings: str | None = None,
    client=None,
) -> list[dict]:
    """Play ``num_games`` games split over ``players``, write each log under ``out`` and
    ``out/manifest.csv``; return the manifest entries.

    ``dialect``: ``"current"``, ``"legacy"`` or ``"legacy-402"`` (see
    :mod:`splendor.log_writer`); ``line_endings``: ``"lf"`` or ``"crlf"``, default the
    dialect's (``lf`` for current, ``crlf`` for the legacy dialects).

    ``client``: a Dask ``distributed.Client`` (the command line opens one on the job's pool
    helper) to play the games on its workers; ``None`` plays them in this process. Every game
    depends only on ``(seed, index)``, so the files are the same whatever runs them.
    """
    get_dialect(dialect)  # unknown names fail before any game is played
    if line_endings is not None and line_endings not in LINE_ENDINGS:
        raise ValueError(
            f"line_endings must be one of {', '.join(LINE_ENDINGS)}, not {line_endings!r}"
        )
    written_as = (dialect, line_endings)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    plan = [
        n
        for n, count in zip(players, split_games(num_games, tuple(players)), strict=True)
        for _ in range(count)
    ]
    games = list(enumerate(plan))
    with tqdm(total=len(games), desc="self-play", unit="game", disable=not progress) as bar:
        if client is not None and len(games) > 1:
            entries = _simulate_on_pool(games, agent, seed, out, max_rounds, client, bar, written_as)
        else:
            entries = []
            for game in games:
                entries += _play_chunk([game], agent, seed, str(out), max_rounds, *written_as)
                bar.update(1)
    _write_manifest(out, entries)
    return entries


def _simulate_on_pool(
    games: list[tuple[int, int]],
    agent: str,
    seed: int,
    out: Path,
    max_rounds: int,
    client,
    bar,
    written_as: tuple[str, str | None],
) -> list[dict]:
    """Self-play on the workers of ``client``; manifest rows back in game order."""
    import dask.bag as db
    from distributed import as_completed

    num_workers = max(1, len(client.scheduler_info().get("workers", {})))
    per_task = max(1, min(GAMES_PER_TASK, len(games) // (4 * num_workers) or 1))
    bag = db.from_sequence(games, partition_size=per_task)
    tasks = bag.map_partitions(
        _play_chunk, agent, seed, str(out.resolve()), max_rounds, *written_as
    )
    futures = client.compute(tasks.to_delayed())
    order = {future.key: i for i, future in enumerate(futures)}
    chunks: list[list[dict]] = [[] for _ in futures]
    for future, entries in as_completed(futures, with_results=True):
        chunks[order[future.key]] = entries
        bar.update(len(entries))
    return [entry for chunk in chunks for entry in chunk]
