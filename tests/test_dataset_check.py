"""`splendor-il check`: soundness checks on sound and damaged datasets, learnability signal
against shuffled labels, the command line (exit codes, text and JSON reports).

The bundled games, preprocessed once, are the sound dataset; each damaged copy is broken for
one check and must fail exactly that check. The learnability tests use 200 greedy self-play
games (module fixture).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from game_data import pipeline_config, simulated_root
from imitation_learning import check as DC
from imitation_learning.check import learnability as LN
from imitation_learning.data_preprocessing import run_preprocessing
from imitation_learning.dataset import SPLITS, Scaler, load_dataset
from imitation_learning.parallel_processor import discover_csv_files
from splendor import columns as C
from splendor_il.cli import main

REPO_ROOT = Path(__file__).resolve().parents[1]
BUNDLED = REPO_ROOT / "data" / "games"
ALL_CHECKS = list(DC.CHECKS)


@pytest.fixture(scope="module")
def sound(tmp_path_factory) -> Path:
    """The bundled 30 games, preprocessed (one process)."""
    out = tmp_path_factory.mktemp("check") / "bundled"
    run_preprocessing(pipeline_config(BUNDLED, out), progress=False)
    return out


@pytest.fixture(scope="module")
def greedy(tmp_path_factory) -> Path:
    """200 greedy self-play games (a third per player count), preprocessed."""
    root = simulated_root(tmp_path_factory, "greedy200", 200, seed=5)
    out = root.parent / "dataset"
    run_preprocessing(pipeline_config(root, out), progress=False)
    return out


def statuses(path: Path) -> dict[str, str]:
    return {r.name: r.status for r in DC.check_soundness(path)}


def failing(path: Path) -> list[str]:
    return [name for name, status in statuses(path).items() if status == DC.FAIL]


def copy_of(sound: Path, tmp_path: Path, name: str = "damaged") -> Path:
    target = tmp_path / name
    shutil.copytree(sound, target)
    return target


def read_npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def read_x(path: Path, split: str) -> np.ndarray:
    return np.load(path / f"X_{split}.npy")


def stats_of(path: Path) -> dict:
    return json.loads((path / "stats.json").read_text())


def write_stats(path: Path, stats: dict) -> None:
    (path / "stats.json").write_text(json.dumps(stats))


def column(path: Path, name: str) -> int:
    return json.loads((path / "feature_names.json").read_text()).index(name)


# --- the sound dataset -------------------------------------------------------------------------


def test_bundled_dataset_passes_every_check(sound):
    results = DC.check_soundness(sound)
    assert [r.name for r in results] == ALL_CHECKS
    assert {r.name: r.status for r in results} == dict.fromkeys(ALL_CHECKS, DC.PASS)
    by_name = {r.name: r for r in results}
    stats = stats_of(sound)
    assert by_name["games_disjoint"].per_split["test"]["games"] == stats["splits"]["test"]["games"]
    checked = sum(c["rows_checked"] for c in by_name["x_in_step"].per_split.values())
    assert checked == sum(stats["splits"][s]["rows"] for s in SPLITS)
    deviation = by_name["scaler"].per_split["train"]
    assert deviation["train_rows"] == stats["splits"]["train"]["rows"]
    assert deviation["max_std_deviation_over_scale"] <= DC.STATS_TOLERANCE


def test_soundness_streams_x_in_blocks_of_any_size(sound):
    """Block boundaries change nothing (one-row and odd-sized blocks)."""
    reference = [r.to_dict() for r in DC.check_soundness(sound)]
    for rows in (1, 333):
        got = [r.to_dict() for r in DC.check_soundness(sound, block_rows=rows)]
        assert [g["status"] for g in got] == [r["status"] for r in reference]
        assert (
            got[ALL_CHECKS.index("labels_in_masks")]
            == reference[ALL_CHECKS.index("labels_in_masks")]
        )


def test_stats_json_lists_the_games_of_each_split(sound):
    stats = stats_of(sound)
    ids = [set(stats["splits"][s]["game_ids"]) for s in SPLITS]
    files = discover_csv_files(BUNDLED)
    assert set().union(*ids) == {int(Path(f).stem) for f in files}
    assert sum(len(i) for i in ids) == len(files)


# --- each damage fails exactly its check ----------------------------------------------------------


def test_nan_in_x_fails_x_finite_only(sound, tmp_path):
    path = copy_of(sound, tmp_path)
    X = read_x(path, "test")
    X[5, column(path, "gems_board_white")] = np.nan
    np.save(path / "X_test.npy", X)
    results = {r.name: r for r in DC.check_soundness(path)}
    assert [n for n, r in results.items() if r.status == DC.FAIL] == ["x_finite"]
    assert results["x_finite"].per_split["test"]["non_finite_values"] == 1
    assert "X_test[5," in results["x_finite"].examples[0]


def test_nan_in_train_rows_also_leaves_the_scaler_unverified(sound, tmp_path):
    path = copy_of(sound, tmp_path)
    X = read_x(path, "train")
    X[7, column(path, "gems_board_blue")] = np.inf
    np.save(path / "X_train.npy", X)
    assert failing(path) == ["x_finite", "scaler"]


def test_labels_shifted_by_one_row_fail_labels_in_masks_only(sound, tmp_path):
    path = copy_of(sound, tmp_path)
    labels = read_npz(path / "labels_train.npz")
    np.savez(path / "labels_train.npz", **{h: np.roll(v, 1) for h, v in labels.items()})
    results = {r.name: r for r in DC.check_soundness(path)}
    assert [n for n, r in results.items() if r.status == DC.FAIL] == ["labels_in_masks"]
    outside = results["labels_in_masks"].per_split["train"]["labels_outside_mask"]
    assert outside["card_selection"] > 0 and outside["action_type"] > 0


def test_label_moved_outside_its_mask_fails_labels_in_masks_only(sound, tmp_path):
    path = copy_of(sound, tmp_path)
    labels, masks = read_npz(path / "labels_val.npz"), read_npz(path / "masks_val.npz")
    y, legal = labels["gem_take3"], masks["gem_take3"]
    row = int(np.flatnonzero((y >= 0) & (legal.sum(axis=1) < legal.shape[1]))[0])
    illegal = int(np.flatnonzero(~legal[row])[0])
    y[row] = illegal
    np.savez(path / "labels_val.npz", **labels)
    results = {r.name: r for r in DC.check_soundness(path)}
    assert [n for n, r in results.items() if r.status == DC.FAIL] == ["labels_in_masks"]
    assert results["labels_in_masks"].per_split["val"]["labels_outside_mask"]["gem_take3"] == 1
    assert f"val row {row}, gem_take3: label {illegal}" in results["labels_in_masks"].examples[0]


def test_label_out_of_range_fails_labels_valid_only(sound, tmp_path):
    path = copy_of(sound, tmp_path)
    labels = read_npz(path / "labels_test.npz")
    labels["card_selection"][3] = C.HEADS["card_selection"]  # one past the last class
    labels["noble"][4] = -2
    np.savez(path / "labels_test.npz", **labels)
    results = {r.name: r for r in DC.check_soundness(path)}
    assert [n for n, r in results.items() if r.status == DC.FAIL] == ["labels_valid"]
    invalid = results["labels_valid"].per_split["test"]["invalid_labels"]
    assert invalid["card_selection"] == 1 and invalid["noble"] == 1


def test_x_shifted_against_labels_and_masks_fails_x_in_step_only(sound, tmp_path):
    """Labels and masks agree with each other; X is one row out of step with both."""
    path = copy_of(sound, tmp_path)
    np.save(path / "X_train.npy", np.roll(read_x(path, "train"), 1, axis=0))
    results = {r.name: r for r in DC.check_soundness(path)}
    assert [n for n, r in results.items() if r.status == DC.FAIL] == ["x_in_step"]
    counts = results["x_in_step"].per_split["train"]
    assert counts["rows_out_of_step"] > counts["rows_checked"] // 2


def _first_train_game(path: Path) -> tuple[int, int, int]:
    """(game id, rows, players) of the first train game: X_train starts with its rows
    (files in sorted path order, rows in file order; no row rejected)."""
    train_ids = set(stats_of(path)["splits"]["train"]["game_ids"])
    for f in discover_csv_files(BUNDLED):
        if int(Path(f).stem) in train_ids:
            rows = len(Path(f).read_text().splitlines()) - 1
            return int(Path(f).stem), rows, int(Path(f).parent.name[0])
    raise AssertionError("no train game")


def _append_rows_to_test(path: Path, rows: slice) -> None:
    """Copy train rows (X, labels, masks) to the end of the test split."""
    np.save(
        path / "X_test.npy", np.concatenate([read_x(path, "test"), read_x(path, "train")[rows]])
    )
    for part in ("labels", "masks"):
        train, test = read_npz(path / f"{part}_train.npz"), read_npz(path / f"{part}_test.npz")
        np.savez(
            path / f"{part}_test.npz",
            **{h: np.concatenate([test[h], train[h][rows]]) for h in test},
        )
    summary = summary_of(path)
    added = len(range(*rows.indices(len(read_x(path, "train")))))
    summary["test_size"] += added
    summary["total_samples"] += added
    write_summary(path, summary)


def summary_of(path: Path) -> dict:
    return json.loads((path / "preprocessing_stats.json").read_text())


def write_summary(path: Path, summary: dict) -> None:
    (path / "preprocessing_stats.json").write_text(json.dumps(summary))


def _count_added_test_rows(stats: dict, game_id: int, rows: int, players: int) -> None:
    """The counts of ``stats.json`` of such a split (``preprocessing_stats.json`` is
    counted by :func:`_append_rows_to_test`)."""
    test = stats["splits"]["test"]
    test["rows"] += rows
    test["games"] += 1
    test["game_ids"] = sorted([*test["game_ids"], game_id])
    test["by_num_players"][str(players)]["rows"] += rows


def test_game_copied_into_two_splits_fails_games_disjoint_only(sound, tmp_path):
    path = copy_of(sound, tmp_path)
    game_id, rows, players = _first_train_game(path)
    _append_rows_to_test(path, slice(0, rows))
    stats = stats_of(path)
    _count_added_test_rows(stats, game_id, rows, players)  # the stats of such a split
    write_stats(path, stats)
    results = {r.name: r for r in DC.check_soundness(path)}
    assert [n for n, r in results.items() if r.status == DC.FAIL] == ["games_disjoint"]
    examples = " ".join(results["games_disjoint"].examples)
    assert f"games [{game_id}] are in train and in test" in examples
    assert f"{rows} rows of X_train are identical to rows of X_test" in examples


def test_game_copied_under_another_id_is_found_by_its_rows(sound, tmp_path):
    path = copy_of(sound, tmp_path)
    _, rows, players = _first_train_game(path)
    _append_rows_to_test(path, slice(0, rows))
    stats = stats_of(path)
    _count_added_test_rows(stats, 999_999_999, rows, players)  # a fresh id: ids disjoint
    write_stats(path, stats)
    results = {r.name: r for r in DC.check_soundness(path)}
    assert [n for n, r in results.items() if r.status == DC.FAIL] == ["games_disjoint"]
    assert results["games_disjoint"].per_split["test"]["rows_also_in_another_split"] == rows


def _raw_splits(path: Path) -> tuple[dict[str, np.ndarray], Scaler]:
    """Every split's X un-standardised (whole numbers, exactly), and the saved scaler."""
    scaler = load_dataset(path).get("scaler")
    raw = {}
    for split in SPLITS:
        x = read_x(path, split).astype(np.float64) * scaler.scale + scaler.mean
        raw[split] = np.rint(x).astype(np.float32)
    return raw, scaler


