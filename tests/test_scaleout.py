"""Scale-out promises on a real cluster: a `dask scheduler` and two `dask worker` processes
started by ``cluster/local-cluster.sh`` on loopback (free ports).

- the job run through the scheduler address gives the files of the one-worker run;
- a worker killed with SIGKILL mid-job: Dask re-runs its tasks, same files;
- fsspec roots (``file://``, ``memory://``) give what the local path gives;
- an unreachable scheduler: a clear one-line error, non-zero exit (the connection bound
  itself is checked in test_parallel_processor, without a clock);
- Ctrl-C on the CLI: the job stops and leaves no partial output.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import fsspec
import numpy as np
import psutil
import pytest
import yaml
from distributed import Client
from pandas.testing import assert_frame_equal

from cluster_script import run_script
from game_data import pipeline_config, simulated_root
from imitation_learning import parallel_processor as pp
from imitation_learning.data_preprocessing import run_preprocessing
from imitation_learning.dataset import load_dataset
from imitation_learning.job import api, phases
from stopped_run import SAID, stopped_run_script

CLI = [sys.executable, "-c", "import sys; from splendor_il.cli import main; sys.exit(main())"]


@pytest.fixture(scope="module")
def cluster_address(tmp_path_factory):
    """Scheduler + 2 single-threaded workers (real processes), stopped after the module."""
    folder = tmp_path_factory.mktemp("cluster")
    started = run_script(
        "start", 2, "--port", 0, "--dashboard-port", 0, "--dir", folder, timeout=90
    )
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        address = json.loads((folder / "scheduler.json").read_text())["address"]
        with Client(address, timeout=10) as client:
            client.wait_for_workers(2, timeout=60)
        yield address
    finally:
        run_script("stop", "--dir", folder, "--timeout", 10, timeout=90)


@pytest.fixture(scope="module")
def games(tmp_path_factory) -> Path:
    """60 self-play games (20 per player count)."""
    return simulated_root(tmp_path_factory, "scaleout", 60, seed=31)


@pytest.fixture(scope="module")
def reference(games, tmp_path_factory) -> Path:
    """One worker, in this process, local paths, in memory: what every run must give."""
    out = tmp_path_factory.mktemp("reference") / "processed"
    run_preprocessing(pipeline_config(games, out), progress=False)
    return out


def _stats(folder: Path) -> dict:
    stats = load_dataset(folder)["stats"]
    del stats["timings"], stats["config"], stats["input_files"]  # the run's own settings
    return stats


def assert_same_dataset(folder: Path, reference: Path) -> None:
    got = {p.name: p.read_bytes() for p in folder.iterdir()}
    want = {p.name: p.read_bytes() for p in reference.iterdir()}
    assert sorted(got) == sorted(want)
    for name in want:
        if name != "stats.json":
            assert got[name] == want[name], f"{name} differs"
    assert _stats(folder) == _stats(reference)
    sizes = [f["bytes"] for f in load_dataset(folder)["stats"]["input_files"]]
    assert sizes == [f["bytes"] for f in load_dataset(reference)["stats"]["input_files"]]


def no_leftovers(out: Path) -> bool:
    return beside(out) == [out.name]


def beside(out: Path) -> list[str]:
    """What is in the output's folder, but the command's result cache (``<output>.cache``,
    kept by design: its entries stay valid whatever happens to a run)."""
    return sorted(p.name for p in out.parent.iterdir() if p.name != f"{out.name}.cache")


@pytest.mark.slow
@pytest.mark.parametrize("out_of_core", [False, True], ids=["in-memory", "out-of-core"])
def test_cluster_run_equals_one_worker(games, reference, cluster_address, tmp_path, out_of_core):
    """Through the scheduler address, with the data root as a file:// URL."""
    out = tmp_path / "processed"
    cfg = pipeline_config(
        f"file://{games}",
        out,
        scheduler_address=cluster_address,
        files_per_partition=4,
        out_of_core=out_of_core,
    )
    summary = run_preprocessing(cfg, progress=False)
    assert summary["num_workers"] == 2
    assert summary["files"] == 60
    assert_same_dataset(out, reference)
    assert no_leftovers(out)


