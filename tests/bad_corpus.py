"""The corpus of malformed game logs under ``tests/data/bad/``, and how to (re)build it.

Every entry is a real bundled game (``data/games``, blind-reserve base 12) given a fresh
``game_id`` (so that it never clashes with the good files it is mixed with) and then broken in
one precise way. :data:`CORPUS` says, for each entry, where its file goes under the corpus
root, the exact rejections expected (line, column or head, a piece of the reason) and which
data lines of the untouched game must still come out of the job.

    uv run python tests/bad_corpus.py          # rewrite tests/data/bad/ from the bundled games

The small files are committed; ``tests/test_bad_input.py`` checks that they are what this
script writes. Inputs that cannot (or should not) be committed are made at test time by
:func:`make_runtime_entries`: a multi-megabyte junk file, a directory named ``x.csv``.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
BUNDLED = REPO / "data" / "games"
CORPUS_ROOT = Path(__file__).resolve().parent / "data" / "bad"

# Sources: a 2-player and a 3-player bundled game.
SOURCE_2P = BUNDLED / "2_games" / "2026000000.csv"
SOURCE_3P = BUNDLED / "3_games" / "2026000010.csv"

NUM_CELLS = 403


@dataclass(frozen=True)
class Expected:
    """One rejection: ``line`` None for a file-level one; each of ``reason`` is a substring
    of the rejection's reason."""

    line: int | None
    column: str | None
    reason: str | tuple[str, ...]

    def matches(self, rejection) -> bool:
        parts = (self.reason,) if isinstance(self.reason, str) else self.reason
        return (
            rejection.line == self.line
            and rejection.column == self.column
            and all(part in rejection.reason for part in parts)
        )


@dataclass
class Entry:
    """One malformed input: its path under the corpus root, its bytes, what must happen."""

    name: str
    path: str  # relative to the corpus root, e.g. "2_games/910003.csv"
    data: bytes
    expected: list[Expected]
    source: Path | None = None  # the bundled game it is made from
    kept_lines: list[int] = field(default_factory=list)  # source data lines still in the output


# --- line and cell editing ----------------------------------------------------------------


class Game:
    """A bundled game as lines of cells, with its ``game_id`` replaced."""

    def __init__(self, source: Path, game_id: int):
        self.source = source
        lines = source.read_text(encoding="utf-8").splitlines()
        self.header = lines[0].split(",")
        self.rows = [line.split(",") for line in lines[1:]]
        for row in self.rows:
            row[0] = str(game_id)

    def col(self, name: str) -> int:
        return self.header.index(name)

    def cell(self, line: int, name: str) -> str:
        return self.rows[line - 2][self.col(name)]

    def set(self, line: int, name: str, text: str) -> Game:
        self.rows[line - 2][self.col(name)] = text
        return self

    def lines_where(self, test: Callable[[list[str]], bool]) -> list[int]:
        """File lines (header = 1) of the data rows passing ``test``."""
        return [i + 2 for i, row in enumerate(self.rows) if test(row)]

    def data_lines(self) -> list[int]:
        return list(range(2, len(self.rows) + 2))

    def text_lines(self) -> list[str]:
        return [",".join(self.header)] + [",".join(row) for row in self.rows]

    def bytes(self) -> bytes:
        return ("\n".join(self.text_lines()) + "\n").encode("utf-8")


def _all_but(game: Game, *lines: int) -> list[int]:
    return [line for line in game.data_lines() if line not in lines]


def _action_lines(game: Game, action: str) -> list[int]:
    i = game.col("action_type")
    return game.lines_where(lambda row: row[i] == action)


def _present(text: str) -> bool:
    return text not in ("", "nan", "NaN", "NAN")


# --- the corpus ---------------------------------------------------------------------------