def test_x_standardised_with_a_scaler_from_other_rows_fails_scaler_only(sound, tmp_path):
    """The scaler fitted on all rows (train, val and test), X standardised with it."""
    path = copy_of(sound, tmp_path)
    raw, saved = _raw_splits(path)
    everything = np.concatenate([raw[s] for s in SPLITS])
    leaky = Scaler.fit(everything, np.ones(len(everything), bool), saved.columns)
    for split in SPLITS:
        np.save(path / f"X_{split}.npy", leaky.transform(raw[split]))
    np.savez(path / "scaler.npz", **leaky.to_arrays())
    results = {r.name: r for r in DC.check_soundness(path)}
    assert [n for n, r in results.items() if r.status == DC.FAIL] == ["scaler"]
    assert "train mean differs" in " ".join(results["scaler"].examples)


def test_scaler_file_from_other_rows_fails_scaler_only(sound, tmp_path):
    """X as saved, scaler.npz replaced by one fitted on the val and test rows."""
    path = copy_of(sound, tmp_path)
    raw, saved = _raw_splits(path)
    other = np.concatenate([raw["val"], raw["test"]])
    np.savez(
        path / "scaler.npz",
        **Scaler.fit(other, np.ones(len(other), bool), saved.columns).to_arrays(),
    )
    results = {r.name: r for r in DC.check_soundness(path)}
    assert [n for n, r in results.items() if r.status == DC.FAIL] == ["scaler"]
    assert "not a whole number" in " ".join(results["scaler"].examples)
    assert all(results["scaler"].per_split[s]["values_not_whole"] > 0 for s in SPLITS)


