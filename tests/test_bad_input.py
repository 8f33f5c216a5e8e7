"""Bad input never crashes the job and never loses data silently.

The corpus (``tests/bad_corpus.py``, committed under ``tests/data/bad/``, plus the inputs
made at test time) is mixed with good bundled games in one data root; the job must reject
each bad input precisely, keep every good row, and account for every file and row.

Unreadable file: the tests run as root, for whom ``chmod 000`` does not stop a read, so the
refusal is simulated in-process: ``open`` in ``splendor.log_layout`` is replaced, for that
one path, by a function raising ``PermissionError`` (EACCES) the way the OS would; the job
runs with one worker, in this process, so the patch applies to it.
"""

from __future__ import annotations

import builtins
import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bad_corpus import CORPUS_ROOT, Expected, Game, build_corpus, make_runtime_entries
from imitation_learning import parallel_processor as pp
from imitation_learning.dataset import load_dataset
from imitation_learning.job import executors
from imitation_learning.per_file import partition
from imitation_learning.per_file.file_processing import StrictModeError, process_game_log
from splendor import log_layout
from splendor_il.cli import main

REPO = Path(__file__).resolve().parents[1]
BUNDLED = REPO / "data" / "games"
ENTRIES = {e.name: e for e in build_corpus()}
UNREADABLE = "2_games/910040.csv"
VANISHING = "2_games/910041.csv"


def good_files() -> list[Path]:
    """Two bundled games per player count."""
    return [f for n in (2, 3, 4) for f in sorted((BUNDLED / f"{n}_games").glob("*.csv"))[:2]]


def make_root(root: Path) -> list:
    """Corpus + test-time inputs + good games under ``root``; return the test-time entries."""
    shutil.copytree(CORPUS_ROOT, root)
    for f in good_files():
        shutil.copy(f, root / f.parent.name / f.name)
    runtime = make_runtime_entries(root)
    for rel, game_id in ((UNREADABLE, 910040), (VANISHING, 910041)):
        (root / rel).write_bytes(Game(BUNDLED / "2_games" / "2026000001.csv", game_id).bytes())
    return runtime


class DeniedOpen:
    """``open`` for ``splendor.log_layout``: EACCES for one path, the real open otherwise."""

    def __init__(self, denied: Path):
        self.denied = os.fspath(denied)

    def __call__(self, file, *args, **kwargs):
        if os.fspath(file) == self.denied:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), self.denied)
        return builtins.open(file, *args, **kwargs)


@pytest.fixture(scope="module")
def mixed_run(tmp_path_factory):
    """The job (one worker, in this process) over a data root of good and bad inputs."""
    root = tmp_path_factory.mktemp("mixed") / "games"
    runtime = make_root(root)
    files = pp.discover_csv_files(root)
    os.remove(root / VANISHING)  # disappears between discovery and reading
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(log_layout, "open", DeniedOpen(root / UNREADABLE), raising=False)
        run = pp.run_job(files, {"preprocessing": {"num_workers": 1}}, progress=False)
    expected = {e.path: e.expected for e in [*ENTRIES.values(), *runtime]}
    expected[UNREADABLE] = [Expected(None, None, "unreadable: Permission denied")]
    expected[VANISHING] = [Expected(None, None, "unreadable: No such file or directory")]
    return root, files, run.result, expected


def _rel(root: Path, path: str) -> str:
    return os.path.relpath(path, root)


def test_committed_corpus_is_what_the_generator_writes():
    on_disk = {
        p.relative_to(CORPUS_ROOT).as_posix(): p.read_bytes()
        for p in CORPUS_ROOT.rglob("*")
        if p.is_file()
    }
    assert on_disk == {e.path: e.data for e in ENTRIES.values()}
    assert sum(map(len, on_disk.values())) < 2_000_000  # the multi-MB junk is made at test time


def test_every_bad_input_has_its_exact_rejections(mixed_run):
    root, files, result, expected = mixed_run
    found: dict[str, list] = {}
    for r in result.rejections:
        found.setdefault(_rel(root, r.file), []).append(r)
    # every rejection belongs to a bad input (good files have none), and each bad input
    # has exactly the rejections expected, in order
    assert set(found) == {path for path, exp in expected.items() if exp}
    for path, exp in expected.items():
        got = found.get(path, [])
        assert len(got) == len(exp), (path, got)
        for e, r in zip(exp, got, strict=True):
            assert e.matches(r), (path, e, r)
    assert len(expected) >= 24


