"""The older exporters' dialect: written by the writer and ``simulate --dialect``, it looks
like the legacy fixtures, and the same games in either dialect give the same outputs, from
``process_single_file`` to the saved dataset (with the matching ``blind_reserve_base``).

One limit of the older format is tested as such: its blind-reserve code 11 is also the
running index of the 12th face-up card, so a game reserving that card does not read back the
same (the row reads as a blind level-1 reserve). The equality tests use the games without
such a reservation and check that enough of them remain."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from game_data import LEGACY_LOGS, pipeline_config
from splendor import columns as C
from splendor.log_reader import read_game_log
from splendor.log_writer import DIALECTS, ambiguous_reserve_rows, format_rows
from splendor.simulate import simulate
from splendor_il.cli import main as cli_main

LEGACY_FILES = sorted(LEGACY_LOGS.glob("*_games/*.csv"))
BASE = {"current": 12, "legacy": 11, "legacy-402": 11}


def _logs(root: Path) -> list[Path]:
    return sorted(root.glob("*_games/*.csv"))


def _bits(values: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(values).view(np.uint64)


@pytest.fixture(scope="module")
def dialect_roots(tmp_path_factory) -> dict[str, Path]:
    """The same 18 random-agent games written in each dialect (seed 41: 9 without an
    ambiguous reservation, of every player count, with 26 blind reserves among them)."""
    base = tmp_path_factory.mktemp("dialect-roots")
    roots = {}
    for dialect in DIALECTS:
        roots[dialect] = base / dialect
        simulate(18, agent="random", seed=41, out=roots[dialect], progress=False, dialect=dialect)
    return roots


@pytest.fixture(scope="module")
def unambiguous(dialect_roots, tmp_path_factory) -> dict[str, Path]:
    """The roots of ``dialect_roots`` without the games that reserve the 12th face-up card."""
    keep = [
        p.relative_to(dialect_roots["current"])
        for p in _logs(dialect_roots["current"])
        if not len(ambiguous_reserve_rows(read_game_log(p).values))
    ]
    assert len(keep) >= 6, "too few games left to compare"
    blind = [
        read_game_log(dialect_roots["current"] / p).values[:, C.CARD_RESERVATION_COL] for p in keep
    ]
    assert (np.concatenate(blind) >= 12).sum() >= 10, "too few blind reserves left to compare"
    base = tmp_path_factory.mktemp("unambiguous")
    roots = {}
    for dialect, root in dialect_roots.items():
        roots[dialect] = base / dialect
        for relative in keep:
            (roots[dialect] / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(root / relative, roots[dialect] / relative)
    return roots


# --- what the legacy dialect looks like ----------------------------------------------------


@pytest.mark.parametrize("path", LEGACY_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_legacy_writer_reproduces_the_fixtures_but_for_float_integers(path: Path) -> None:
    """A fixture read and written again in the legacy dialect: the same header, line
    endings, ``nan`` cells, integers and blind codes; the one difference is that the
    integers of a column holding a missing cell get ``.0`` (the fixtures have none)."""
    log = read_game_log(path, blind_reserve_base=11)
    assert not log.rejections
    written = format_rows(log.values, int(path.stem), "legacy")
    original = path.read_bytes().decode()
    assert written.count("\r\n") == original.count("\r\n") == len(log) + 1
    assert "\n" not in written.replace("\r\n", "")
    lines, expected_lines = written.split("\r\n"), original.split("\r\n")
    assert lines[0] == expected_lines[0] == ",".join(C.COLUMNS)
    as_float = np.isnan(log.values).any(axis=0)
    as_float[C.ACTION_COL] = False
    floats = 0
    for line, expected_line in zip(lines[1:], expected_lines[1:], strict=True):
        for j, (cell, expected) in enumerate(
            zip(line.split(","), expected_line.split(","), strict=True)
        ):
            if as_float[j] and expected != "nan":
                assert cell == expected + ".0", (j, cell, expected)
                floats += 1
            else:
                assert cell == expected, (j, cell, expected)
    assert floats > 0


def test_legacy_dialects_conventions() -> None:
    rows = read_game_log(LEGACY_FILES[0], blind_reserve_base=11).values[:3].copy()
    rows[0, C.CARD_RESERVATION_COL] = 13  # a blind level-2 reserve (code 13 from base 12)
    rows[1, C.CARD_RESERVATION_COL] = 5  # a face-up card
    legacy = format_rows(rows, 7, "legacy", "lf").split("\n")
    cells = [line.split(",") for line in legacy[1:4]]
    assert cells[0][C.CARD_RESERVATION_COL] == "12.0" and cells[1][C.CARD_RESERVATION_COL] == "5.0"
    assert cells[2][C.CARD_RESERVATION_COL] == "nan"
    assert cells[0][0] == "7" and cells[0][C.COL["num_players"]] == "2"  # never missing: ints
    narrow = format_rows(rows, 7, "legacy-402").split("\r\n")
    assert narrow[0] == ",".join(C.LEGACY_COLUMNS)
    for wide_line, narrow_line in zip(legacy[1:4], narrow[1:4], strict=True):
        wide_cells = wide_line.split(",")
        del wide_cells[C.COL["current_player"]]
        assert narrow_line.split(",") == wide_cells
    current = format_rows(rows, 7).split("\n")
    assert current[1].split(",")[C.CARD_RESERVATION_COL] == "13"
    assert "nan" not in "".join(current) and ".0" not in "".join(current)
    assert format_rows(rows, 7, "current", "crlf") == "\r\n".join(current)


def test_unknown_dialect_or_line_endings_is_a_clear_error(tmp_path) -> None:
    rows = np.zeros((1, len(C.COLUMNS)))
    with pytest.raises(ValueError, match="unknown dialect 'legacy-401'"):
        format_rows(rows, 1, "legacy-401")
    with pytest.raises(ValueError, match="line_endings"):
        format_rows(rows, 1, "legacy", "cr")
    with pytest.raises(ValueError, match="unknown dialect"):
        simulate(1, out=tmp_path, progress=False, dialect="old")
    assert not list(tmp_path.iterdir())  # nothing played nor written


def test_the_ambiguous_legacy_code_reads_as_a_blind_reserve() -> None:
    """The older format cannot tell a reservation of the 12th face-up card (running index
    11) from a blind level-1 reserve: both are written 11 and read back as the blind one."""
    rows = read_game_log(LEGACY_FILES[0], blind_reserve_base=11).values[:2].copy()
    rows[:, C.CARD_RESERVATION_COL] = [11, 12]  # face-up index 11, blind level 1
    assert list(ambiguous_reserve_rows(rows)) == [0]
    assert not len(ambiguous_reserve_rows(rows, "current"))
    text = format_rows(rows, 1, "legacy")
    cells = [line.split(",")[C.CARD_RESERVATION_COL] for line in text.split("\r\n")[1:3]]
    assert cells == ["11", "11"]  # (no missing cell in the column: integers)
    back = read_game_log(text.encode(), blind_reserve_base=11).values
    assert list(back[:, C.CARD_RESERVATION_COL]) == [12, 12]


# --- the same games in every dialect ----------------------------------------------------


def test_same_seed_same_games_in_every_dialect(dialect_roots) -> None:
    manifests = {d: (root / "manifest.csv").read_text() for d, root in dialect_roots.items()}
    assert manifests["legacy"] == manifests["current"] == manifests["legacy-402"]
    ambiguous_games = 0
    for path in _logs(dialect_roots["current"]):
        current = read_game_log(path)
        assert not current.rejections
        ambiguous = ambiguous_reserve_rows(current.values)
        ambiguous_games += bool(len(ambiguous))
        for dialect in ("legacy", "legacy-402"):
            other = dialect_roots[dialect] / path.relative_to(dialect_roots["current"])
            text = other.read_bytes()
            assert text.count(b"\r\n") == text.count(b"\n") == len(current) + 1
            assert b",nan," in text and b".0," in text
            log = read_game_log(other, blind_reserve_base=11)
            assert log.num_columns == len(C.COLUMNS) - (dialect == "legacy-402")
            assert log.rows_read == current.rows_read and not log.rejections
            expected = current.values.copy()
            expected[ambiguous, C.CARD_RESERVATION_COL] = 12  # read as a blind reserve
            assert np.array_equal(_bits(log.values), _bits(expected))
    assert 0 < ambiguous_games < len(_logs(dialect_roots["current"]))


def _assert_same_file_outputs(a, b) -> None:
    df_a, features_a, labels_a, masks_a = a
    df_b, features_b, labels_b, masks_b = b
    assert df_a.attrs["rows_read"] == df_b.attrs["rows_read"]
    assert df_a.attrs["rejections"] == df_b.attrs["rejections"] == []
    pd.testing.assert_frame_equal(df_a, df_b, check_exact=True)
    assert features_a.dtype == features_b.dtype
    assert np.array_equal(features_a, features_b)
    for head in C.HEADS:
        assert np.array_equal(labels_a[head], labels_b[head])
        assert np.array_equal(masks_a[head], masks_b[head])


@pytest.mark.parametrize("dialect", ["legacy", "legacy-402"])
def test_process_single_file_gives_the_same_outputs_in_both_dialects(unambiguous, dialect):
    from imitation_learning.parallel_processor import process_single_file

    for path in _logs(unambiguous["current"]):
        other = unambiguous[dialect] / path.relative_to(unambiguous["current"])
        current = process_single_file(str(path), {})
        legacy = process_single_file(str(other), {"reader": {"blind_reserve_base": 11}})
        assert len(current[0]) > 0
        _assert_same_file_outputs(current, legacy)


def test_run_preprocessing_saves_identical_arrays_from_both_dialects(unambiguous, tmp_path):
    from imitation_learning.data_preprocessing import run_preprocessing

    saved = {}
    for dialect in DIALECTS:
        config = pipeline_config(unambiguous[dialect], tmp_path / dialect)
        config["reader"] = {"blind_reserve_base": BASE[dialect]}
        summary = run_preprocessing(config, progress=False)
        assert summary["rows_rejected"] == 0 and summary["files_rejected"] == 0
        out = tmp_path / dialect
        saved[dialect] = {
            p.name: p.read_bytes() for p in sorted(out.iterdir()) if p.name != "stats.json"
        }
    assert any(name.startswith("X_") for name in saved["current"])
    assert saved["legacy"] == saved["current"]
    assert saved["legacy-402"] == saved["current"]


# --- the command line --------------------------------------------------------------------


def test_cli_dialect_and_line_endings(tmp_path) -> None:
    argv = ["simulate", "--games", "3", "--seed", "4", "--no-progress"]
    assert cli_main([*argv, "--out", str(tmp_path / "current")]) == 0
    assert cli_main([*argv, "--out", str(tmp_path / "narrow"), "--dialect", "legacy-402"]) == 0
    assert (
        cli_main(
            [*argv, "--out", str(tmp_path / "lf"), "--dialect", "legacy", "--line-endings", "lf"]
        )
        == 0
    )
    for path in _logs(tmp_path / "current"):
        relative = path.relative_to(tmp_path / "current")
        narrow = (tmp_path / "narrow" / relative).read_bytes()
        assert narrow.startswith(",".join(C.LEGACY_COLUMNS).encode() + b"\r\n")
        lf = (tmp_path / "lf" / relative).read_bytes()
        assert b"\r" not in lf and b",nan," in lf
        assert lf.startswith(",".join(C.COLUMNS).encode() + b"\n")
        expected = read_game_log(path).values
        for other in (narrow, lf):
            values = read_game_log(other, blind_reserve_base=11).values
            ambiguous = ambiguous_reserve_rows(expected)
            fixed = expected.copy()
            fixed[ambiguous, C.CARD_RESERVATION_COL] = 12
            assert np.array_equal(_bits(values), _bits(fixed))
    with open(tmp_path / "narrow" / "manifest.csv", newline="") as f:
        assert len(list(csv.DictReader(f))) == 3


@pytest.mark.parametrize(
    "flags", [["--dialect", "legacy-401"], ["--line-endings", "cr"]], ids=["dialect", "endings"]
)
def test_cli_rejects_unknown_choices_with_exit_2(tmp_path, capsys, flags) -> None:
    with pytest.raises(SystemExit) as exc:
        cli_main(["simulate", "--games", "1", "--out", str(tmp_path / "x"), *flags])
    assert exc.value.code == 2
    assert "invalid choice" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
