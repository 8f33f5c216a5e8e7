"""Write a game's rows as a log CSV (``<root>/<n>_games/<game_id>.csv``), atomically.

The whole game is formatted at once: every cell is an integer or missing, so the values
are turned into indices of a small table of integer strings, the few special columns
(``game_id``, ``action_type``) are filled in, and the lines are joined in one go.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from splendor.columns import ACTION_COL, ACTION_TYPES, COLUMNS

HEADER = ",".join(COLUMNS)
_LOOKUP_LIMIT = 1 << 16  # largest span of values formatted through the lookup table


def format_rows(rows: np.ndarray, game_id: int) -> str:
    """The CSV text (header included) of a game's rows: integers as integers, missing as
    empty cells, ``action_type`` as its text, ``game_id`` set to ``game_id``."""
    rows = np.asarray(rows, dtype=np.float64)
    if rows.ndim != 2 or rows.shape[1] != len(COLUMNS):
        raise ValueError(f"rows must have shape (n, {len(COLUMNS)}), got {rows.shape}")
    missing = np.isnan(rows)
    filled = np.where(missing, 0.0, rows)
    ints = filled.astype(np.int64)
    if (ints != filled).any():
        raise ValueError("log values must be integers or NaN")
    actions = ints[:, ACTION_COL]
    bad = ~missing[:, ACTION_COL] & ((actions < 0) | (actions >= len(ACTION_TYPES)))
    if bad.any():
        raise ValueError(f"unknown action code {actions[bad][0]}")
    ints[:, 0] = 0  # game_id is written from the argument
    lo, hi = int(ints.min(initial=0)), int(ints.max(initial=0))
    if hi - lo < _LOOKUP_LIMIT:
        table = np.array([str(v) for v in range(lo, hi + 1)] + [""], dtype=object)
        missing_code = hi - lo + 1
        cells = table[np.where(missing, missing_code, ints - lo)]
    else:  # unusual magnitudes: format each cell
        cells = ints.astype(str).astype(object)
        cells[missing] = ""
    cells[:, 0] = str(int(game_id))
    names = np.array(list(ACTION_TYPES) + [""], dtype=object)
    cells[:, ACTION_COL] = names[np.where(missing[:, ACTION_COL], len(ACTION_TYPES), actions)]
    lines = [HEADER]
    lines += [",".join(r) for r in cells.tolist()]
    lines.append("")
    return "\n".join(lines)


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file of the same folder renamed over
    it, so readers never see a half-written file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_game_log(
    rows: np.ndarray, root: str | os.PathLike, num_players: int, game_id: int
) -> Path:
    """Write ``<root>/<num_players>_games/<game_id>.csv`` atomically; return its path."""
    folder = Path(root) / f"{num_players}_games"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{game_id}.csv"
    atomic_write_text(path, format_rows(rows, game_id))
    return path