def build_corpus() -> list[Entry]:
    """Every committed entry, deterministic (from the bundled games)."""
    entries: list[Entry] = []

    def add(name, path, data, expected, source=None, kept=()):
        entries.append(Entry(name, path, data, list(expected), source, list(kept)))

    header = ",".join(Game(SOURCE_2P, 0).header)

    add("empty", "2_games/910001.csv", b"", [Expected(None, None, "empty file")])
    add(
        "header_only",
        "2_games/910002.csv",
        (header + "\n").encode(),
        [Expected(None, None, "no data row")],
    )

    g = Game(SOURCE_2P, 910003)
    last = g.data_lines()[-1]
    text = g.text_lines()
    cut = text[-1][: len(text[-1]) // 2].rsplit(",", 1)[0]  # cut mid-row, at a cell boundary
    cut_cells = len(cut.split(","))
    add(
        "truncated_last_line",
        "2_games/910003.csv",
        ("\n".join(text[:-1] + [cut])).encode(),  # no final newline: the crash cut it
        [Expected(last, g.header[cut_cells], f"too few cells: expected 403, found {cut_cells}")],
        SOURCE_2P,
        _all_but(g, last),
    )

    g = Game(SOURCE_2P, 910004)
    del g.rows[5 - 2][g.col("gems_board_red")]  # line 5 lost one cell
    add(
        "wrong_column_count_row",
        "2_games/910004.csv",
        g.bytes(),
        [Expected(5, "gems_removed_gold", "too few cells: expected 403, found 402")],
        SOURCE_2P,
        _all_but(g, 5),
    )

    g = Game(SOURCE_2P, 910005)
    g.header[g.col("gems_board_gold")] = "gems_board_yellow"
    add(
        "wrong_header",
        "2_games/910005.csv",
        g.bytes(),
        [Expected(None, "gems_board_yellow", "expected 'gems_board_gold'")],
    )

    g = Game(SOURCE_2P, 910006)
    g.rows[6 - 2].append("0")
    add(
        "extra_cell",
        "2_games/910006.csv",
        g.bytes(),
        [Expected(6, None, "too many cells: expected 403, found 404")],
        SOURCE_2P,
        _all_but(g, 6),
    )

    g = Game(SOURCE_2P, 910007).set(7, "gems_board_red", "three")
    add(
        "non_numeric",
        "2_games/910007.csv",
        g.bytes(),
        [Expected(7, "gems_board_red", "not a number: 'three'")],
        SOURCE_2P,
        _all_but(g, 7),
    )

    g = Game(SOURCE_2P, 910008).set(8, "player0_gems_blue", "-1")
    add(
        "negative_count",
        "2_games/910008.csv",
        g.bytes(),
        [Expected(8, "player0_gems_blue", "negative value (-1)")],
        SOURCE_2P,
        _all_but(g, 8),
    )

    g = Game(SOURCE_2P, 910009).set(9, "player1_gems_white", "8")
    add(
        "more_than_7_of_a_colour",
        "2_games/910009.csv",
        g.bytes(),
        [Expected(9, "player1_gems_white", "holds 8 tokens of one colour, more than exist")],
        SOURCE_2P,
        _all_but(g, 9),
    )

    # Reserved slots not filled left to right: the only reserved card moved to slot 1.
    g = Game(SOURCE_2P, 910010)
    one = g.lines_where(
        lambda row: (
            _present(row[g.col("player0_reserved0_level")])
            and not _present(row[g.col("player0_reserved1_level")])
        )
    )[0]
    for feature in [c[len("player0_reserved0_") :] for c in g.header if "player0_reserved0_" in c]:
        g.set(one, f"player0_reserved1_{feature}", g.cell(one, f"player0_reserved0_{feature}"))
        g.set(one, f"player0_reserved0_{feature}", "nan")
    add(
        "reserved_slot_gap",
        "2_games/910010.csv",
        g.bytes(),
        [Expected(one, "player0_reserved1_vp", "reserved card slot used while an earlier")],
        SOURCE_2P,
        _all_but(g, one),
    )

    # A 4th reserved card: its 12 cells appended after the last column.
    g = Game(SOURCE_2P, 910011)
    full = g.lines_where(lambda row: _present(row[g.col("player0_reserved2_level")]))
    line = full[0] if full else one
    first = g.col("player0_reserved0_vp")
    g.rows[line - 2] += g.rows[line - 2][first : first + 12]
    add(
        "fourth_reserved_card",
        "2_games/910011.csv",
        g.bytes(),
        [Expected(line, None, "found 415 (12 extra cells: a 4th reserved card?)")],
        SOURCE_2P,
        _all_but(g, line),
    )

    g = Game(SOURCE_2P, 910012).set(10, "action_type", "pass")
    add(
        "unknown_action_type",
        "2_games/910012.csv",
        g.bytes(),
        [Expected(10, "action_type", "unknown action type 'pass'")],
        SOURCE_2P,
        _all_but(g, 10),
    )

    # A take-2 of a colour whose pile holds 3: not legal in that state.
    g = Game(SOURCE_2P, 910013)
    line = _action_lines(g, "take 2 tokens")[0]
    colour = next(
        c
        for c in ("white", "blue", "green", "red", "black")
        if g.cell(line, f"gem_take2_{c}") == "2"
    )
    g.set(line, f"gems_board_{colour}", "3")
    add(
        "illegal_decision",
        "2_games/910013.csv",
        g.bytes(),
        [Expected(line, "action_type", ("decision not legal in its state", "gem_take2 class"))],
        SOURCE_2P,
        _all_but(g, line),
    )

    # A take-3 row relabelled as a build: the labels contradict the action type.
    g = Game(SOURCE_2P, 910014)
    line = _action_lines(g, "take 3 tokens")[0]
    g.set(line, "action_type", "build")
    add(
        "labels_inconsistent_with_action",
        "2_games/910014.csv",
        g.bytes(),
        [Expected(line, "card_selection", "build row without card_selection")],
        SOURCE_2P,
        _all_but(g, line),
    )

    # Non-UTF-8 bytes in one data row (a Latin-1 action text): that row only.
    g = Game(SOURCE_2P, 910015)
    lines = g.text_lines()
    lines[11 - 1] = lines[11 - 1].replace(g.cell(11, "action_type"), "r\xe9serve")
    add(
        "non_utf8_row",
        "2_games/910015.csv",
        ("\n".join(lines) + "\n").encode("latin-1"),
        [Expected(11, "action_type", "not UTF-8")],
        SOURCE_2P,
        _all_but(g, 11),
    )
    # ... and in the header: nothing can be read.
    g = Game(SOURCE_2P, 910016)
    lines = g.text_lines()
    lines[0] = lines[0].replace("game_id", "game_\xefd", 1)
    add(
        "non_utf8_header",
        "2_games/910016.csv",
        ("\n".join(lines) + "\n").encode("latin-1"),
        [Expected(None, None, "not UTF-8")],
    )

    # The same game twice: by file name across folders, and by content within a folder.
    # The later file in path order is rejected whole; the earlier one is kept.
    g = Game(SOURCE_3P, 910017)
    add("game_id_first", "3_games/910017.csv", g.bytes(), [], SOURCE_3P, g.data_lines())
    add(
        "same_game_id_other_folder",
        "4_games/910017.csv",
        g.bytes(),
        [Expected(None, "game_id", ("same game_id 910017 as ", "3_games/910017.csv"))],
    )
    g = Game(SOURCE_3P, 910018)
    add("game_id_content_first", "3_games/910018.csv", g.bytes(), [], SOURCE_3P, g.data_lines())
    add(
        "same_game_id_other_file",
        "3_games/910019.csv",
        g.bytes(),
        [Expected(None, "game_id", ("same game_id 910018 as ", "3_games/910018.csv"))],
    )
    return entries


# --- inputs made at test time -------------------------------------------------------------

JUNK_BYTES = 3 * 1024 * 1024


def make_runtime_entries(root: Path, seed: int = 0) -> list[Entry]:
    """Write, under ``root``, the inputs that are not committed; return their entries."""
    rng = np.random.default_rng(seed)
    entries = []
    junk = root / "2_games" / "910030.csv"
    junk.parent.mkdir(parents=True, exist_ok=True)
    junk.write_bytes(rng.integers(0, 256, JUNK_BYTES, dtype=np.uint8).tobytes())
    entries.append(
        Entry("junk_binary_3MB", "2_games/910030.csv", b"", [Expected(None, None, "binary")])
    )
    # Printable junk (no NUL, valid ASCII) of a few MB: its "header" is not a game log's.
    text = rng.integers(32, 127, JUNK_BYTES, dtype=np.uint8)
    text[rng.integers(0, JUNK_BYTES, JUNK_BYTES // 80)] = ord("\n")
    (root / "2_games" / "910031.csv").write_bytes(b"junk," + text.tobytes())
    entries.append(
        Entry(
            "junk_text_3MB",
            "2_games/910031.csv",
            b"",
            [Expected(None, "junk", "header column 1 is 'junk', expected 'game_id'")],
        )
    )
    (root / "2_games" / "x.csv").mkdir()
    entries.append(
        Entry(
            "directory_named_csv",
            "2_games/x.csv",
            b"",
            [Expected(None, None, "not a regular file (a directory)")],
        )
    )
    return entries


# --- writing --------------------------------------------------------------------------------


def write_corpus(root: Path = CORPUS_ROOT) -> list[Entry]:
    """(Re)write the committed corpus under ``root`` (its game folders are replaced)."""
    entries = build_corpus()
    for folder in ("2_games", "3_games", "4_games"):
        shutil.rmtree(root / folder, ignore_errors=True)
    for entry in entries:
        path = root / entry.path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(entry.data)
    return entries


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else CORPUS_ROOT
    written = write_corpus(target)
    size = sum(len(e.data) for e in written)
    print(f"{len(written)} files, {size / 1e6:.1f} MB under {os.path.relpath(target)}")
