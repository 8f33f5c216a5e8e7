"""Feature matrix, split by game, scaler, atomic save and load (imitation_learning.dataset).

Built on synthetic inputs shaped like the job's outputs (a df with the log and position
columns, random strategic features, labels and masks), so nothing here needs the reader
or the Dask job.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from imitation_learning import dataset as D
from imitation_learning.dataset import atomic_dir, scaler, store
from splendor import columns as C
from splendor.limits import MAX_RESERVED

STRATEGIC_NAMES = [
    "player0_cardpos3_can_build",
    "player1_cardpos14_must_use_gold",
    "player0_cardpos2_distance_total",
    "player0_noble1_acquirable",
    "player0_nobles_acquirable",
    "leader_points",
]


def make_inputs(num_games: int = 30, rows_per_game: int = 7, seed: int = 0):
    """A df with the 403 log columns + positions, features, labels, masks, like the job's."""
    rng = np.random.default_rng(seed)
    n = num_games * rows_per_game
    game_ids = np.repeat(1000 + 3 * np.arange(num_games), rows_per_game).astype(np.int64)
    players = np.repeat(rng.integers(2, 5, size=num_games), rows_per_game)
    data = {name: rng.integers(0, 8, size=n).astype(np.int16) for name in C.STATE_COLUMNS}
    for name in C.STATE_COLUMNS:
        if "_bonus_" in name:
            data[name] = rng.integers(0, 2, size=n).astype(np.int16)
    data["num_players"] = players.astype(np.int16)
    data["turn_number"] = np.tile(np.arange(1, rows_per_game + 1), num_games).astype(np.int16)
    current = rng.integers(0, 4, size=n) % players
    data["current_player"] = current.astype(np.int16)
    for k in range(C.NUM_PLAYER_SLOTS):
        seat = np.where(k < players, (current + k) % players, 0)  # absent slot: filled 0
        data[f"player{k}_position"] = seat.astype(np.int16)
    df = pd.DataFrame({"game_id": game_ids, **{c: data[c] for c in C.STATE_COLUMNS}})
    df["action_type"] = pd.Categorical.from_codes(
        rng.integers(0, 4, size=n), categories=list(C.ACTION_TYPES)
    )
    for name in C.DECISION_COLUMNS[1:]:
        df[name] = np.full(n, np.nan, dtype=np.float32)
    for i in range(C.NUM_VISIBLE):
        df[f"card{i}_position"] = np.where(rng.random(n) < 0.9, i, -1).astype(np.int8)
    for k in range(C.NUM_PLAYER_SLOTS):
        for r in range(MAX_RESERVED):
            df[f"player{k}_reserved{r}_position"] = np.where(
                rng.random(n) < 0.3, 12 + r, -1
            ).astype(np.int8)
    features = rng.normal(3.0, 2.0, size=(n, len(STRATEGIC_NAMES))).astype(np.float32)
    features[:, 0] = rng.integers(0, 2, size=n)
    features[:, 1] = rng.integers(0, 2, size=n)
    features[:, 3] = rng.integers(0, 2, size=n)
    labels = {h: rng.integers(-1, k, size=n).astype(np.int16) for h, k in C.HEADS.items()}
    masks = {h: rng.random((n, k)) < 0.5 for h, k in C.HEADS.items()}
    return df, features, labels, masks


def build(df, features):
    return D.build_feature_matrix(df, features, STRATEGIC_NAMES)


def save(out_dir, df, features, labels, masks, seed=42, **extra):
    X, names, kinds = build(df, features)
    splits = D.split_by_game(df["game_id"].to_numpy(), (0.8, 0.1, 0.1), seed)
    cont = np.flatnonzero(np.asarray(kinds) == D.CONTINUOUS)
    scaler = D.Scaler.fit(X, splits["train"], cont)
    D.save_dataset(
        out_dir,
        X=X,
        feature_names=names,
        column_kinds=kinds,
        split_masks=splits,
        labels=labels,
        masks=masks,
        scaler=scaler,
        game_ids=df["game_id"].to_numpy(),
        num_players=df["num_players"].to_numpy(),
        **extra,
    )
    return X, names, kinds, splits, scaler


