"""`splendor-il preprocess`: flags over the config, validation first, exit codes, summary."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from imitation_learning import cluster
from imitation_learning import parallel_processor as pp
from imitation_learning.config import DEFAULT_CONFIG
from splendor_il import preprocess_cli as il_cli
from splendor_il.cli import build_parser, main

REPO_ROOT = Path(__file__).resolve().parents[1]
BUNDLED = REPO_ROOT / "data" / "games"


def parse(*argv: str):
    return build_parser().parse_args(["preprocess", *argv])


@pytest.fixture
def small_games(tmp_path) -> Path:
    """Four bundled games (two 2-player, two 3-player) in a fresh data root."""
    root = tmp_path / "games"
    for players in (2, 3):
        (root / f"{players}_games").mkdir(parents=True)
        for f in sorted((BUNDLED / f"{players}_games").glob("*.csv"))[:2]:
            shutil.copy(f, root / f"{players}_games" / f.name)
    return root


def damage_one_row(root: Path) -> Path:
    """Put a non-number in line 4 of the first game; return that file."""
    first = pp.discover_csv_files(root)[0]
    lines = Path(first).read_text().splitlines()
    cells = lines[3].split(",")
    cells[6] = "oops"
    lines[3] = ",".join(cells)
    Path(first).write_text("\n".join(lines) + "\n")
    return Path(first)


def test_flags_override_the_config_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no ./config.yaml here
    cfg_file = tmp_path / "my.yaml"
    cfg_file.write_text(
        "seed: 7\ndata:\n  data_root: from_file\npreprocessing:\n  num_workers: 3\n  max_games: 9\n"
    )
    cfg = il_cli.build_config(
        parse(
            "--config",
            str(cfg_file),
            "--data-root",
            "flag_root",
            "--num-workers",
            "2",
            "--scheduler-address",
            "tcp://10.0.0.1:8786",
            "--dashboard-address",
            "127.0.0.1:9999",
            "--report",
            "r.html",
            "--output",
            "out_dir",
            "--strict",
        )
    )
    assert cfg.seed == 7  # from the file
    assert cfg.preprocessing.max_games == 9  # from the file, no flag
    assert cfg.data.data_root == "flag_root"
    assert cfg.data.processed_dir == "out_dir"
    pre = cfg.preprocessing
    assert pre.num_workers == 2 and pre.scheduler_address == "tcp://10.0.0.1:8786"
    assert pre.dashboard_address == "127.0.0.1:9999" and pre.report == "r.html"
    assert pre.strict is True
    assert cfg.data.train_ratio == 0.8  # defaults fill the rest


def test_default_config_is_dot_config_yaml_else_defaults(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert il_cli.build_config(parse()).as_dict() == DEFAULT_CONFIG
    (tmp_path / "config.yaml").write_text("preprocessing:\n  max_games: 4\n")
    cfg = il_cli.build_config(parse("--max-games", "3"))
    assert cfg.preprocessing.max_games == 3
    assert il_cli.build_config(parse()).preprocessing.max_games == 4


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--num-workers", "0"], "'preprocessing.num_workers' must be at least 1"),
        (["--max-games", "0"], "'preprocessing.max_games' must be at least 1"),
        (["--data-root", "no/such/folder"], "data root 'no/such/folder' not found"),
    ],
)
def test_usage_errors_exit_2_before_any_work(argv, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    called = []
    monkeypatch.setattr(
        "imitation_learning.data_preprocessing.run_preprocessing", lambda *a, **k: called.append(1)
    )
    assert main(["preprocess", *argv]) == 2
    assert message in capsys.readouterr().err
    assert not called


def test_bad_config_file_exits_2_with_every_problem(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    bad = tmp_path / "bad.yaml"
    bad.write_text("data:\n  train_ratio: 0.5\npreprocessing:\n  num_worker: 2\n")
    assert main(["preprocess", "--config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "bad.yaml" in err and "'preprocessing.num_worker'" in err
    bad.write_text("data:\n  train_ratio: 0.5\n")
    assert main(["preprocess", "--config", str(bad)]) == 2
    assert "sum to 1" in capsys.readouterr().err


def test_empty_data_root_exits_2(tmp_path, capsys):
    (tmp_path / "games").mkdir()
    assert main(["preprocess", "--data-root", str(tmp_path / "games")]) == 2
    assert "no game file" in capsys.readouterr().err


def test_unreachable_scheduler_exits_2(small_games, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cluster, "CONNECT_TIMEOUT_S", 1)
    argv = ["preprocess", "--data-root", str(small_games), "--output", str(tmp_path / "out")]
    argv += ["--scheduler-address", "tcp://127.0.0.1:9", "--no-progress"]
    assert main(argv) == 2
    assert "cannot reach the Dask scheduler at 'tcp://127.0.0.1:9'" in capsys.readouterr().err


def test_rejections_are_counted_and_strict_exits_3(small_games, tmp_path, capsys):
    damaged = damage_one_row(small_games)
    out = tmp_path / "out"
    argv = ["preprocess", "--data-root", str(small_games), "--output", str(out)]
    argv += ["--num-workers", "1", "--no-progress"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "files:          4 (0 rejected)" in printed
    assert "(1 rejected)" in printed
    assert f"first rejection: {damaged}, line 4" in printed
    assert (out / "X_train.npy").is_file()

    strict_out = tmp_path / "strict-out"
    argv[argv.index(str(out))] = str(strict_out)
    assert main([*argv, "--strict"]) == 3
    captured = capsys.readouterr()
    assert "--strict" in captured.err and f"{damaged}, line 4" in captured.err
    assert not strict_out.exists()  # the first rejection stopped the job before the save


@pytest.mark.slow
def test_no_argument_runs_on_data_games(tmp_path):
    """`splendor-il preprocess` with no argument, from a folder holding data/games: all
    the games, one worker per core (a local cluster when there is more than one core)."""
    shutil.copytree(BUNDLED, tmp_path / "data" / "games")
    done = subprocess.run(
        [sys.executable, "-m", "splendor_il.cli", "preprocess"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr
    files = pp.discover_csv_files(BUNDLED)
    rows = sum(len(Path(f).read_text().splitlines()) - 1 for f in files)
    assert f"files:          {len(files)} (0 rejected)" in done.stdout
    assert f"rows read:      {rows} (0 rejected)" in done.stdout
    assert "rows per split: train " in done.stdout and "rows/s" in done.stdout
    out = tmp_path / "data" / "processed"
    assert "output:         data/processed" in done.stdout
    cores = os.cpu_count() or 1
    if cores > 1:
        assert f"on a pool of {cores} worker processes (local cluster)" in done.stderr
        assert "Dask dashboard: http://127.0.0.1:" in done.stderr
    else:  # one worker: in this process, no cluster
        assert "Dask dashboard" not in done.stderr
    sizes = {s: len(np.load(out / f"X_{s}.npy", mmap_mode="r")) for s in ("train", "val", "test")}
    assert sum(sizes.values()) == rows
    stats = json.loads((out / "stats.json").read_text())  # the manifest written by the pipeline
    assert stats["rows_read"] == stats["rows_kept"] == rows and stats["rows_rejected"] == 0
    assert {s: stats["splits"][s]["rows"] for s in sizes} == sizes
    inputs = [f["path"] for f in stats["input_files"]]
    assert inputs == [os.path.join("data", "games", os.path.relpath(f, BUNDLED)) for f in files]
    assert stats["config"]["data"]["data_root"] == "data/games"