def test_broken_one_hot_fails_column_groups_only(sound, tmp_path):
    path = copy_of(sound, tmp_path)
    X = read_x(path, "val")
    players = [column(path, f"num_players_{n}") for n in (2, 3, 4)]
    row = 2
    X[row, players] = [1.0, 1.0, 0.0]  # two player counts at once
    X[row + 1, column(path, "card3_position")] = 7.0  # not 3 or -1
    np.save(path / "X_val.npy", X)
    results = {r.name: r for r in DC.check_soundness(path)}
    assert [n for n, r in results.items() if r.status == DC.FAIL] == ["column_groups"]
    bad = results["column_groups"].per_split["val"]["bad_rows"]
    assert bad["num_players"] == 1 and bad["card_positions"] == 1


def test_seat_one_hot_of_a_missing_player_fails_column_groups(sound, tmp_path):
    path = copy_of(sound, tmp_path)
    X = read_x(path, "train")
    two = np.flatnonzero(X[:, column(path, "num_players_2")] == 1)[0]
    X[two, column(path, "player3_seat_3")] = 1.0  # a fourth seat in a 2-player game
    np.save(path / "X_train.npy", X)
    assert failing(path) == ["column_groups"]


def test_masks_of_the_wrong_width_fail_shapes_only(sound, tmp_path):
    path = copy_of(sound, tmp_path)
    masks = read_npz(path / "masks_val.npz")
    masks["gem_take2"] = masks["gem_take2"][:, :4]
    np.savez(path / "masks_val.npz", **masks)
    results = {r.name: r for r in DC.check_soundness(path)}
    assert [n for n, r in results.items() if r.status == DC.FAIL] == ["shapes"]
    assert "val gem_take2: masks bool (230, 4), expected (230, 5)" in results["shapes"].examples[0]
    assert "not checked, see shapes: val gem_take2" in results["labels_in_masks"].summary


