"""Write a game's rows as a log CSV (``<root>/<n>_games/<game_id>.csv``), atomically.

The whole game is formatted at once: every cell is an integer or missing, so the values
are turned into indices of a small table of integer strings, the few special columns
(``game_id``, ``action_type``) are filled in, and the lines are joined in one go.

Two dialects of the format (``docs/input-format.md``), :data:`DIALECTS`:

- ``current``: what this project's exporter writes: 403 columns, missing cells empty,
  integers as integers, blind reserves coded 12, 13, 14, ``\\n`` line endings.
- ``legacy``: what the older exporters wrote (section "Files from older exporters"): missing
  cells as the text ``nan``; integers written as floats (``3.0``) in every column that holds
  a missing cell somewhere in the file, as pandas writes a float column (the other columns,
  the state counts for instance, keep plain integers, as in the legacy fixtures); blind
  reserves coded from 11 (11, 12, 13); ``\\r\\n`` line endings by default, as in the fixtures
  (files that passed through Windows), ``\\n`` on request.
- ``legacy-402``: ``legacy`` without the ``current_player`` column (402 columns).

The legacy code 11 is also the running index of the 12th face-up card: a reservation of that
card is written 11, as the older exporter did, and reads back as a blind level-1 reserve
(:func:`ambiguous_reserve_rows`). The format cannot tell the two apart; nothing else is lost.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from splendor.columns import (
    ACTION_COL,
    ACTION_TYPES,
    CANONICAL_BLIND_BASE,
    CARD_RESERVATION_COL,
    COL,
    COLUMNS,
    LEGACY_COLUMNS,
)

HEADER = ",".join(COLUMNS)
_LOOKUP_LIMIT = 1 << 16  # largest span of values formatted through the lookup table
LINE_ENDINGS = {"lf": "\n", "crlf": "\r\n"}


@dataclass(frozen=True)
class Dialect:
    """How a dialect writes a log: its columns, missing cells, integers, blind codes and
    default line ending (a key of :data:`LINE_ENDINGS`)."""

    name: str
    columns: tuple[str, ...]
    missing: str  # the text of a missing cell
    float_columns: bool  # integers as floats (``3.0``) in the columns holding a missing cell
    blind_reserve_base: int  # the reader's ``blind_reserve_base`` for these files
    line_endings: str


DIALECTS = {
    d.name: d
    for d in (
        Dialect("current", tuple(COLUMNS), "", False, CANONICAL_BLIND_BASE, "lf"),
        Dialect("legacy", tuple(COLUMNS), "nan", True, 11, "crlf"),
        Dialect("legacy-402", tuple(LEGACY_COLUMNS), "nan", True, 11, "crlf"),
    )
}


def get_dialect(name: str) -> Dialect:
    """The :class:`Dialect` called ``name``; ``ValueError`` naming the choices otherwise."""
    try:
        return DIALECTS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown dialect {name!r}: choose one of {', '.join(DIALECTS)}") from None


def ambiguous_reserve_rows(rows: np.ndarray, dialect: str = "legacy") -> np.ndarray:
    """Indices of the rows whose reservation has no code of its own in ``dialect``: a
    face-up card whose running index is at least the dialect's blind base (only the 12th
    face-up card, index 11, in the legacy dialects). Such a row reads back as a blind
    reserve; a game without them reads back exactly."""
    base = get_dialect(dialect).blind_reserve_base
    reservation = np.asarray(rows, dtype=np.float64)[:, CARD_RESERVATION_COL]
    return np.flatnonzero((reservation >= base) & (reservation < CANONICAL_BLIND_BASE))


def _integer_table(lo: int, hi: int, suffix: str, missing: str) -> np.ndarray:
    """The texts of ``lo..hi`` (each followed by ``suffix``), then the missing text."""
    return np.array([f"{v}{suffix}" for v in range(lo, hi + 1)] + [missing], dtype=object)


def format_rows(
    rows: np.ndarray, game_id: int, dialect: str = "current", line_endings: str | None = None
) -> str:
    """The CSV text (header included) of a game's rows in ``dialect`` (:data:`DIALECTS`),
    ``game_id`` set to ``game_id``, ``action_type`` as its text. ``line_endings``: ``"lf"``
    or ``"crlf"`` (default: the dialect's)."""
    spec = get_dialect(dialect)
    newline = LINE_ENDINGS.get(line_endings or spec.line_endings)
    if newline is None:
        raise ValueError(
            f"line_endings must be one of {', '.join(LINE_ENDINGS)}, not {line_endings!r}"
        )
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
    blind = ints[:, CARD_RESERVATION_COL] >= CANONICAL_BLIND_BASE
    ints[blind, CARD_RESERVATION_COL] -= CANONICAL_BLIND_BASE - spec.blind_reserve_base
    ints[:, 0] = 0  # game_id is written from the argument
    lo, hi = int(ints.min(initial=0)), int(ints.max(initial=0))
    # As pandas writes a frame: a column holding a missing value is a float column.
    as_float = missing.any(axis=0) if spec.float_columns else np.zeros(len(COLUMNS), bool)
    if hi - lo < _LOOKUP_LIMIT:
        index = np.where(missing, hi - lo + 1, ints - lo)
        cells = _integer_table(lo, hi, "", spec.missing)[index]
        if as_float.any():
            floats = _integer_table(lo, hi, ".0", spec.missing)
            cells[:, as_float] = floats[index[:, as_float]]
    else:  # unusual magnitudes: format each cell
        cells = ints.astype(str).astype(object)
        cells[:, as_float] = np.char.add(cells[:, as_float].astype(str), ".0").astype(object)
        cells[missing] = spec.missing
    cells[:, 0] = str(int(game_id))
    names = np.array(list(ACTION_TYPES) + [spec.missing], dtype=object)
    cells[:, ACTION_COL] = names[np.where(missing[:, ACTION_COL], len(ACTION_TYPES), actions)]
    if len(spec.columns) != len(COLUMNS):
        cells = cells[:, [COL[name] for name in spec.columns]]
    lines = [",".join(spec.columns)]
    lines += [",".join(r) for r in cells.tolist()]
    lines.append("")
    return newline.join(lines)


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
    rows: np.ndarray,
    root: str | os.PathLike,
    num_players: int,
    game_id: int,
    dialect: str = "current",
    line_endings: str | None = None,
) -> Path:
    """Write ``<root>/<num_players>_games/<game_id>.csv`` atomically in ``dialect``; return
    its path."""
    folder = Path(root) / f"{num_players}_games"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{game_id}.csv"
    atomic_write_text(path, format_rows(rows, game_id, dialect, line_endings))
    return path