# --- feature matrix ------------------------------------------------------------------------


def test_feature_matrix_columns_and_kinds():
    df, features, _, _ = make_inputs()
    X, names, kinds = build(df, features)
    assert X.dtype == np.float32 and X.shape == (len(df), len(names)) == (len(df), len(kinds))
    assert len(set(names)) == len(names)
    excluded = {"game_id", "num_players", "turn_number", "current_player"}
    excluded |= {f"player{k}_position" for k in range(4)} | set(C.DECISION_COLUMNS)
    assert not excluded & set(names)
    # 382 state - 7 metadata + 24 positions + strategic + 3 + 16 one-hots
    assert len(names) == 375 + 24 + len(STRATEGIC_NAMES) + 3 + 16
    kind = dict(zip(names, kinds, strict=True))
    assert kind["card0_bonus_white"] == kind["player3_reserved2_bonus_black"] == D.BINARY
    assert kind["card5_cost_red"] == kind["gems_board_gold"] == D.CONTINUOUS
    assert kind["player1_reserved0_vp"] == kind["deck_level2_remaining"] == D.CONTINUOUS
    assert kind["card11_position"] == kind["player0_reserved1_position"] == D.POSITION
    assert kind["num_players_3"] == kind["player2_seat_1"] == D.ONEHOT
    assert [kind[n] for n in STRATEGIC_NAMES] == [
        D.BINARY,
        D.BINARY,
        D.CONTINUOUS,
        D.BINARY,
        D.CONTINUOUS,
        D.CONTINUOUS,
    ]
    # values copied from their sources
    col = {n: i for i, n in enumerate(names)}
    np.testing.assert_array_equal(X[:, col["card7_cost_blue"]], df["card7_cost_blue"])
    np.testing.assert_array_equal(X[:, col["card4_position"]], df["card4_position"])
    np.testing.assert_array_equal(X[:, col[STRATEGIC_NAMES[2]]], features[:, 2])


def test_feature_matrix_one_hots():
    df, features, _, _ = make_inputs()
    X, names, _ = build(df, features)
    col = {n: i for i, n in enumerate(names)}
    players = df["num_players"].to_numpy()
    np_block = X[:, [col[f"num_players_{n}"] for n in (2, 3, 4)]]
    np.testing.assert_array_equal(np_block.argmax(axis=1) + 2, players)
    assert (np_block.sum(axis=1) == 1).all()
    for k in range(4):
        seats = X[:, [col[f"player{k}_seat_{s}"] for s in range(4)]]
        present = k < players
        # absent slot (its position was filled with 0): all zeros, not seat 0
        assert (seats[~present] == 0).all()
        assert (seats[present].sum(axis=1) == 1).all()
        np.testing.assert_array_equal(
            seats[present].argmax(axis=1), df[f"player{k}_position"].to_numpy()[present]
        )


def test_feature_matrix_without_strategic_features():
    df, _, _, _ = make_inputs(num_games=3)
    X, names, kinds = D.build_feature_matrix(df, np.zeros((len(df), 0), np.float32))
    assert X.shape == (len(df), 375 + 24 + 3 + 16) and len(kinds) == len(names)


def test_feature_matrix_empty_df():
    df, features, _, _ = make_inputs(num_games=2)
    X, names, _ = build(df.iloc[:0], features[:0])
    assert X.shape == (0, len(names)) and X.dtype == np.float32


def test_feature_matrix_rejects_wrong_feature_count():
    df, features, _, _ = make_inputs(num_games=2)
    with pytest.raises(ValueError, match="names"):
        D.build_feature_matrix(df, features[:, :3], STRATEGIC_NAMES)


# --- split -------------------------------------------------------------------------------