def test_training_summary_of_the_sound_dataset(sound):
    summary = summary_of(sound)
    ds = load_dataset(sound)
    assert ds["preprocessing_stats"] == summary
    width = ds["X_train"].shape[1]
    assert summary["input_dim"] == summary["num_features"] == width == len(ds["feature_names"])
    sizes = [summary[f"{s}_size"] for s in SPLITS]
    assert sizes == [len(ds[f"X_{s}"]) for s in SPLITS] and summary["total_samples"] == sum(sizes)
    assert list(summary["mask_statistics"]) == list(C.HEADS)
    for head, figures in summary["mask_statistics"].items():
        legal = ds["masks_train"][head].sum(axis=1)
        assert figures == {
            "avg_legal_actions": pytest.approx(legal.mean(), rel=1e-12),
            "min_legal_actions": int(legal.min()),
            "max_legal_actions": int(legal.max()),
        }


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("input_dim", 100, "input_dim is 100, X has"),
        ("val_size", 1, "val_size is 1, X_val has"),
        ("total_samples", 0, "total_samples is 0, the splits hold"),
    ],
)
def test_training_summary_that_disagrees_fails_its_check_only(sound, tmp_path, key, value,
                                                              message):
    path = copy_of(sound, tmp_path)
    summary = summary_of(path)
    summary[key] = value
    write_summary(path, summary)
    results = {r.name: r for r in DC.check_soundness(path)}
    assert [n for n, r in results.items() if r.status == DC.FAIL] == ["training_summary"]
    assert message in results["training_summary"].examples[0]