def test_accounting_files_and_rows(mixed_run):
    root, files, result, expected = mixed_run
    file_level = [r for r in result.rejections if r.file_level]
    assert len(files) == len(result.files_ok) + len(file_level)
    assert sorted(result.files_ok + [r.file for r in file_level]) == sorted(files)
    assert result.rows_read == len(result.df) + sum(r.rows for r in result.rejections)
    # rows read = the non-blank lines after the first of every file that could be read
    expected_rows = 0
    for f in files:
        p = Path(f)
        if p.is_file() and _rel(root, f) != UNREADABLE:
            lines = [line.rstrip(b"\r") for line in p.read_bytes().split(b"\n")]
            expected_rows += max(sum(1 for line in lines if line) - 1, 0)
    assert result.rows_read == expected_rows


def _rows_of(result, game_ids) -> dict:
    keep = np.isin(result.df["game_id"].to_numpy(), list(game_ids))
    return {
        "df": result.df[keep].reset_index(drop=True),
        "features": result.features[keep],
        **{f"label_{h}": v[keep] for h, v in result.labels.items()},
        **{f"mask_{h}": v[keep] for h, v in result.masks.items()},
    }


def _assert_same(left: dict, right: dict) -> None:
    assert left.keys() == right.keys()
    for key in left:
        if key == "df":
            pd.testing.assert_frame_equal(left[key], right[key], check_exact=True)
        else:
            np.testing.assert_array_equal(left[key], right[key], err_msg=key)


def test_good_files_are_all_in_the_output(mixed_run):
    root, files, result, _ = mixed_run
    good = [str(root / f.parent.name / f.name) for f in good_files()]
    alone = pp.run_job(good, {"preprocessing": {"num_workers": 1}}, progress=False).result
    assert len(alone) == alone.rows_read > 0 and alone.rejections == []
    ids = {int(Path(f).stem) for f in good}
    _assert_same(_rows_of(result, ids), _rows_of(alone, ids))


def test_good_rows_of_partly_bad_files_are_all_in_the_output(mixed_run, tmp_path):
    root, files, result, _ = mixed_run
    checked = 0
    for entry in ENTRIES.values():
        if entry.source is None:
            continue
        game_id = int(Path(entry.path).stem)
        clean = tmp_path / f"{entry.name}.csv"
        clean.write_bytes(Game(entry.source, game_id).bytes())
        whole = process_game_log(clean, {})
        assert whole.rejections == []
        rows = np.asarray(entry.kept_lines) - 2  # data line -> row of the clean file
        sub = pp.FileResult(
            whole.df.iloc[rows].reset_index(drop=True),
            whole.features[rows],
            {h: v[rows] for h, v in whole.labels.items()},
            {h: v[rows] for h, v in whole.masks.items()},
        )
        _assert_same(_rows_of(result, {game_id}), _rows_of(sub, {game_id}))
        checked += 1
    assert checked == 14  # 12 partly bad files + the 2 kept copies of duplicated games


def test_same_game_twice_keeps_the_earlier_file(mixed_run):
    root, files, result, _ = mixed_run
    ok = {_rel(root, f) for f in result.files_ok}
    assert {"3_games/910017.csv", "3_games/910018.csv"} <= ok
    assert not {"4_games/910017.csv", "3_games/910019.csv"} & ok
    counts = result.df["game_id"].value_counts()
    assert counts[910017] == counts[910018] == len(Game(ENTRIES["game_id_first"].source, 0).rows)
    # rejected whole, all its rows counted
    (dup,) = [r for r in result.rejections if _rel(root, r.file) == "4_games/910017.csv"]
    assert dup.rows == counts[910017]


def test_reject_duplicate_games_unit():
    from test_parallel_processor import _fake_result

    a = _fake_result([(1, 1)] * 2, [pp.Rejection("a", 5, "x", "bad")], 3, ["a"])
    b = _fake_result([(2, 2)] * 3, [pp.Rejection("b", 2, "x", "bad row")], 4, ["b"])
    result = pp.FileResult.concat([a, b])
    index = [("a", 3, 2, [7]), ("b", 4, 3, [7])]
    out = pp.reject_duplicate_games(result, index)
    assert len(out) == 2 and out.files_ok == ["a"]
    assert [(r.file, r.line, r.rows) for r in out.rejections] == [("a", 5, 1), ("b", None, 4)]
    out.check_accounting()  # 7 read = 2 kept + 1 + 4
    assert pp.reject_duplicate_games(result, [("a", 3, 2, [7]), ("b", 4, 3, [8])]) is result
    with pytest.raises(AssertionError, match="covers 2 rows"):
        pp.reject_duplicate_games(result, index[:1])


