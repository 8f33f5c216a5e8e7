"""Self-play data roots and pipeline configs for the tests (shared by several test files)."""

from __future__ import annotations

from pathlib import Path

# Games written by an older exporter (a copy of the project's shared fixtures, kept in the
# repository so that a fresh clone tests itself): `nan` text, float integers, base 11.
LEGACY_LOGS = Path(__file__).resolve().parent / "data" / "legacy-logs"


def simulated_root(tmp_path_factory, name: str, games: int, seed: int) -> Path:
    """A data root of ``games`` greedy self-play games, a third per player count (2, 3, 4)."""
    from splendor.simulate import simulate

    root = tmp_path_factory.mktemp(name) / "games"
    simulate(games, players=(2, 3, 4), agent="greedy", seed=seed, out=root, progress=False)
    return root


def pipeline_config(root, out, **prep) -> dict:
    """A ``run_preprocessing`` config: data root, output folder, preprocessing keys (one
    worker unless given)."""
    prep.setdefault("num_workers", 1)
    return {"data": {"data_root": str(root), "processed_dir": str(out)}, "preprocessing": prep}


def reference_run(games: Path, tmp_path_factory) -> Path:
    """The local run of ``games`` (one worker, in this process): what every run must give."""
    from imitation_learning.data_preprocessing import run_preprocessing

    out = tmp_path_factory.mktemp("reference") / "processed"
    run_preprocessing(pipeline_config(games, out), progress=False)
    return out