def test_training_summary_mask_statistics_are_checked_against_the_train_masks(sound, tmp_path):
    path = copy_of(sound, tmp_path)
    summary = summary_of(path)
    summary["mask_statistics"]["card_selection"]["max_legal_actions"] += 1
    summary["mask_statistics"]["gem_take3"]["avg_legal_actions"] *= 1.001
    write_summary(path, summary)
    result = {r.name: r for r in DC.check_soundness(path)}["training_summary"]
    assert result.status == DC.FAIL
    assert [e.split(" is ")[0] for e in result.examples] == [
        "card_selection max_legal_actions", "gem_take3 avg_legal_actions"
    ]


def test_a_dataset_without_training_summary_fails_its_check(sound, tmp_path):
    path = copy_of(sound, tmp_path)
    (path / "preprocessing_stats.json").unlink()
    assert "preprocessing_stats" not in load_dataset(path)
    assert failing(path) == ["training_summary"]


def test_a_column_name_missing_fails_shapes(sound, tmp_path):
    path = copy_of(sound, tmp_path)
    names = json.loads((path / "feature_names.json").read_text())
    (path / "feature_names.json").write_text(json.dumps(names[:-1]))
    assert "shapes" in failing(path)


def test_a_missing_file_fails_files_and_skips_the_rest(sound, tmp_path):
    path = copy_of(sound, tmp_path)
    (path / "masks_test.npz").unlink()
    got = statuses(path)
    assert got["files"] == DC.FAIL
    assert {got[n] for n in ALL_CHECKS[1:]} == {DC.SKIP}


def test_a_folder_without_a_dataset_is_not_found(tmp_path):
    with pytest.raises(DC.DatasetNotFoundError):
        DC.check_soundness(tmp_path)
    with pytest.raises(DC.DatasetNotFoundError):
        DC.check_soundness(tmp_path / "absent")


# --- learnability ------------------------------------------------------------------------------


def test_masked_softmax_learns_a_rule_and_never_predicts_an_illegal_class():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(3000, 6)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64) + 2 * (X[:, 1] > 1)  # classes 0..3
    legal = rng.random((3000, 4)) < 0.7
    legal[np.arange(3000), y] = True
    mu, sd = LN.input_scaling(X)
    Z = LN.standardise(X, mu, sd)
    W, b = LN.fit_masked_softmax(Z, y, legal, epochs=20, seed=0)
    model = LN.MaskedSoftmax(mu, sd, W, b)
    pred = model.predict(X, legal)
    assert legal[np.arange(3000), pred].all()
    assert (pred == y).mean() > 0.9
    # the same classifier with no input can only learn the class prior
    _, bias = LN.fit_masked_softmax(Z[:, :0], y, legal, epochs=20, seed=0)
    assert (np.where(legal, bias, -np.inf).argmax(axis=1) == y).mean() < 0.7


