"""Benchmark datasets: self-play logs made by ``splendor-il simulate`` at fixed seeds, cached.

A dataset is generated once into ``bench/cache/<key>/`` (git-ignored), where the key holds
everything that determines its content: agent, player counts, seed, number of games and the
dialect the logs are written in (``simulate --dialect``; the key of the default ``current``
dialect has no suffix). The same key but the dialect gives the same games.
Generation goes to a temporary folder renamed into place when ``simulate`` succeeded, so an
interrupted run never leaves a half-made dataset behind the key.
"""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from imitation_learning.parallel_processor import discover_csv_files
from splendor.log_writer import get_dialect

REPO_ROOT = Path(__file__).resolve().parents[1]
CACHE_DIR = REPO_ROOT / "bench" / "cache"
DEFAULT_SEED = 2027
DEFAULT_PLAYERS = (2, 3, 4)
DEFAULT_AGENT = "greedy"
DEFAULT_DIALECT = "current"


@dataclass(frozen=True)
class Dataset:
    """A folder of game logs (``<root>/<n>_games/*.csv`` and ``manifest.csv``)."""

    key: str
    root: Path
    games: int
    rows: int  # data rows over all the logs (from the manifest)
    paths: tuple[str, ...]  # the logs, sorted (``discover_csv_files``)
    dialect: str = DEFAULT_DIALECT

    @property
    def blind_reserve_base(self) -> int:
        """The reader's ``blind_reserve_base`` for these logs (11 in the legacy dialects)."""
        return get_dialect(self.dialect).blind_reserve_base

    def config(self) -> dict:
        """The ``reader`` section that reads these logs (merge it into a job config)."""
        return {"reader": {"blind_reserve_base": self.blind_reserve_base}}


def dataset_key(
    games: int,
    players=DEFAULT_PLAYERS,
    agent=DEFAULT_AGENT,
    seed=DEFAULT_SEED,
    dialect: str = DEFAULT_DIALECT,
) -> str:
    """The cache key, e.g. ``greedy-p234-s2027-g1000`` (``...-g1000-legacy`` in the legacy
    dialect)."""
    get_dialect(dialect)
    suffix = "" if dialect == DEFAULT_DIALECT else f"-{dialect}"
    return f"{agent}-p{''.join(str(p) for p in players)}-s{seed}-g{games}{suffix}"


def simulate_command() -> list[str]:
    """``splendor-il`` of this interpreter's environment (the one ``uv run`` set up)."""
    script = Path(sys.executable).parent / "splendor-il"
    if script.exists():
        return [str(script)]
    found = shutil.which("splendor-il")
    if found:
        return [found]
    return [sys.executable, "-m", "splendor_il.cli"]


def _manifest_rows(root: Path) -> tuple[int, int]:
    """(games, data rows) listed in ``<root>/manifest.csv``."""
    with open(root / "manifest.csv", newline="") as f:
        entries = list(csv.DictReader(f))
    return len(entries), sum(int(e["rows"]) for e in entries)


def get_dataset(
    games: int,
    players: tuple[int, ...] = DEFAULT_PLAYERS,
    agent: str = DEFAULT_AGENT,
    seed: int = DEFAULT_SEED,
    cache_dir: str | os.PathLike = CACHE_DIR,
    log=print,
    dialect: str = DEFAULT_DIALECT,
) -> Dataset:
    """The dataset of ``games`` self-play games written in ``dialect``, generated with
    ``splendor-il simulate`` the first time and read from the cache afterwards."""
    key = dataset_key(games, players, agent, seed, dialect)
    cache_dir = Path(cache_dir)
    root = cache_dir / key
    if not (root / "manifest.csv").is_file():
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=cache_dir))
        command = [
            *simulate_command(),
            "simulate",
            "--games",
            str(games),
            "--players",
            *(str(p) for p in players),
            "--agent",
            agent,
            "--seed",
            str(seed),
            "--out",
            str(tmp),
            "--dialect",
            dialect,
            "--no-progress",
            *(["--dialect", dialect] if dialect is not None else []),
        ]
        log(f"generating {key}: {' '.join(command[1:])}")
        try:
            subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
            if root.exists():  # a leftover without its manifest
                shutil.rmtree(root)
            os.replace(tmp, root)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    n_games, rows = _manifest_rows(root)
    paths = tuple(discover_csv_files(root))
    if n_games != games or len(paths) != games:
        raise RuntimeError(
            f"dataset {root} is inconsistent: {games} games expected, manifest lists "
            f"{n_games}, {len(paths)} log files found (delete the folder to regenerate it)"
        )
    return Dataset(key=key, root=root, games=games, rows=rows, paths=paths, dialect=dialect)
