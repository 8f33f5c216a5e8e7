"""Self-play logs: codec round trip, replay against the engine, writer output, manifest, CLI."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from splendor import columns as C
from splendor.log_codec import decode_move, decode_state, encode_row
from splendor.log_reader import read_game_log
from splendor.log_writer import format_rows, write_game_log
from splendor.rules import apply_move, legal_moves, pass_turn
from splendor.simulate import (
    GAME_ID_STRIDE,
    MANIFEST_FIELDS,
    derive_seed,
    play_game,
    simulate,
    split_games,
)
from splendor.state import FINISHED, new_game
from splendor_il.cli import main as cli_main

SEED = 77
GAMES = [(n, agent) for agent in ("random", "greedy") for n in (2, 3, 4)]


@pytest.fixture(scope="module")
def records():
    return {
        (n, agent): play_game(GAME_ID_STRIDE + i, n, agent, derive_seed(SEED, i))
        for i, (n, agent) in enumerate(GAMES)
    }


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    out = tmp_path_factory.mktemp("games")
    entries = simulate(6, players=(2, 3, 4), agent="random", seed=5, out=out, progress=False)
    entries += simulate(
        3, players=(2, 3, 4), agent="greedy", seed=6, out=out / "greedy", progress=False
    )
    return out, entries


def same(a: np.ndarray, b: np.ndarray) -> bool:
    return np.array_equal(a, b, equal_nan=True)


@pytest.mark.parametrize("game", GAMES)
def test_round_trip_every_row(records, game):
    record = records[game]
    assert len(record.rows) > 10
    for row in record.rows:
        state = decode_state(row)
        move = decode_move(row, state)
        assert same(encode_row(state, move), row)


@pytest.mark.parametrize("game", GAMES)
def test_replay_each_decision_is_legal_and_leads_to_the_next_row(records, game):
    record = records[game]
    n = record.num_players
    state = new_game(n, record.seed, game_id=record.game_id)
    for row in record.rows:
        while not legal_moves(state):  # passes are not logged
            state = pass_turn(state)
        assert same(encode_row(state, None)[C.STATE_SLICE], row[C.STATE_SLICE])
        decoded = decode_state(row)
        move = decode_move(row, decoded)
        moves = legal_moves(state)
        assert move in moves
        # The decoded state (decks known by count only) gives the same legal moves.
        assert sorted(legal_moves(decoded)) == sorted(moves)
        state = apply_move(state, move)
    while state.outcome is None:
        state = pass_turn(state)
    assert state.outcome == record.outcome and state.round == record.rounds
    assert [p.points for p in state.players] == record.points
    if record.outcome == FINISHED:
        assert max(record.points) >= 15


@pytest.mark.parametrize("game", GAMES)
def test_rows_follow_the_format(records, game):
    rows = records[game].rows
    n = records[game].num_players
    assert rows.shape[1] == len(C.COLUMNS)
    assert (rows[:, C.COL["game_id"]] == records[game].game_id).all()
    assert (rows[:, C.COL["num_players"]] == n).all()
    assert (rows[:, C.PLAYER_POSITION[0]] == rows[:, C.COL["current_player"]]).all()
    # Slot k holds seat (current + k) mod n; slots beyond n are entirely missing.
    expected = (rows[:, [C.COL["current_player"]]] + np.arange(n)) % n
    assert (rows[:, C.PLAYER_POSITION[:n]] == expected).all()
    for k in range(n, 4):
        block = np.r_[C.PLAYER_POSITION[k] : C.PLAYER_POSITION[k] + 49]
        assert np.isnan(rows[:, block]).all()
    # The round counter: non-decreasing, starting at 1.
    turns = rows[:, C.COL["turn_number"]]
    assert turns[0] == 1 and (np.diff(turns) >= 0).all()
    action = rows[:, C.ACTION_COL]
    build, reserve = action == C.BUILD, action == C.RESERVE
    take3, take2 = action == C.TAKE3, action == C.TAKE2
    assert np.isnan(rows[~build, C.CARD_SELECTION_COL]).all()
    assert not np.isnan(rows[build, C.CARD_SELECTION_COL]).any()
    assert np.isnan(rows[~reserve, C.CARD_RESERVATION_COL]).all()
    assert np.isnan(rows[~take3][:, C.TAKE3_COLS]).all()
    assert np.isnan(rows[~take2][:, C.TAKE2_COLS]).all()
    assert set(np.unique(rows[take3][:, C.TAKE3_COLS])) <= {0, 1}
    assert (np.nansum(rows[take2][:, C.TAKE2_COLS], axis=1) == 2).all()
    assert (rows[:, C.NOBLE_SELECTION_COL] >= -1).all()
    removed = rows[:, C.REMOVED_COLS]
    assert not np.isnan(removed).any() and (removed.sum(axis=1) <= 3).all()


def test_running_index_skips_empty_slots():
    state = new_game(2, seed=3)
    state.slots[1] = None  # an empty slot inside the level-1 block
    state.decks[0] = []
    state.players[0].tokens = [3, 3, 2, 2, 0, 0]
    reserves = {m.target: m for m in legal_moves(state) if m.action == C.RESERVE}
    assert sorted(reserves) == [0, *range(2, 12), 13, 14]  # level-1 deck empty: no blind 12
    for slot, m in reserves.items():
        index = slot if slot in (0, 13, 14) else slot - 1
        assert encode_row(state, m)[C.CARD_RESERVATION_COL] == index
    state.players[0].tokens = [4, 4, 4, 4, 4, 0]
    builds = [m for m in legal_moves(state) if m.action == C.BUILD and 1 < m.target < 12]
    assert builds
    for m in builds:
        assert encode_row(state, m)[C.CARD_SELECTION_COL] == m.target - 1
    row = encode_row(state, reserves[5])
    assert np.isnan(row[C.CARDS[1]]).all()  # the empty slot is missing
    decoded = decode_state(row)
    assert decoded.slots == state.slots
    assert decode_move(row, decoded) == reserves[5]


def test_encode_row_works_for_every_legal_move(records):
    record = records[(3, "random")]
    for row in record.rows[::7]:
        state = decode_state(row)
        for m in legal_moves(state):
            encoded = encode_row(state, m)
            assert same(encoded[C.STATE_SLICE], row[C.STATE_SLICE])
            assert decode_move(encoded, state) == m


@pytest.mark.parametrize("game", [(2, "random"), (4, "greedy")])
def test_writer_output_reads_back(records, tmp_path, game):
    record = records[game]
    path = write_game_log(record.rows, tmp_path, record.num_players, record.game_id)
    assert path == tmp_path / f"{record.num_players}_games" / f"{record.game_id}.csv"
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left
    df = pd.read_csv(path)
    assert list(df.columns) == C.COLUMNS
    assert set(df["action_type"]) <= set(C.ACTION_TYPES)
    df["action_type"] = df["action_type"].map(C.ACTION_CODE)
    assert same(df.to_numpy(dtype=np.float64), record.rows)
    text = path.read_text()
    assert ".0," not in text and "nan" not in text
    assert text.splitlines()[1].startswith(f"{record.game_id},{record.num_players},1,0,")
    log = read_game_log(path)
    assert not log.rejections and same(log.values, record.rows)


def test_writer_rejects_non_integers():
    rows = np.zeros((1, len(C.COLUMNS)))
    rows[0, 5] = 0.5
    with pytest.raises(ValueError):
        format_rows(rows, 1)


def test_simulate_writes_logs_and_manifest(simulated):
    out, entries = simulated
    assert [e["num_players"] for e in entries] == [2, 2, 3, 3, 4, 4, 2, 3, 4]
    ids = [e["game_id"] for e in entries]
    assert len(set(ids)) == len(ids) and ids[:6] == [5 * GAME_ID_STRIDE + i for i in range(6)]
    with open(out / "manifest.csv", newline="") as f:
        manifest = list(csv.DictReader(f))
    assert tuple(manifest[0]) == MANIFEST_FIELDS and len(manifest) == 6
    for e in manifest:
        path = out / f"{e['num_players']}_games" / f"{e['game_id']}.csv"
        df = pd.read_csv(path)
        assert len(df) == int(e["rows"]) and e["agent"] == "random"
        assert e["outcome"] in ("finished", "blocked", "truncated")
        assert df["turn_number"].max() == int(e["rounds"])
        assert len(e["points"].split(";")) == int(e["num_players"])
    assert not list(out.glob("**/*.tmp")) and not list(out.glob("**/.*"))


def test_simulate_is_reproducible(simulated, tmp_path):
    out, _ = simulated
    simulate(3, players=(2, 3, 4), agent="greedy", seed=6, out=tmp_path, progress=False)
    for path in sorted(tmp_path.glob("**/*.csv")):
        assert path.read_bytes() == (out / "greedy" / path.relative_to(tmp_path)).read_bytes()


def test_split_games():
    assert split_games(30, (2, 3, 4)) == [10, 10, 10]
    assert split_games(8, (2, 3, 4)) == [3, 3, 2]
    assert split_games(5, (4,)) == [5]


def test_cli_simulate(tmp_path: Path, capsys):
    code = cli_main(
        ["simulate", "--games", "2", "--players", "3", "--agent", "greedy", "--seed", "9"]
        + ["--out", str(tmp_path), "--no-progress"]
    )
    assert code == 0
    files = sorted(p.name for p in (tmp_path / "3_games").iterdir())
    assert files == [f"{9 * GAME_ID_STRIDE}.csv", f"{9 * GAME_ID_STRIDE + 1}.csv"]
    assert (tmp_path / "manifest.csv").exists()
    assert "2 games" in capsys.readouterr().out


def test_simulate_on_a_pool_of_workers_writes_the_same_files(tmp_path, dask_scheduler_address):
    """Self-play on the cluster (the job's pool helper) gives the files of a serial run."""
    serial, pooled = tmp_path / "serial", tmp_path / "pooled"
    simulate(12, players=(2, 3, 4), agent="random", seed=9, out=serial, progress=False)
    # Through the command line: it opens the pool (the job's cluster helper) and hands
    # simulate() the client.
    args = ["simulate", "--games", "12", "--agent", "random", "--seed", "9", "--no-progress"]
    args += ["--out", str(pooled), "--scheduler-address", dask_scheduler_address]
    assert cli_main(args) == 0
    serial_files = sorted(p.relative_to(serial) for p in serial.rglob("*.csv"))
    pooled_files = sorted(p.relative_to(pooled) for p in pooled.rglob("*.csv"))
    assert serial_files == pooled_files and len(serial_files) == 13  # 12 games + manifest
    for rel in serial_files:
        assert (serial / rel).read_bytes() == (pooled / rel).read_bytes(), rel
