"""The per-file step: outputs, rejections and row accounting on real and broken files."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from game_data import LEGACY_LOGS
from imitation_learning.per_file import file_processing
from imitation_learning.per_file.compaction import FRAME_COLUMNS, empty_frame
from imitation_learning.per_file.features import NUM_FEATURES, get_all_feature_names
from imitation_learning.per_file.file_processing import (
    StrictModeError,
    empty_result,
    process_game_log,
    process_game_logs,
)
from splendor import columns as C

LEGACY = LEGACY_LOGS
LEGACY_FILES = sorted(LEGACY.glob("*_games/*.csv"))
LEGACY_CONFIG = {"reader": {"blind_reserve_base": 11}}
GAME = LEGACY / "2_games" / "900000.csv"  # line 4: a take-2 of black with 4 black in the bank


def edited_copy(tmp_path: Path, edits: dict[tuple[int, str], str]) -> Path:
    """A copy of ``GAME`` with ``(line, column) -> text`` replaced (lines 1-based)."""
    lines = GAME.read_text().splitlines()
    for (line, column), text in edits.items():
        cells = lines[line - 1].split(",")
        cells[C.COL[column]] = text
        lines[line - 1] = ",".join(cells)
    out = tmp_path / "2_games" / GAME.name
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    return out


def check_shapes(result, n: int, features: int = NUM_FEATURES) -> None:
    result.check_accounting()
    assert len(result.df) == n and list(result.df.columns) == FRAME_COLUMNS
    assert result.features.shape == (n, features) and result.features.dtype == np.float32
    assert list(result.labels) == list(C.HEADS) == list(result.masks)
    for head, classes in C.HEADS.items():
        assert result.labels[head].shape == (n,) and result.labels[head].dtype == np.int16
        assert result.masks[head].shape == (n, classes) and result.masks[head].dtype == bool


@pytest.mark.parametrize("path", LEGACY_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_legacy_fixtures_have_no_rejections(path):
    assert len(LEGACY_FILES) == 6
    result = process_game_log(path, LEGACY_CONFIG)
    n = result.rows_read
    assert n > 0 and result.rejections == []
    check_shapes(result, n)
    assert result.files_ok == [str(path)]
    players = int(path.parent.name[0])
    assert (result.df["num_players"] == players).all()
    assert (result.df["game_id"] == int(path.stem)).all()
    # every label is legal under its mask, and rows stay in file order
    for head, label in result.labels.items():
        set_ = label >= 0
        assert result.masks[head][np.flatnonzero(set_), label[set_]].all(), head
    assert (np.diff(result.df["turn_number"].to_numpy()) >= 0).all()


def test_outputs_line_up_with_the_file():
    result = process_game_log(GAME, LEGACY_CONFIG)
    raw = pd.read_csv(GAME, na_values=["nan"])
    assert list(result.df["action_type"].astype(str)) == list(raw["action_type"])
    codes = raw["action_type"].map(C.ACTION_CODE).to_numpy()
    np.testing.assert_array_equal(result.labels["action_type"], codes)
    np.testing.assert_array_equal(result.df["gems_board_red"], raw["gems_board_red"])
    # the deciding player's tokens held, from the features, match the log
    held = raw[[f"player0_gems_{c}" for c in C.COLOURS_GOLD]].sum(axis=1).to_numpy()
    col = get_all_feature_names().index("player0_tokens_held")
    np.testing.assert_array_equal(result.features[:, col], held)


def test_disabled_flags():
    config = {
        **LEGACY_CONFIG,
        "preprocessing": {"enable_masking": False, "enable_feature_engineering": False},
    }
    result = process_game_log(GAME, config)
    n = result.rows_read
    check_shapes(result, n, features=0)
    assert all(mask.all() for mask in result.masks.values())
    on = process_game_log(GAME, LEGACY_CONFIG)
    pd.testing.assert_frame_equal(result.df, on.df)
    assert not on.masks["card_selection"].all()  # real masks are not all ones


def test_missing_config_sections_mean_defaults():
    result = process_game_log(GAME, {})
    check_shapes(result, result.rows_read)
    assert not result.masks["gem_take2"].all()


def test_empty_file(tmp_path):
    path = tmp_path / "2_games" / "1.csv"
    path.parent.mkdir()
    path.write_text("")
    result = process_game_log(path, {})
    check_shapes(result, 0)
    assert result.rows_read == 0 and result.files_ok == []
    assert len(result.rejections) == 1 and result.rejections[0].file_level
    assert result.files_rejected == [str(path)]


def test_header_only_file(tmp_path):
    path = tmp_path / "2_games" / "1.csv"
    path.parent.mkdir()
    path.write_text(",".join(C.COLUMNS) + "\n")
    result = process_game_log(path, {})
    check_shapes(result, 0)
    assert result.rows_read == 0 and result.files_ok == []
    (rejection,) = result.rejections
    assert rejection.file_level and rejection.rows == 0
    assert rejection.reason == "no data row: the file holds only its header"
    assert result.files_rejected == [str(path)]


def test_missing_file_is_a_file_level_rejection(tmp_path):
    path = tmp_path / "nope.csv"
    result = process_game_log(path, {})
    check_shapes(result, 0)
    assert [r.file for r in result.rejections] == [str(path)]
    assert result.rejections[0].line is None


def test_illegal_decision_is_rejected_and_named(tmp_path):
    # line 4 takes 2 black; with 3 black in the bank that take is not legal
    path = edited_copy(tmp_path, {(4, "gems_board_black"): "3"})
    result = process_game_log(path, LEGACY_CONFIG)
    full = process_game_log(GAME, LEGACY_CONFIG)
    check_shapes(result, full.rows_read - 1)
    assert result.rows_read == full.rows_read
    (rejection,) = result.rejections
    assert rejection.line == 4 and rejection.rows == 1 and rejection.file == str(path)
    assert rejection.reason.startswith("decision not legal in its state")
    assert "gem_take2" in rejection.reason
    # the other rows are untouched, in order
    keep = np.ones(full.rows_read, dtype=bool)
    keep[2] = False  # line 4 = third data row
    np.testing.assert_array_equal(result.features, full.features[keep])
    for head in C.HEADS:
        np.testing.assert_array_equal(result.labels[head], full.labels[head][keep])
        np.testing.assert_array_equal(result.masks[head], full.masks[head][keep])


def test_illegal_decision_kept_when_masking_is_disabled(tmp_path):
    path = edited_copy(tmp_path, {(4, "gems_board_black"): "3"})
    config = {**LEGACY_CONFIG, "preprocessing": {"enable_masking": False}}
    result = process_game_log(path, config)
    assert result.rejections == [] and len(result) == result.rows_read


def test_unreadable_row_among_good_ones(tmp_path):
    path = edited_copy(tmp_path, {(10, "gems_board_red"): "lots"})
    result = process_game_log(path, LEGACY_CONFIG)
    full = process_game_log(GAME, LEGACY_CONFIG)
    check_shapes(result, full.rows_read - 1)
    assert [r.line for r in result.rejections] == [10]
    assert result.rows_read == full.rows_read


def test_inconsistent_decision_is_rejected(tmp_path):
    # line 4 is a take-2: a card_selection on it contradicts the action
    path = edited_copy(tmp_path, {(4, "card_selection"): "3"})
    result = process_game_log(path, LEGACY_CONFIG)
    result.check_accounting()
    assert [(r.line, r.column) for r in result.rejections] == [(4, "card_selection")]


def test_result_is_picklable():
    result = process_game_log(GAME, LEGACY_CONFIG)
    back = pickle.loads(pickle.dumps(result))
    pd.testing.assert_frame_equal(back.df, result.df)
    np.testing.assert_array_equal(back.features, result.features)


@pytest.mark.parametrize("features_on", [True, False])
def test_empty_result(features_on):
    config = {"preprocessing": {"enable_feature_engineering": features_on}}
    result = empty_result(config)
    check_shapes(result, 0, features=NUM_FEATURES if features_on else 0)
    pd.testing.assert_series_equal(result.df.dtypes, empty_frame().dtypes)
    assert result.rows_read == 0 and result.rejections == []


def assert_same_result(a, b) -> None:
    pd.testing.assert_frame_equal(a.df, b.df, check_exact=True)
    assert a.features.dtype == b.features.dtype and a.features.shape == b.features.shape
    assert a.features.tobytes() == b.features.tobytes()
    for head in C.HEADS:
        assert a.labels[head].dtype == b.labels[head].dtype
        np.testing.assert_array_equal(a.labels[head], b.labels[head])
        assert a.masks[head].dtype == b.masks[head].dtype
        np.testing.assert_array_equal(a.masks[head], b.masks[head])
    assert (a.rejections, a.rows_read, a.files_ok) == (b.rejections, b.rows_read, b.files_ok)


@pytest.mark.parametrize("batch_rows", [1, 50, file_processing.BATCH_ROWS, 10**6])
@pytest.mark.parametrize("masking", [True, False])
def test_files_together_give_the_results_of_each_alone(tmp_path, monkeypatch, batch_rows, masking):
    # good files around files with bad rows (inconsistent, illegal, unreadable) and files
    # rejected whole, in batches of every size
    edits = [
        {(4, "card_selection"): "3"},
        {(4, "gems_board_black"): "3", (6, "card_selection"): "3"},
        {(10, "gems_board_red"): "lots"},
    ]
    bad = []
    for i, edit in enumerate(edits):
        folder = tmp_path / str(i)
        bad.append(edited_copy(folder, edit))
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    header_only = tmp_path / "header.csv"
    header_only.write_text(GAME.read_text().splitlines()[0] + "\n")
    paths = [LEGACY_FILES[0], bad[0], empty, LEGACY_FILES[1], bad[1], tmp_path / "missing.csv"]
    paths += [header_only, bad[2], *LEGACY_FILES[2:], GAME]
    config = {**LEGACY_CONFIG, "preprocessing": {"enable_masking": masking}}
    alone = [process_game_log(p, config) for p in paths]
    assert sum(len(r.rejections) for r in alone) >= 6
    monkeypatch.setattr(file_processing, "BATCH_ROWS", batch_rows)
    together = list(process_game_logs(paths, config))
    assert len(together) == len(paths)
    for a, b in zip(together, alone, strict=True):
        assert_same_result(a, b)


@pytest.mark.parametrize("pack", [False, True])
def test_partition_joined_gives_the_concatenation_of_each_file_alone(tmp_path, monkeypatch, pack):
    # the job's path (consecutive files as one result, no frame per file) against the same
    # per-file step run file by file, on good files around bad rows and files rejected whole
    from imitation_learning import parallel_processor as pp

    bad = [edited_copy(tmp_path / str(i), edit) for i, edit in enumerate(
        [{(4, "card_selection"): "3"}, {(4, "gems_board_black"): "3"}]
    )]
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    paths = [str(p) for p in (LEGACY_FILES[0], bad[0], LEGACY_FILES[1], empty, bad[1],
                              tmp_path / "missing.csv", *LEGACY_FILES[2:], GAME)]
    monkeypatch.setattr(file_processing, "BATCH_ROWS", 150)  # several batches and runs
    done = []
    joined = pp.process_partition(paths, LEGACY_CONFIG, on_file_done=lambda: done.append(1),
                                  pack=pack)
    alone = pp.process_partition(paths, LEGACY_CONFIG, lambda p, c: process_game_log(p, c),
                                 pack=pack)
    assert len(done) == len(paths)
    assert joined.df.attrs == alone.df.attrs and len(joined.df.attrs[pp.FILE_INDEX_ATTR]) == len(paths)
    assert_same_result(joined, alone)


def test_files_together_strict_stops_at_the_first_file_with_a_rejection(tmp_path):
    bad = edited_copy(tmp_path, {(4, "card_selection"): "3"})
    config = {**LEGACY_CONFIG, "preprocessing": {"strict": True}}
    seen = []
    with pytest.raises(StrictModeError) as raised:
        for result in process_game_logs([*LEGACY_FILES[:2], bad, *LEGACY_FILES[2:]], config):
            seen.append(result)
    assert len(seen) == 2 and raised.value.rejection.file == str(bad)