def test_baselines():
    train = np.array([1, 1, 1, 0])
    test = np.array([1, 0, 2])
    legal = np.array([[1, 1, 0], [1, 0, 1], [0, 0, 1]], dtype=bool)
    majority, uniform = LN.baselines(train, test, legal)
    assert majority == pytest.approx(1 / 3)
    assert uniform == pytest.approx((1 / 2 + 1 / 2 + 1) / 3)


def _margins(report: dict) -> dict[str, dict]:
    return {h["head"]: h for h in report["heads"]}


def _shuffled_train(ds: dict, seed: int = 1) -> dict:
    """The train labels shuffled across rows, each with its own row's mask (so every label
    stays legal): X out of step with its decisions."""
    perm = np.random.default_rng(seed).permutation(len(ds["X_train"]))
    out = dict(ds)
    out["labels_train"] = {h: v[perm] for h, v in ds["labels_train"].items()}
    out["masks_train"] = {h: v[perm] for h, v in ds["masks_train"].items()}
    return out


def test_learnability_tells_signal_from_shuffled_labels(greedy):
    """Measured on these 200 games (seed 5): action_type 0.857 against majority 0.561 and
    uniform-legal 0.321 (+0.30 over both); the masks-only classifier gets 0.853. Shuffled:
    0.829, below the masks-only 0.853. Mean margin over the heads +0.075 against -0.018."""
    ds = DC.open_dataset(greedy)
    real = _margins(LN.check_learnability(ds))
    at = real["action_type"]
    assert at["train_rows"] == len(ds["X_train"]) and at["test_rows"] == len(ds["X_test"])
    assert at["accuracy"] - max(at["majority"], at["uniform_legal"]) > 0.2
    assert real["card_selection"]["margin"] > 0.02
    assert real["gem_take2"]["margin"] > 0.1 and real["card_reservation"]["margin"] > 0.1
    real_mean = np.mean([h["margin"] for h in real.values()])
    assert real_mean > 0.04

    shuffled = _margins(LN.check_learnability(_shuffled_train(ds)))
    # the masks alone carry action_type: shuffled, the model is only as good as the masks-only
    # classifier (the plain majority and uniform baselines it still beats widely)
    assert shuffled["action_type"]["margin"] < 0.01
    assert shuffled["card_selection"]["margin"] < 0.01
    shuffled_mean = np.mean([h["margin"] for h in shuffled.values()])
    assert shuffled_mean < 0.01 and real_mean - shuffled_mean > 0.05


def test_learnability_is_seeded_and_samples_max_rows(greedy):
    ds = DC.open_dataset(greedy)
    a = LN.check_learnability(ds, max_rows=3000, epochs=2, seed=4)
    b = LN.check_learnability(ds, max_rows=3000, epochs=2, seed=4)
    assert a == b
    assert a["settings"]["train_rows_sampled"] == 3000
    assert a["settings"]["test_rows_sampled"] == min(3000, len(ds["X_test"]))
    assert _margins(a)["action_type"]["train_rows"] <= 3000


def test_shuffled_train_rows_are_out_of_step(greedy, tmp_path):
    """The shuffled dataset of the learnability test, saved: soundness sees it too."""
    path = copy_of(greedy, tmp_path)
    shuffled = _shuffled_train(DC.open_dataset(path))
    labels, masks = shuffled["labels_train"], shuffled["masks_train"]
    np.savez(path / "labels_train.npz", **labels)
    np.savez(path / "masks_train.npz", **masks)
    assert failing(path) == ["x_in_step"]


# --- command line ----------------------------------------------------------------------------


