"""cluster/local-cluster.sh starts a real scheduler + workers, and stops all of them."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from distributed import Client

from cluster_script import run_script


def live_processes() -> dict[int, int]:
    """pid -> process group of every process that is not a zombie."""
    out = subprocess.run(
        ["ps", "-e", "-o", "pid=,pgid=,stat="], capture_output=True, text=True, check=True
    ).stdout
    procs = {}
    for line in out.splitlines():
        pid, pgid, stat = line.split()[:3]
        if not stat.startswith("Z"):
            procs[int(pid)] = int(pgid)
    return procs


@pytest.mark.timeout(90)
def test_start_status_stop(tmp_path: Path) -> None:
    cluster_dir = tmp_path / "cluster"
    started = run_script("start", 2, "--port", 0, "--dashboard-port", 0, "--dir", cluster_dir)
    try:
        assert started.returncode == 0, started.stderr
        scheduler_file = cluster_dir / "scheduler.json"
        info = json.loads(scheduler_file.read_text())
        address = info["address"]
        assert address.startswith("tcp://127.0.0.1:")
        assert not address.endswith(":0")
        dashboard_port = info["services"]["dashboard"]
        assert dashboard_port > 0
        # What start prints: the real address, dashboard and scheduler file.
        assert f"scheduler address: {address}" in started.stdout
        assert f"http://127.0.0.1:{dashboard_port}/status" in started.stdout
        assert str(scheduler_file) in started.stdout

        pid_files = sorted(p.name for p in cluster_dir.glob("*.pid"))
        assert pid_files == ["scheduler.pid", "worker-1.pid", "worker-2.pid"]
        leaders = [int(p.read_text()) for p in cluster_dir.glob("*.pid")]
        assert (cluster_dir / "scheduler.log").stat().st_size > 0

        with Client(scheduler_file=str(scheduler_file), timeout=10) as client:
            nthreads = client.nthreads()
            assert len(nthreads) == 2
            assert set(nthreads.values()) == {1}
            assert all(addr.startswith("tcp://127.0.0.1:") for addr in nthreads)
            assert client.submit(pow, 3, 4, pure=False).result(timeout=10) == 81
            squares = client.gather(client.map(lambda x: x * x, range(6)))
            assert squares == [0, 1, 4, 9, 16, 25]
            worker_pids = set(client.run(os.getpid).values())
            # the scheduler and the workers run with the settings of cluster/dask.env
            def _cluster_settings(dask_scheduler=None) -> dict:  # sent by value
                import dask

                keys = ["scheduler.worker-saturation", "scheduler.worker-ttl"]
                keys += ["comm.timeouts.tcp", "comm.timeouts.connect"]
                return {f"distributed.{k}": dask.config.get(f"distributed.{k}") for k in keys}

            settings = client.run_on_scheduler(_cluster_settings)
            assert settings == {
                "distributed.scheduler.worker-saturation": 1.0,
                "distributed.scheduler.worker-ttl": "30s",
                "distributed.comm.timeouts.tcp": "12s",
                "distributed.comm.timeouts.connect": "10s",
            }
            assert list(client.run(_cluster_settings).values()) == [settings, settings]
        assert len(worker_pids) == 2

        status = run_script("status", "--dir", cluster_dir)
        assert status.returncode == 0, status.stderr
        assert status.stdout.count(": running") == 3
        assert address in status.stdout

        # Every process the script started (uv, dask, nanny, worker) is in one of the groups.
        procs = live_processes()
        started_pids = {pid for pid, pgid in procs.items() if pgid in leaders} | set(leaders)
        assert worker_pids <= started_pids
    finally:
        stopped = run_script("stop", "--dir", cluster_dir, "--timeout", 10)
    assert stopped.returncode == 0, stopped.stderr
    assert "SIGKILL" not in stopped.stdout  # they all left on SIGTERM
    assert list(cluster_dir.glob("*.pid")) == []
    assert not (cluster_dir / "scheduler.json").exists()
    still_alive = started_pids & set(live_processes())
    assert still_alive == set()

    after = run_script("status", "--dir", cluster_dir)
    assert after.returncode != 0
    assert "no cluster" in after.stdout


def test_start_rejects_bad_worker_count(tmp_path: Path) -> None:
    result = run_script("start", 0, "--dir", tmp_path / "c")
    assert result.returncode != 0
    assert "positive integer" in result.stderr
    assert list((tmp_path).glob("c/*.pid")) == []


def test_stop_without_cluster_is_a_no_op(tmp_path: Path) -> None:
    result = run_script("stop", "--dir", tmp_path)
    assert result.returncode == 0
    assert "nothing to stop" in result.stdout