# --- the pipeline, the run report, the CLI -------------------------------------------------


def _denied(monkeypatch, root: Path) -> None:
    monkeypatch.setattr(log_layout, "open", DeniedOpen(root / UNREADABLE), raising=False)


def test_cli_exit_0_with_rejections_and_the_report_saved(tmp_path, monkeypatch, capsys):
    root = tmp_path / "games"
    make_root(root)
    _denied(monkeypatch, root)
    os.remove(root / VANISHING)  # gone before discovery here: simply not there
    out = tmp_path / "out"
    argv = ["preprocess", "--data-root", str(root), "--output", str(out)]
    assert main([*argv, "--num-workers", "1", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    report = json.loads((out / "rejections.json").read_text())
    stats = json.loads((out / "stats.json").read_text())
    file_level = [r for r in report if r["line"] is None]
    rows_rejected = sum(r["rows"] for r in report)
    files = len(pp.discover_csv_files(root))
    assert f"files:          {files} ({len(file_level)} rejected)" in printed
    assert f"({rows_rejected} rejected)" in printed and "first rejection: " in printed
    assert str(out / "rejections.json") in printed
    # the report is complete: every rejection, with file, line, column, reason and rows
    assert len(report) == sum(len(e.expected) for e in ENTRIES.values()) + 3 + 1
    assert all(set(r) == {"file", "line", "column", "reason", "rows"} for r in report)
    assert stats["rows_rejected"] == rows_rejected
    assert stats["rejected_files"] == file_level
    ds = load_dataset(out)
    kept = sum(len(ds[f"X_{s}"]) for s in ("train", "val", "test"))
    assert stats["rows_read"] == kept + rows_rejected


def test_cli_strict_stops_at_the_first_rejection(tmp_path, monkeypatch, capsys):
    root = tmp_path / "games"
    make_root(root)
    seen = []
    real = partition.default_step()

    def counting(path, config):
        seen.append(path)
        return real(path, config)

    monkeypatch.setattr(partition, "default_step", lambda: counting)
    out = tmp_path / "out"
    argv = ["preprocess", "--data-root", str(root), "--output", str(out), "--strict"]
    assert main([*argv, "--num-workers", "1", "--no-progress"]) == 3
    err = capsys.readouterr().err
    first = pp.discover_csv_files(root)[0]  # 2_games/2026000000.csv is good; then 910001
    assert f"--strict: input rejected: {root}/2_games/910001.csv: empty file" in err
    assert seen == pp.discover_csv_files(root)[: seen.index(str(root / "2_games/910001.csv")) + 1]
    assert len(seen) < len(pp.discover_csv_files(root)) and first in seen
    assert not out.exists() and not list(tmp_path.glob(".out*"))  # no dataset written


def test_strict_duplicate_game_stops_before_saving(tmp_path, capsys):
    root = tmp_path / "games"
    for rel in ("3_games/910017.csv", "4_games/910017.csv"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(CORPUS_ROOT / rel, root / rel)
    out = tmp_path / "out"
    argv = ["preprocess", "--data-root", str(root), "--output", str(out), "--strict"]
    assert main([*argv, "--num-workers", "1", "--no-progress"]) == 3
    err = capsys.readouterr().err
    assert f"{root}/4_games/910017.csv, column 'game_id': same game_id 910017 as" in err
    assert not out.exists()


def test_strict_on_a_cluster_cancels_and_carries_the_rejection(tmp_path, dask_scheduler_address):
    root = tmp_path / "games"
    make_root(root)
    files = pp.discover_csv_files(root)
    cfg = {
        "preprocessing": {
            "strict": True,
            "scheduler_address": dask_scheduler_address,
            "files_per_partition": 1,
        }
    }
    with pytest.raises(StrictModeError) as info:
        pp.run_job(files, cfg, progress=False)
    rejection = info.value.rejection
    assert rejection.file in files and str(rejection) in str(info.value)
    # the session cluster is left clean: the scheduler lets go of every task of the job
    # once it has seen the job's client leave (a task never released hangs here until
    # pytest-timeout fails the test)
    from distributed import Client

    with Client(dask_scheduler_address) as client:
        while client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks)):
            time.sleep(0.05)


@pytest.mark.parametrize(
    ("config_text", "flags", "message"),
    [
        ("data:\n  train_ratios: 0.8\n", [], "unknown key 'data.train_ratios'"),
        ("preprocessing:\n  num_workers: two\n", [], "'preprocessing.num_workers' must be"),
        ("data:\n  train_ratio: 0.7\n", [], "must sum to 1, got 0.9"),
        ("preprocessing:\n  num_workers: 0\n", [], "'preprocessing.num_workers' must be at least"),
        ("", ["--data-root", "no/such/root"], "data root 'no/such/root' not found"),
    ],
)
def test_config_errors_exit_2_with_one_clear_message(
    config_text, flags, message, tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data" / "games" / "2_games").mkdir(parents=True)
    shutil.copy(good_files()[0], tmp_path / "data" / "games" / "2_games")
    (tmp_path / "c.yaml").write_text(config_text)
    started = []
    monkeypatch.setattr(executors, "pool_client", lambda *a, **k: started.append(1))
    monkeypatch.setattr(partition, "default_step", lambda: started.append(1))
    assert main(["preprocess", "--config", "c.yaml", *flags]) == 2
    err = capsys.readouterr().err
    assert message in err and not started
    assert err.count("  - ") <= 1 and err.strip().count("\n") <= 1  # one problem, one message
    assert "Traceback" not in err


# --- a run killed while saving -------------------------------------------------------------

_HOOKED_RUN = r"""
import os, sys, time
from pathlib import Path
from imitation_learning.dataset import atomic_dir, npz_pieces

point = sys.argv[1]

def stop_here():
    print("in save", flush=True)
    time.sleep(600)  # the SIGKILL arrives here

if point == "writing":  # a half-written array in the temporary folder
    real = npz_pieces.seal
    def seal(path, layout, pieces):
        if Path(path).name == "masks_val.npz":
            with open(path, "wb") as fh:
                fh.write(b"PK\x03\x04 half an archive")
            stop_here()
        real(path, layout, pieces)
    npz_pieces.seal = seal
elif point == "swap":  # between the two renames: the previous dataset moved aside
    real_rename = os.rename
    def rename(src, dst):
        real_rename(src, dst)
        if ".old-" in os.path.basename(dst):
            stop_here()
    atomic_dir.os.rename = rename

from splendor_il.cli import main
sys.exit(main(["preprocess", *sys.argv[2:]]))
"""


def _arrays(out: Path) -> dict:
    ds = load_dataset(out)
    arrays = {}
    for split in ("train", "val", "test"):
        arrays[f"X_{split}"] = ds[f"X_{split}"]
        n = ds["stats"]["splits"][split]["rows"]
        assert len(ds[f"X_{split}"]) == n  # all arrays full
        for kind in ("labels", "masks"):
            for head, a in ds[f"{kind}_{split}"].items():
                assert len(a) == n
                arrays[f"{kind}_{split}_{head}"] = a
    return arrays


@pytest.mark.parametrize("point", ["writing", "swap"])
def test_run_killed_while_saving_leaves_the_previous_dataset(point, tmp_path):
    root = tmp_path / "games"
    (root / "2_games").mkdir(parents=True)
    for f in good_files()[:2]:
        shutil.copy(f, root / "2_games")
    out = tmp_path / "out"
    flags = ["--data-root", str(root), "--output", str(out), "--num-workers", "1"]
    flags += ["--no-progress", "--no-cache"]  # the same command must save again
    assert main(["preprocess", *flags]) == 0
    before = _arrays(out)
    before_bytes = {p.name: p.read_bytes() for p in out.iterdir()}

    proc = subprocess.Popen(
        [sys.executable, "-c", _HOOKED_RUN, point, *flags],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        said = []
        for line in proc.stdout:  # blocks until the run is stopped in the save (or ends)
            said.append(line)
            if line == "in save\n":
                break
        assert said and said[-1] == "in save\n", "".join(said)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL

    if point == "writing":  # the target is the previous dataset, byte for byte
        assert {p.name: p.read_bytes() for p in out.iterdir()} == before_bytes
        _assert_same_arrays(_arrays(out), before)
    else:  # the target is absent; the previous dataset is intact beside it
        assert not out.exists()
        (aside,) = tmp_path.glob(".out.old-*")
        assert {p.name: p.read_bytes() for p in aside.iterdir()} == before_bytes
    # never a truncated array where a dataset is read; the re-run recovers, same arrays
    assert main(["preprocess", *flags]) == 0
    _assert_same_arrays(_arrays(out), before)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".out")) == []


def _assert_same_arrays(left: dict, right: dict) -> None:
    assert left.keys() == right.keys()
    for key in left:
        np.testing.assert_array_equal(left[key], right[key], err_msg=key)