def test_cli_sound_dataset_exit_0_text_report(sound, capsys):
    code = main(["check", str(sound), "--no-progress", "--max-rows", "500", "--epochs", "1"])
    out = capsys.readouterr().out
    assert code == 0
    for name in ALL_CHECKS:
        assert f"PASS  {name}" in out
    for head in C.HEADS:
        assert f"\n  {head} " in out
    assert f"sound: {len(ALL_CHECKS)} checks passed, 0 failed, 0 skipped" in out


def test_cli_unsound_dataset_exit_1(sound, tmp_path, capsys):
    path = copy_of(sound, tmp_path)
    labels = read_npz(path / "labels_train.npz")
    np.savez(path / "labels_train.npz", **{h: np.roll(v, 1) for h, v in labels.items()})
    code = main(["check", str(path), "--no-progress", "--skip-learnability"])
    out = capsys.readouterr().out
    assert code == 1
    assert "FAIL  labels_in_masks" in out and f"NOT sound: {len(ALL_CHECKS) - 1} checks passed, 1 failed" in out
    assert "        - train row " in out  # an example under the failed check


def test_cli_json_report(sound, tmp_path, capsys):
    path = copy_of(sound, tmp_path)
    X = read_x(path, "val")
    X[0, 0] = np.nan
    np.save(path / "X_val.npy", X)
    code = main(["check", str(path), "--json", "--no-progress", "--max-rows", "400"])
    report = json.loads(capsys.readouterr().out)
    assert code == 1 and report["exit_code"] == 1 and report["sound"] is False
    assert [c["name"] for c in report["soundness"]] == ALL_CHECKS
    finite = report["soundness"][ALL_CHECKS.index("x_finite")]
    assert finite["status"] == "fail" and finite["per_split"]["val"]["non_finite_values"] == 1
    assert report["rows"] == {s: stats_of(path)["splits"][s]["rows"] for s in SPLITS}
    heads = report["learnability"]["heads"]
    assert [h["head"] for h in heads] == list(C.HEADS)
    assert report["learnability"]["settings"]["train_rows_sampled"] == 400
    assert all(0 <= h["accuracy"] <= 1 for h in heads if h["accuracy"] is not None)


def test_cli_default_dataset_is_the_configured_output(sound, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config.yaml").write_text(f"data:\n  processed_dir: {sound}\n")
    assert main(["check", "--no-progress", "--skip-learnability"]) == 0
    assert f"Dataset {sound}" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["{tmp}/absent"], "no dataset"),
        (["{tmp}"], "not a dataset"),
        (["{sound}", "--max-rows", "0"], "--max-rows must be at least 1"),
        (["{sound}", "--config", "{tmp}/missing.yaml"], None),
    ],
)
def test_cli_usage_errors_exit_2_one_line(sound, tmp_path, capsys, argv, message):
    argv = [a.format(tmp=tmp_path, sound=sound) for a in argv]
    if "--config" in argv:  # a config file that does not exist, no dataset argument
        argv = argv[argv.index("--config") :]
        message = "missing.yaml"
    code = main(["check", *argv, "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and message in err
    assert "Traceback" not in err


def test_bench_check_runs_on_a_dataset(sound, monkeypatch, capsys):
    """bench/check.py end to end (a fresh interpreter per run); figures printed, not judged."""
    monkeypatch.chdir(REPO_ROOT)  # the probe runs `python -m bench.check`
    monkeypatch.syspath_prepend(str(REPO_ROOT))  # `bench` is a folder, not installed
    from bench import check as bench_check

    bench_check.main([str(sound), "--max-rows", "300"])
    out = capsys.readouterr().out
    rows = sum(stats_of(sound)["splits"][s]["rows"] for s in SPLITS)
    assert f"({rows:,} rows x 1,304 columns" in out
    report = json.loads(out[out.index("[") :])
    assert report[0]["sound"] is True and report[0]["train_rows_sampled"] == 300
    assert report[0]["peak_rss_bytes"] > 0 and report[0]["wall_s"] > 0
