"""A lost worker never fails the run; a lost cluster fails it clearly, writing nothing.

On a real cluster (``dask scheduler`` + two ``dask worker`` processes with nannies, started
with the command line by :mod:`cli_cluster`), a worker is SIGKILLed at a named moment of
the run by the fault hooks preloaded into the cluster's processes (:mod:`fault_hooks`):
while the job connects, while the workers are warmed up, when a partition starts, while
results are fetched and when an assembly task (``write-x-rows``, ``write-labels-masks``)
starts. Every run must finish with the files
of an undisturbed run. With every worker gone for good, or the scheduler gone, the command
line must stop with a one-line error in bounded time and write nothing.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from cli_cluster import cli_cluster
from game_data import pipeline_config, simulated_root
from imitation_learning.data_preprocessing import run_preprocessing
from imitation_learning.job.bag import process_task_name
from test_scaleout import assert_same_dataset, beside, no_leftovers

CLI = [sys.executable, "-c", "import sys; from splendor_il.cli import main; sys.exit(main())"]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def games(tmp_path_factory) -> Path:
    return simulated_root(tmp_path_factory, "worker-loss", 36, seed=77)


@pytest.fixture(scope="module")
def reference(games, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("reference") / "processed"
    run_preprocessing(pipeline_config(games, out), progress=False)
    return out


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with cli_cluster(tmp_path_factory.mktemp("cli-cluster"), 2) as running:
        yield running


#: The name of the tasks that process the files.
PROCESSING = process_task_name()

#: The moments of a run at which a worker is killed (see fault_hooks).
MOMENTS = {
    "connect": "connect",
    "warm-up": "warm-up",
    "processing": f"task:{PROCESSING}",
    "fetch": "fetch",  # the driver receiving the partitions' summaries
    "assembly (X written)": "task:write-x-rows",
    "assembly (labels, masks)": "task:write-labels-masks",
}


@pytest.mark.parametrize("out_of_core", [False, True], ids=["in-memory", "out-of-core"])
@pytest.mark.parametrize("moment", list(MOMENTS))
def test_worker_killed_at_any_moment(games, reference, cluster, tmp_path, moment, out_of_core):
    cluster.wait_for_workers(2)
    cluster.arm(MOMENTS[moment], "kill")
    out = tmp_path / "processed"
    cfg = pipeline_config(
        games, out, scheduler_address=cluster.address, files_per_partition=3,
        out_of_core=out_of_core,
    )
    try:
        summary = run_preprocessing(cfg, progress=False)
    finally:
        cluster.disarm()
    assert cluster.fired(), f"the job never reached {moment!r}"
    assert summary["files"] == 36 and summary["rows_rejected"] == 0
    assert_same_dataset(out, reference)
    assert no_leftovers(out)


def _run_cli_until_held(cluster, games: Path, out: Path, *extra: str):
    """Start ``splendor-il preprocess`` on the cluster; return it once a partition is held."""
    cluster.arm(f"task:{PROCESSING}", "hold")
    argv = ["preprocess", "--data-root", str(games), "--output", str(out), "--no-progress",
            "--scheduler-address", cluster.address, *extra]
    env = {k: v for k, v in os.environ.items() if not k.startswith("DASK_")}
    proc = subprocess.Popen(
        [*CLI, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        cwd=out.parent,
    )
    try:
        cluster.wait_reached()
    except BaseException:
        proc.kill()
        proc.communicate()
        raise
    return proc


def _one_line_failure(proc, timeout: float) -> str:
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail(f"the run did not stop within {timeout} s")
    assert proc.returncode not in (0, None), err
    assert "Traceback" not in err, err
    # The run's own report (pool size, dashboard link) may come first; the error is one line.
    errors = [line for line in err.splitlines() if line.startswith("splendor-il preprocess:")]
    assert len(errors) == 1 and err.strip().endswith(errors[0]), err
    return errors[0]


def test_every_worker_gone_fails_in_bounded_time(games, tmp_path):
    """Workers without nannies, all killed while a partition runs: a one-line error once
    the job's no-worker time-out has passed, nothing written."""
    with cli_cluster(tmp_path / "cluster", 2, nanny=False) as running:
        (tmp_path / "work").mkdir()
        out = tmp_path / "work" / "processed"
        config = tmp_path / "config.yaml"
        config.write_text("preprocessing:\n  no_workers_timeout_s: 3\n  files_per_partition: 3\n")
        proc = _run_cli_until_held(running, games, out, "--config", str(config))
        for pid in running.worker_pids():
            os.kill(pid, signal.SIGKILL)
        message = _one_line_failure(proc, timeout=90)
    assert "no worker" in message, message
    assert beside(out) == []


def test_scheduler_gone_fails_in_bounded_time(games, tmp_path):
    with cli_cluster(tmp_path / "cluster", 2) as running:
        (tmp_path / "work").mkdir()
        out = tmp_path / "work" / "processed"
        proc = _run_cli_until_held(running, games, out)
        os.killpg(running.scheduler.pid, signal.SIGKILL)
        message = _one_line_failure(proc, timeout=90)
    assert "scheduler" in message, message
    assert beside(out) == []