def test_split_disjoint_complete_and_ratios():
    ids = np.repeat(np.arange(500) * 7 + 11, 5)
    masks = D.split_by_game(ids, (0.8, 0.1, 0.1), seed=42)
    stacked = np.stack([masks[s] for s in D.SPLITS])
    assert (stacked.sum(axis=0) == 1).all()  # every row in exactly one split
    games = {s: set(ids[masks[s]]) for s in D.SPLITS}
    assert not games["train"] & games["val"] and not games["train"] & games["test"]
    assert not games["val"] & games["test"]
    assert [len(games[s]) for s in D.SPLITS] == [400, 50, 50]


def test_split_deterministic_and_order_independent():
    rng = np.random.default_rng(1)
    ids = np.repeat(rng.choice(10**6, size=200, replace=False), rng.integers(1, 9, size=200))
    a = D.split_by_game(ids, (0.7, 0.2, 0.1), seed=3)
    b = D.split_by_game(ids, (0.7, 0.2, 0.1), seed=3)
    perm = rng.permutation(len(ids))
    c = D.split_by_game(ids[perm], (0.7, 0.2, 0.1), seed=3)
    for s in D.SPLITS:
        np.testing.assert_array_equal(a[s], b[s])
        assert set(ids[a[s]]) == set(ids[perm][c[s]])
    d = D.split_by_game(ids, (0.7, 0.2, 0.1), seed=4)
    assert set(ids[a["val"]]) != set(ids[d["val"]])


def test_split_assignment_depends_on_set_not_rows_per_game():
    ids = np.arange(50)
    a = D.split_by_game(ids, {"train": 0.8, "val": 0.1, "test": 0.1}, seed=0)
    b = D.split_by_game(np.repeat(ids, 3)[::-1], (0.8, 0.1, 0.1), seed=0)
    for s in D.SPLITS:
        assert set(ids[a[s]]) == set(np.repeat(ids, 3)[::-1][b[s]])


@pytest.mark.parametrize(
    ("num_games", "expected"),
    [
        (0, [0, 0, 0]),
        (1, [1, 0, 0]),
        (2, [1, 1, 0]),
        (3, [1, 1, 1]),
        (5, [3, 1, 1]),
        (10, [8, 1, 1]),
        (11, [9, 1, 1]),
    ],
)
def test_split_tiny_inputs(num_games, expected):
    masks = D.split_by_game(np.arange(num_games), (0.8, 0.1, 0.1), seed=42)
    assert [int(masks[s].sum()) for s in D.SPLITS] == expected


def test_split_zero_ratio_split_stays_empty():
    masks = D.split_by_game(np.arange(4), (0.5, 0.5, 0.0), seed=42)
    assert [int(masks[s].sum()) for s in D.SPLITS] == [2, 2, 0]


# --- scaler ------------------------------------------------------------------------------


def test_scaler_fits_train_only():
    df, features, _, _ = make_inputs()
    X, _, kinds = build(df, features)
    splits = D.split_by_game(df["game_id"].to_numpy(), (0.8, 0.1, 0.1), 42)
    cont = np.flatnonzero(np.asarray(kinds) == D.CONTINUOUS)
    s1 = D.Scaler.fit(X, splits["train"], cont)
    X2 = X.copy()
    X2[~splits["train"]] = 1e6  # change every val/test value
    s2 = D.Scaler.fit(X2, splits["train"], cont)
    np.testing.assert_array_equal(s1.mean, s2.mean)
    np.testing.assert_array_equal(s1.scale, s2.scale)
    train = X[splits["train"]][:, cont].astype(np.float64)
    np.testing.assert_allclose(s1.mean[cont], train.mean(axis=0), rtol=1e-12)
    std = train.std(axis=0)
    np.testing.assert_allclose(s1.scale[cont], np.where(std > 0, std, 1), rtol=1e-12)


