"""Every user error of ``splendor-il preprocess`` stops before any work, on one line.

Each case runs the real command line (a subprocess, clean Dask environment) and checks: exit
code 2, stderr is exactly one line naming the problem and the fix, no ``Traceback``, no file
processed (the job's pool line is never printed) and nothing of the user's changed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import DATA_GAMES

CLI = [sys.executable, "-c", "import sys; from splendor_il.cli import main; sys.exit(main())"]


def run_cli(*argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DASK_")}
    return subprocess.run(
        [*CLI, "preprocess", "--no-progress", "--num-workers", "1", *map(str, argv)],
        capture_output=True, text=True, timeout=120, env=env, cwd=cwd,
    )


def assert_one_line_usage_error(proc, *needles: str) -> str:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert proc.stdout == ""  # no summary: nothing ran
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def _not_a_dataset(tmp: Path) -> list[str]:
    out = tmp / "notes"
    out.mkdir()
    (out / "mine.txt").write_text("keep me")
    return ["--output", str(out)]


def _output_is_a_file(tmp: Path) -> list[str]:
    (tmp / "out.txt").write_text("keep me")
    return ["--output", str(tmp / "out.txt")]


CASES = {
    # name: (arguments given a fresh tmp folder, words the message must hold)
    "output holds other files": (_not_a_dataset, ["holds files that are not a saved dataset"]),
    "output is a file": (_output_is_a_file, ["is a file, not a folder"]),
    "output parent missing": (
        lambda tmp: ["--output", str(tmp / "no" / "such" / "processed")],
        ["does not exist", "mkdir -p"],
    ),
    "output parent not writable": (
        lambda tmp: ["--output", "/proc/splendor-il-out"],  # even root cannot write there
        ["cannot write in", "/proc"],
    ),
    "data root missing": (
        lambda tmp: ["--data-root", str(tmp / "nowhere")],
        ["data root", "not found"],
    ),
    "data root without games": (
        lambda tmp: ["--data-root", str(tmp)],
        ["no game file", "{2,3,4}_games"],
    ),
    "config file missing": (
        lambda tmp: ["--config", str(tmp / "missing.yaml")],
        ["configuration file", "not found"],
    ),
    "config not YAML": (
        lambda tmp: (tmp / "bad.yaml").write_text("data: [unclosed\n") and ["--config", str(tmp / "bad.yaml")],
        ["not valid YAML"],
    ),
    "config with an unknown key": (
        lambda tmp: (tmp / "c.yaml").write_text("bogus: 1\n") and ["--config", str(tmp / "c.yaml")],
        ["invalid configuration", "unknown key 'bogus'"],
    ),
    "config with two bad values": (
        lambda tmp: (tmp / "c.yaml").write_text("data:\n  train_ratio: 2\n  val_ratio: -1\n")
        and ["--config", str(tmp / "c.yaml")],
        ["invalid configuration", "train_ratio", "val_ratio"],
    ),
    "malformed scheduler address": (
        lambda tmp: ["--scheduler-address", "tcp//nowhere"],
        ["scheduler address", "tcp://host:port"],
    ),
    "unreachable scheduler": (
        lambda tmp: ["--scheduler-address", "tcp://127.0.0.1:9"],
        ["cannot reach the Dask scheduler", "tcp://127.0.0.1:9"],
    ),
    "workers not a number": (lambda tmp: ["--num-workers", "two"], ["--num-workers", "--help"]),
    "zero workers": (lambda tmp: ["--num-workers", "0"], ["num_workers", "at least 1"]),
    "zero games": (lambda tmp: ["--max-games", "0"], ["max_games", "at least 1"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_user_error_is_one_line_before_any_work(case, tmp_path):
    make_args, needles = CASES[case]
    work = tmp_path / "work"
    work.mkdir()
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    args = make_args(work)
    created = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    defaults = [] if "--data-root" in args else ["--data-root", str(DATA_GAMES)]
    defaults += [] if "--output" in args else ["--output", str(work / "processed")]
    proc = run_cli(*defaults, *args, cwd=work)
    assert_one_line_usage_error(proc, *needles)
    assert "files on a pool" not in proc.stderr
    after = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    assert after == created and set(before) <= set(after)
    for path in tmp_path.rglob("*.txt"):
        assert path.read_text() == "keep me"


def test_pipeline_refuses_an_output_of_other_files_before_processing(tmp_path, monkeypatch):
    """The Python API checks the output folder before the job too (it used to find out after
    processing every file)."""
    from imitation_learning.data_preprocessing import run_preprocessing
    from imitation_learning.job import build
    from imitation_learning.preflight import UsageError

    def no_job(*args, **kwargs):
        raise AssertionError("the job ran before the output folder was checked")

    monkeypatch.setattr(build, "build_dataset", no_job)  # what run_preprocessing calls
    out = tmp_path / "notes"
    out.mkdir()
    (out / "mine.txt").write_text("keep me")
    config = {"data": {"data_root": str(DATA_GAMES), "processed_dir": str(out)}}
    with pytest.raises(UsageError, match="not a saved dataset"):
        run_preprocessing(config, progress=False)
    assert [p.name for p in out.iterdir()] == ["mine.txt"]


def test_python_api_creates_missing_parents_but_checks_the_nearest_folder(tmp_path):
    from imitation_learning.preflight import UsageError, check_output_dir

    check_output_dir(tmp_path / "a" / "b" / "processed", parents=True)  # created by the save
    assert not (tmp_path / "a").exists()  # the check itself creates nothing
    with pytest.raises(UsageError, match="does not exist"):
        check_output_dir(tmp_path / "a" / "b" / "processed")
    (tmp_path / "file").write_text("x")
    with pytest.raises(UsageError, match="is a file, not a folder"):
        check_output_dir(tmp_path / "file" / "sub" / "processed", parents=True)


def test_out_of_core_is_deprecated_with_a_warning(tmp_path, capsys):
    """``--out-of-core`` is still accepted (older scripts), and says it does nothing."""
    from splendor_il.cli import main

    code = main(["preprocess", "--out-of-core", "--data-root", str(tmp_path / "nowhere"),
                 "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2  # the missing data root, as without the flag
    assert "--out-of-core is deprecated and does nothing" in err
    assert "Traceback" not in err