@pytest.mark.slow
@pytest.mark.parametrize("out_of_core", [False, True], ids=["in-memory", "out-of-core"])
def test_worker_killed_mid_job(
    games, reference, cluster_address, tmp_path, monkeypatch, out_of_core
):
    """SIGKILL one worker as soon as the first partition is back: the job completes (Dask
    re-runs the lost tasks, the nanny restarts the worker) and the files are the same."""
    with Client(cluster_address, timeout=10) as client:
        client.wait_for_workers(2, timeout=60)
        pids_before = set(client.run(os.getpid).values())
    victim = min(pids_before)
    killed = []

    class KillingBar:  # stands in for the job's progress bar, which it updates per partition
        def __init__(self, *args, **kwargs):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def update(self, n=1):
            if not killed:
                os.kill(victim, signal.SIGKILL)
                killed.append(time.monotonic())

    monkeypatch.setattr(api, "tqdm", KillingBar)
    monkeypatch.setattr(phases, "tqdm", KillingBar)  # the command line's job
    out = tmp_path / "processed"
    cfg = pipeline_config(games, out, scheduler_address=cluster_address, files_per_partition=1)
    cfg["preprocessing"]["out_of_core"] = out_of_core
    summary = run_preprocessing(cfg, progress=True)

    assert killed, "the job never reported a partition"
    assert not psutil.pid_exists(victim) or psutil.Process(victim).status() == "zombie"
    assert summary["files"] == 60 and summary["rows_rejected"] == 0
    assert_same_dataset(out, reference)
    assert no_leftovers(out)
    with Client(cluster_address, timeout=10) as client:  # the nanny brought a worker back
        client.wait_for_workers(2, timeout=60)
        pids_after = set(client.run(os.getpid).values())
    assert victim not in pids_after and len(pids_after) == 2


def test_memory_url_equals_local_path(games, reference, tmp_path):
    """Files copied into fsspec's memory filesystem (per process: one worker, in-process)."""
    fs = fsspec.filesystem("memory")
    root = f"/scaleout-{uuid.uuid4().hex}"
    local = pp.discover_csv_files(games)
    try:
        for path in local:
            rel = os.path.relpath(path, games)
            fs.pipe(f"{root}/{rel}", Path(path).read_bytes())
        remote = pp.discover_csv_files(f"memory://{root}")
        assert [p.rsplit("/", 2)[1:] for p in remote] == [p.rsplit("/", 2)[1:] for p in local]
        assert all(p.startswith("memory://") for p in remote)

        df_m, feats_m, labels_m, masks_m = pp.process_files_parallel(remote, {}, num_workers=1)
        df_l, feats_l, labels_l, masks_l = pp.process_files_parallel(local, {}, num_workers=1)
        assert_frame_equal(df_m, df_l)
        np.testing.assert_array_equal(feats_m, feats_l)
        for head in labels_l:
            np.testing.assert_array_equal(labels_m[head], labels_l[head])
            np.testing.assert_array_equal(masks_m[head], masks_l[head])

        for out_of_core in (False, True):
            out = tmp_path / f"memory-{out_of_core}" / "processed"
            cfg = pipeline_config(
                f"memory://{root}", out, out_of_core=out_of_core, files_per_partition=7
            )
            run_preprocessing(cfg, progress=False)
            assert_same_dataset(out, reference)
            inputs = load_dataset(out)["stats"]["input_files"]
            assert [f["path"] for f in inputs] == remote
    finally:
        fs.rm(root, recursive=True)


@pytest.mark.slow
def test_unreachable_scheduler_fails_fast_with_one_line(games, tmp_path):
    out = tmp_path / "processed"
    argv = ["preprocess", "--data-root", str(games), "--output", str(out), "--no-progress"]
    argv += ["--scheduler-address", "tcp://127.0.0.1:9"]
    proc = subprocess.run([*CLI, *argv], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode != 0
    message = proc.stderr.strip()
    assert "Traceback" not in message
    assert len(message.splitlines()) == 1, message
    assert "cannot reach the Dask scheduler at 'tcp://127.0.0.1:9'" in message
    assert not out.exists()


_CLI_STOPPED_MID_RUN = stopped_run_script(
    "imitation_learning.job.phases",
    "from splendor_il.cli import main\nsys.exit(main())\n",
)


@pytest.mark.slow
def test_ctrl_c_on_the_cli_leaves_no_partial_output(tmp_path):
    """SIGINT while the partitions are processed (the first one is back, the driver waits
    in its progress bar): exit 130, and beside the (absent) output folder no temporary
    folder, nothing."""
    from splendor.simulate import simulate

    games = tmp_path / "games"
    simulate(15, players=(2, 3, 4), agent="greedy", seed=5, out=games, progress=False)
    work = tmp_path / "work"
    work.mkdir()
    config = work.parent / "config.yaml"
    config.write_text(yaml.safe_dump({"preprocessing": {"files_per_partition": 1}}))
    out = work / "processed"
    argv = ["preprocess", "--config", str(config), "--data-root", str(games)]
    argv += ["--output", str(out), "--out-of-core", "--num-workers", "2", "--no-progress"]
    argv += ["--dashboard-address", "127.0.0.1:0"]
    proc = subprocess.Popen(
        [sys.executable, "-c", _CLI_STOPPED_MID_RUN, *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        said = []
        for line in proc.stderr:  # blocks until the driver is stopped mid-run (or it ends)
            said.append(line)
            if line == SAID + "\n":
                break
        assert said and said[-1] == SAID + "\n", "".join(said)
        assert list(work.glob(".processed.tmp-*"))  # the save's folder, being written
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, err
    assert "interrupted" in err
    assert beside(work / "processed") == []
    shutil.rmtree(games)