def test_scaler_constant_column_and_blocks(monkeypatch):
    monkeypatch.setattr(scaler, "CHUNK_ROWS", 7)  # many blocks, merged
    rng = np.random.default_rng(0)
    X = rng.normal(5, 3, size=(100, 3)).astype(np.float32)
    X[:, 1] = 4.0
    rows = np.arange(100) % 4 != 0
    s = D.Scaler.fit(X, rows, np.array([0, 1]))
    np.testing.assert_allclose(s.mean[:2], X[rows][:, :2].astype(np.float64).mean(0))
    np.testing.assert_allclose(s.scale[0], X[rows][:, 0].astype(np.float64).std())
    assert s.scale[1] == 1.0 and s.mean[2] == 0.0 and s.scale[2] == 1.0
    out = s.transform(X)
    np.testing.assert_array_equal(out[:, 1], 0.0)
    np.testing.assert_array_equal(out[:, 2], X[:, 2])  # not in columns: untouched
    assert abs(out[rows, 0].mean()) < 1e-5 and abs(out[rows, 0].std() - 1) < 1e-5


def test_scaler_with_no_train_rows():
    X = np.ones((4, 2), np.float32)
    s = D.Scaler.fit(X, np.zeros(4, bool), np.array([0]))
    np.testing.assert_array_equal(s.mean, [0, 0])
    np.testing.assert_array_equal(s.scale, [1, 1])


# --- save / load ---------------------------------------------------------------------------


def test_saved_files_agree_with_names_and_class_tables(tmp_path):
    df, features, labels, masks = make_inputs()
    rejections = [
        {"file": "a.csv", "line": 5, "column": "gems_board_red", "reason": "negative", "rows": 1},
        {"file": "b.csv", "line": None, "column": None, "reason": "empty file", "rows": 0},
    ]
    out = tmp_path / "processed"
    X, names, kinds, splits, scaler = save(
        out,
        df,
        features,
        labels,
        masks,
        rejections=rejections,
        rows_read=len(df) + 1,
        config={"seed": 42},
        timings={"total_s": 1.5},
        input_files=[__file__],
    )
    expected_files = {
        *(f"X_{s}.npy" for s in D.SPLITS),
        *(f"labels_{s}.npz" for s in D.SPLITS),
        *(f"masks_{s}.npz" for s in D.SPLITS),
        "feature_names.json",
        "label_classes.json",
        "scaler.npz",
        "stats.json",
        "rejections.json",
        "preprocessing_stats.json",
    }
    assert {p.name for p in out.iterdir()} == expected_files
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]

    ds = D.load_dataset(out)
    assert ds["feature_names"] == names
    classes = C.class_tables()
    assert ds["label_classes"] == classes
    for s in D.SPLITS:
        n = int(splits[s].sum())
        assert ds[f"X_{s}"].dtype == np.float32 and ds[f"X_{s}"].shape == (n, len(names))
        assert set(ds[f"labels_{s}"]) == set(ds[f"masks_{s}"]) == set(C.HEADS)
        for h, k in C.HEADS.items():
            assert ds[f"labels_{s}"][h].dtype == np.int16 and ds[f"labels_{s}"][h].shape == (n,)
            assert ds[f"masks_{s}"][h].dtype == bool and ds[f"masks_{s}"][h].shape == (n, k)
            assert len(classes[h]) == k
            np.testing.assert_array_equal(ds[f"labels_{s}"][h], labels[h][splits[s]])
            np.testing.assert_array_equal(ds[f"masks_{s}"][h], masks[h][splits[s]])
    np.testing.assert_array_equal(ds["scaler"].mean, scaler.mean)
    np.testing.assert_array_equal(ds["scaler"].columns, scaler.columns)
    with np.load(out / "scaler.npz", allow_pickle=False) as z:
        assert z["mean"].shape == z["scale"].shape == z["continuous"].shape == (len(names),)
        np.testing.assert_array_equal(
            np.flatnonzero(z["continuous"]), np.flatnonzero(np.asarray(kinds) == D.CONTINUOUS)
        )

    stats = ds["stats"]
    assert ds["rejections"] == rejections
    assert stats["rejected_files"] == rejections[1:] and stats["rejected_rows"] == rejections[:1]
    assert stats["rows_read"] == len(df) + 1 and stats["rows_rejected"] == 1
    assert stats["input_files"] == [{"path": __file__, "bytes": Path(__file__).stat().st_size}]
    assert stats["config"] == {"seed": 42} and stats["timings"] == {"total_s": 1.5}
    assert set(stats["versions"]) == {"python", "numpy", "pandas", "dask", "distributed"}
    players = df["num_players"].to_numpy()
    for s in D.SPLITS:
        sp = stats["splits"][s]
        assert sp["rows"] == int(splits[s].sum())
        assert sp["games"] == len(set(df["game_id"][splits[s]]))
        assert sp["game_ids"] == sorted(set(df["game_id"][splits[s]].tolist()))
        for n in (2, 3, 4):
            assert sp["by_num_players"][str(n)]["rows"] == int((splits[s] & (players == n)).sum())
        lc = stats["label_counts"][s]["gem_take3"]
        lab = labels["gem_take3"][splits[s]]
        assert lc["not_applicable"] == int((lab == -1).sum())
        assert lc["classes"] == [int((lab == c).sum()) for c in range(26)]
        ms = stats["mask_stats"][s]["gems_removed"]
        assert ms["mean_legal_classes"] == pytest.approx(
            masks["gems_removed"][splits[s]].sum(1).mean()
        )


