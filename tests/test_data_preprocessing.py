"""The full pipeline ``run_preprocessing``: job -> X -> split -> scaler -> atomic save.

The first tests stand in a synthetic job result for ``run_job`` (the pipeline's own logic:
summary, accounting, files written); the end-to-end tests run the real per-file step on the
legacy fixtures and on freshly simulated games, with one worker (in-process, fast).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from game_data import LEGACY_LOGS
from imitation_learning import data_preprocessing as DP
from imitation_learning import dataset as D
from imitation_learning.job import discovery
from imitation_learning.per_file import partition
from imitation_learning.per_file.results import FileResult
from splendor import columns as C
from splendor.errors import Rejection

LEGACY = LEGACY_LOGS
REPO = Path(__file__).resolve().parents[1]


def _config(data_root, out_dir, **preprocessing):
    return {
        "seed": 7,
        "data": {"data_root": str(data_root), "processed_dir": str(out_dir)},
        "preprocessing": {"num_workers": 1, **preprocessing},
    }


# --- the pipeline with a stand-in job ------------------------------------------------------


@pytest.fixture
def fake_job(monkeypatch, tmp_path):
    """discover_csv_files and the per-file step replaced: 12 games of 6 rows, one file each,
    a 13th file rejected whole and one row of the first file rejected."""
    from test_dataset import STRATEGIC_NAMES, make_inputs

    df, features, labels, masks = make_inputs(num_games=12, rows_per_game=6, seed=3)
    files = [str(tmp_path / "in" / f"{i}.csv") for i in range(13)]
    rejections = [
        Rejection(files[0], 3, "gems_board_red", "negative count"),
        Rejection(files[12], None, None, "header is not a game log", rows=4),
    ]
    result = FileResult(df, features, labels, masks, rejections, len(df) + 5, files[:12])
    calls = {"files": []}

    def fake_discover(root, max_games=None):
        calls["discover"] = (root, max_games)
        return files

    def fake_step(path, config):
        calls["files"].append(path)
        i = files.index(path)
        if i == 12:
            empty = slice(0, 0)
            return FileResult(
                df.iloc[empty].reset_index(drop=True),
                features[empty],
                {h: a[empty] for h, a in labels.items()},
                {h: a[empty] for h, a in masks.items()},
                [rejections[1]],
                4,
                [],
            )
        rows = slice(6 * i, 6 * i + 6)
        return FileResult(
            df.iloc[rows].reset_index(drop=True),
            features[rows],
            {h: a[rows] for h, a in labels.items()},
            {h: a[rows] for h, a in masks.items()},
            [rejections[0]] if i == 0 else [],
            7 if i == 0 else 6,
            [path],
        )

    monkeypatch.setattr(discovery, "discover_csv_files", fake_discover)
    monkeypatch.setattr(partition, "default_step", lambda: fake_step)
    monkeypatch.setattr(
        "imitation_learning.per_file.features.get_all_feature_names", lambda: list(STRATEGIC_NAMES)
    )
    return result, files, rejections, calls


def test_pipeline_summary_and_files(fake_job, tmp_path):
    result, files, rejections, calls = fake_job
    out = tmp_path / "processed"
    summary = DP.run_preprocessing(_config(tmp_path / "in", out, max_games=50), progress=False)
    assert calls["discover"] == (str(tmp_path / "in"), 50)
    assert calls["files"] == files  # every file through the per-file step, in order
    assert summary["files"] == 13 and summary["files_rejected"] == 1
    assert summary["rows_read"] == len(result.df) + 5 and summary["rows_rejected"] == 5
    assert sum(summary["rows_per_split"].values()) == len(result.df)
    assert summary["rows_per_split"]["val"] == summary["rows_per_split"]["test"] == 6
    assert summary["output_dir"] == str(out) and summary["dashboard_link"] is None
    assert summary["rejections"] == [r.to_dict() for r in rejections]
    assert summary["wall_time_s"] > 0
    assert summary["rows_per_s"] == pytest.approx(summary["rows_read"] / summary["wall_time_s"])

    ds = D.load_dataset(out)
    assert [len(ds[f"X_{s}"]) for s in D.SPLITS] == [summary["rows_per_split"][s] for s in D.SPLITS]
    stats = ds["stats"]
    assert stats["config"]["seed"] == 7 and stats["config"]["data"]["processed_dir"] == str(out)
    assert stats["rejected_files"] == [rejections[1].to_dict()]
    assert stats["rejected_rows"] == [rejections[0].to_dict()]
    assert ds["rejections"] == summary["rejections"]
    assert [f["path"] for f in stats["input_files"]] == files
    assert {"processing_s", "plan_s", "write_s", "total_s"} <= set(stats["timings"])
    # the split is the documented function of the game ids and the seed
    expected = D.split_by_game(result.df["game_id"].to_numpy(), (0.8, 0.1, 0.1), seed=7)
    for s in D.SPLITS:
        np.testing.assert_array_equal(
            ds[f"labels_{s}"]["action_type"], result.labels["action_type"][expected[s]]
        )


def test_pipeline_rerun_gives_same_arrays(fake_job, tmp_path):
    out = tmp_path / "processed"
    DP.run_preprocessing(_config(tmp_path / "in", out), progress=False)
    first = {p.name: p.read_bytes() for p in out.iterdir() if p.name != "stats.json"}
    DP.run_preprocessing(_config(tmp_path / "in", out), progress=False)
    second = {p.name: p.read_bytes() for p in out.iterdir() if p.name != "stats.json"}
    assert first == second  # stats.json differs only by its timings
    assert sorted(p.name for p in tmp_path.iterdir()) == ["processed"]


def test_pipeline_rejects_bad_config(tmp_path):
    from imitation_learning.config import ConfigError

    bad = _config(tmp_path, tmp_path / "out")
    bad["data"]["train_ratio"] = 0.95
    with pytest.raises(ConfigError):
        DP.run_preprocessing(bad, progress=False)
    assert not (tmp_path / "out").exists()


# --- end to end ----------------------------------------------------------------------------


def _check_dataset(out: Path, summary: dict) -> dict:
    ds = D.load_dataset(out)
    names = ds["feature_names"]
    kinds = ds["stats"]["feature_kinds"]
    assert len(names) == len(set(names)) == ds["stats"]["num_features"]
    game_sets = []
    for s in D.SPLITS:
        X = ds[f"X_{s}"]
        assert X.dtype == np.float32 and X.shape == (summary["rows_per_split"][s], len(names))
        assert np.isfinite(X).all()
        for h, k in C.HEADS.items():
            lab, msk = ds[f"labels_{s}"][h], ds[f"masks_{s}"][h]
            assert lab.dtype == np.int16 and msk.dtype == bool and msk.shape == (len(X), k)
            ok = lab >= 0
            assert msk[np.flatnonzero(ok), lab[ok]].all()  # every label legal in its mask
        game_sets.append(ds["stats"]["splits"][s]["games"])
        # binary columns (flags, bonus one-hots) and one-hots hold only 0/1 after saving
        flags = [i for i, n in enumerate(names) if kinds[n] in (D.BINARY, D.ONEHOT)]
        assert np.isin(X[:, flags], (0.0, 1.0)).all()
    assert ds["stats"]["rows_kept"] == sum(summary["rows_per_split"].values())
    assert summary["rows_read"] == ds["stats"]["rows_kept"] + summary["rows_rejected"]
    return ds


def test_end_to_end_legacy_fixtures(tmp_path):
    root = tmp_path / "logs"
    shutil.copytree(LEGACY, root)
    out = tmp_path / "processed"
    cfg = _config(root, out)
    cfg["reader"] = {"blind_reserve_base": 11}
    cfg["data"].update(train_ratio=0.6, val_ratio=0.2, test_ratio=0.2)
    summary = DP.run_preprocessing(cfg, progress=False)
    assert summary["files"] == 6 and summary["files_rejected"] == 0
    assert summary["rows_rejected"] == 0 and summary["rejections"] == []
    assert all(summary["rows_per_split"][s] > 0 for s in D.SPLITS)
    ds = _check_dataset(out, summary)
    assert [ds["stats"]["splits"][s]["games"] for s in D.SPLITS] == [4, 1, 1]
    by_players = ds["stats"]["splits"]
    assert sum(by_players[s]["by_num_players"]["4"]["games"] for s in D.SPLITS) == 2


def test_end_to_end_simulated_games_with_a_bad_file(tmp_path):
    from splendor.simulate import simulate

    root = tmp_path / "games"
    simulate(12, (2, 3, 4), "random", 5, root, progress=False)
    bad = root / "2_games" / "999999.csv"
    bad.write_text("not,a,game,log\n1,2,3,4\n")
    out = tmp_path / "processed"
    summary = DP.run_preprocessing(_config(root, out), progress=False)
    assert summary["files"] == 13 and summary["files_rejected"] == 1
    assert any(r["file"].endswith("999999.csv") for r in summary["rejections"])
    ds = _check_dataset(out, summary)
    assert ds["stats"]["rejected_files"][0]["file"].endswith("999999.csv")
    assert sum(ds["stats"]["splits"][s]["games"] for s in D.SPLITS) == 12
    # continuous train columns are standardised
    kinds = np.array([ds["stats"]["feature_kinds"][n] for n in ds["feature_names"]])
    cont = ds["X_train"][:, kinds == D.CONTINUOUS].astype(np.float64)
    np.testing.assert_allclose(cont.mean(axis=0), 0, atol=1e-4)


def test_the_command_line_is_splendor_il(tmp_path):
    """One command line: ``splendor-il preprocess`` (the module has no second one)."""
    root = tmp_path / "logs"
    shutil.copytree(LEGACY, root)
    cfg = tmp_path / "config.yaml"
    cfg.write_text(
        f"data:\n  data_root: {root}\n  processed_dir: {tmp_path / 'out'}\n"
        "preprocessing:\n  num_workers: 1\nreader:\n  blind_reserve_base: 11\n"
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "splendor_il.cli",
            "preprocess",
            "--config",
            str(cfg),
            "--no-progress",
            "--no-cache",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "files:          6 (0 rejected)" in proc.stdout
    assert not hasattr(DP, "main")
    assert D.load_dataset(tmp_path / "out")["stats"]["rows_rejected"] == 0


def test_same_dataset_in_process_and_on_a_cluster(tmp_path, dask_scheduler_address):
    root = tmp_path / "logs"
    shutil.copytree(LEGACY, root)
    outputs = {}
    for name, extra in (
        ("local", {"num_workers": 1}),
        ("cluster", {"num_workers": 2, "scheduler_address": dask_scheduler_address}),
    ):
        cfg = _config(root, tmp_path / name)
        cfg["preprocessing"].update(extra, files_per_partition=2)
        cfg["reader"] = {"blind_reserve_base": 11}
        DP.run_preprocessing(cfg, progress=False)
        outputs[name] = {
            p.name: p.read_bytes() for p in (tmp_path / name).iterdir() if p.name != "stats.json"
        }
    assert outputs["local"] == outputs["cluster"]
    stats = [D.load_dataset(tmp_path / n)["stats"] for n in ("local", "cluster")]
    for s in stats:
        del s["timings"], s["config"]
    assert stats[0] == stats[1]