def test_saved_x_is_scaled_continuous_only(tmp_path):
    df, features, labels, masks = make_inputs()
    X, names, kinds, splits, scaler = save(tmp_path / "out", df, features, labels, masks)
    ds = D.load_dataset(tmp_path / "out")
    kinds = np.asarray(kinds)
    for s in D.SPLITS:
        saved, raw = ds[f"X_{s}"], X[splits[s]]
        untouched = kinds != D.CONTINUOUS
        np.testing.assert_array_equal(saved[:, untouched], raw[:, untouched])
        expected = ((raw.astype(np.float64) - scaler.mean) / scaler.scale).astype(np.float32)
        np.testing.assert_array_equal(saved, expected)
    train_cont = ds["X_train"][:, kinds == D.CONTINUOUS].astype(np.float64)
    varying = X[splits["train"]][:, kinds == D.CONTINUOUS].std(axis=0) > 0
    np.testing.assert_allclose(train_cont.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(train_cont[:, varying].std(axis=0), 1, atol=1e-4)


def test_resave_is_idempotent_same_bytes(tmp_path):
    df, features, labels, masks = make_inputs()
    out = tmp_path / "out"
    save(out, df, features, labels, masks, config={"seed": 42})
    first = {p.name: p.read_bytes() for p in out.iterdir()}
    save(out, df, features, labels, masks, config={"seed": 42})
    second = {p.name: p.read_bytes() for p in out.iterdir()}
    assert first == second
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_crash_mid_save_keeps_previous_dataset(tmp_path, monkeypatch):
    df, features, labels, masks = make_inputs()
    out = tmp_path / "out"
    save(out, df, features, labels, masks, config={"run": 1})
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    real_write_npz = store.write_npz

    def crash_on_val_masks(path, arrays, compress=True):
        if Path(path).name == "masks_val.npz":
            Path(path).write_bytes(b"PK\x03\x04trunc")  # half-written file, then the crash
            raise OSError("disk full")
        real_write_npz(path, arrays, compress)

    monkeypatch.setattr(store, "write_npz", crash_on_val_masks)
    df2, features2, labels2, masks2 = make_inputs(seed=1)
    with pytest.raises(OSError, match="disk full"):
        save(out, df2, features2, labels2, masks2, config={"run": 2})

    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # temp folder removed
    ds = D.load_dataset(out)
    assert ds["stats"]["config"] == {"run": 1}
    assert len(ds["X_train"]) == ds["stats"]["splits"]["train"]["rows"]


def test_leftover_temp_folder_is_ignored_and_cleaned(tmp_path):
    df, features, labels, masks = make_inputs(num_games=5)
    out = tmp_path / "out"
    save(out, df, features, labels, masks)
    stale = tmp_path / ".out.tmp-killed"  # as left by a process killed mid-save
    stale.mkdir()
    (stale / "X_train.npy").write_bytes(b"\x93NUMPY truncated")
    assert D.load_dataset(out)["feature_names"]  # reads out/, never the temp folder
    save(out, df, features, labels, masks)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_refuses_to_replace_a_folder_that_is_not_a_dataset(tmp_path):
    df, features, labels, masks = make_inputs(num_games=3)
    (tmp_path / "precious").mkdir()
    (tmp_path / "precious" / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError):
        save(tmp_path / "precious", df, features, labels, masks)
    assert (tmp_path / "precious" / "notes.txt").read_text() == "keep me"


def test_load_dataset_missing(tmp_path):
    with pytest.raises(FileNotFoundError):
        D.load_dataset(tmp_path / "nothing")


def test_json_files_are_plain(tmp_path):
    df, features, labels, masks = make_inputs(num_games=4)
    save(tmp_path / "o", df, features, labels, masks, config={"data": {"data_root": Path("x")}})
    for name in ("feature_names", "label_classes", "stats", "rejections"):
        json.loads((tmp_path / "o" / f"{name}.json").read_text())
    with np.load(tmp_path / "o" / "scaler.npz", allow_pickle=False) as z:
        assert set(z.files) == {"mean", "scale", "columns", "continuous"}


def test_failed_swap_puts_previous_dataset_back(tmp_path, monkeypatch):
    df, features, labels, masks = make_inputs(num_games=5)
    out = tmp_path / "out"
    save(out, df, features, labels, masks, config={"run": 1})
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    real_rename = atomic_dir.os.rename

    def rename(src, dst):
        if Path(dst) == out and ".tmp-" in Path(src).name:  # swapping the new one in
            raise OSError("rename failed")
        real_rename(src, dst)

    monkeypatch.setattr(atomic_dir.os, "rename", rename)
    with pytest.raises(OSError, match="rename failed"):
        save(out, df, features, labels, masks, config={"run": 2})
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_kill_between_renames_is_recovered_by_next_save(tmp_path, monkeypatch):
    df, features, labels, masks = make_inputs(num_games=5)
    out = tmp_path / "out"
    save(out, df, features, labels, masks, config={"run": 1})
    # as left by a process killed after moving the old dataset aside: no out/, old kept
    (tmp_path / ".out.old-killed").mkdir()
    for p in out.iterdir():
        p.rename(tmp_path / ".out.old-killed" / p.name)
    out.rmdir()
    (tmp_path / ".out.tmp-killed").mkdir()

    def crash(path, arrays, compress=True):
        raise OSError("disk full")

    with monkeypatch.context() as m:  # the next save fails too, but restores the old one first
        m.setattr(store, "write_npz", crash)
        with pytest.raises(OSError):
            save(out, df, features, labels, masks, config={"run": 2})
    assert D.load_dataset(out)["stats"]["config"] == {"run": 1}
    save(out, df, features, labels, masks, config={"run": 3})
    assert D.load_dataset(out)["stats"]["config"] == {"run": 3}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_refuses_to_replace_a_file(tmp_path):
    df, features, labels, masks = make_inputs(num_games=3)
    (tmp_path / "out").write_text("a file")
    with pytest.raises(FileExistsError):
        save(tmp_path / "out", df, features, labels, masks)
    assert (tmp_path / "out").read_text() == "a file"


def test_a_save_in_progress_is_not_taken_for_a_dead_ones(tmp_path):
    """Two saves of the same target at once: the second does not remove the first's
    temporary folder (it is locked); one left by a dead process is removed."""
    target = tmp_path / "processed"
    dead = tmp_path / ".processed.tmp-dead"
    dead.mkdir()
    (dead / "X_train.npy").write_bytes(b"left by a killed run")
    with D.AtomicDir(target) as first:
        assert not dead.exists()  # nobody held it
        (first / "a.txt").write_text("first")
        with pytest.raises(RuntimeError), D.AtomicDir(target) as second:
            assert first.is_dir() and (first / "a.txt").read_text() == "first"
            assert second != first
            raise RuntimeError("the second save fails")
        assert first.is_dir()
        (first / "stats.json").write_text("{}")
        (first / "feature_names.json").write_text("[]")
    assert (target / "a.txt").read_text() == "first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["processed"]
