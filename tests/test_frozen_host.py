"""A frozen worker host, at any phase of the job, on simulated hosts.

A frozen host (a stopped VM, a hung file system, every process SIGSTOPped) is worse than a
dead one: its kernel still acknowledges TCP, so no connection to it breaks; only its
silence tells. The job (the command line, with the settings of ``cluster/dask.env``) on a
cluster of simulated hosts (``cluster/netns.py``) has a worker host frozen while the
partitions are processed, or while the dataset is written. It must finish with the files
of a local run within the worker time-to-live of ``cluster/dask.env`` plus 30 s of the
freeze, or stop with one line and exit code 4 and nothing written: never hang.

Needs root to create namespaces; skipped, with the reason, where ``ip netns add`` fails.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml
from dask.utils import parse_timedelta
from distributed import Client

from cluster_script import load_cluster_module
from game_data import reference_run, simulated_root
from test_scaleout import assert_same_dataset, beside, no_leftovers

nc = load_cluster_module("netns")  # the simulated hosts

pytestmark = pytest.mark.slow  # over a minute: the freeze lasts the worker time-to-live

SETTINGS = nc.read_dask_env()
WORKER_TTL_S = parse_timedelta(SETTINGS["DASK_DISTRIBUTED__SCHEDULER__WORKER_TTL"])
#: What issue 25 allows a frozen host to cost: the time-to-live plus 30 s.
BOUND_S = WORKER_TTL_S + 30
#: The command line; SIGUSR1 prints its threads' stacks (where it hangs, if it does).
CLI = [
    sys.executable,
    "-c",
    "import faulthandler, signal, sys; faulthandler.register(signal.SIGUSR1, all_threads=True);"
    " from splendor_il.cli import main; sys.exit(main())",
]


@pytest.fixture(scope="module")
def games(tmp_path_factory) -> Path:
    return simulated_root(tmp_path_factory, "frozen", 120, seed=4)


@pytest.fixture(scope="module")
def reference(games, tmp_path_factory) -> Path:
    return reference_run(games, tmp_path_factory)


def task_on(worker: str, prefix: str, *, anywhere: bool = False):
    """A function for ``run_on_scheduler``: whether a ``prefix`` task is processing on
    ``worker`` (``anywhere``: processing or done on any worker)."""

    def look(dask_scheduler, worker=worker, prefix=prefix, anywhere=anywhere):
        if anywhere:
            p = dask_scheduler.task_prefixes.get(prefix)
            return p is not None and sum(p.states[s] for s in ("processing", "memory")) > 0
        ws = dask_scheduler.workers.get(worker)
        return ws is not None and any(ts.prefix.name == prefix for ts in ws.processing)

    return look


def freeze_when(cluster, job, look, timeout_s: float = 120) -> float:
    """SIGSTOP every process of worker-a once ``look`` holds on the scheduler; the time."""
    deadline = time.monotonic() + timeout_s
    with Client(cluster.scheduler_address, timeout=10) as client:
        while not client.run_on_scheduler(look):
            if job.poll() is not None:
                raise RuntimeError(f"the job ended ({job.returncode}) before the freeze")
            if time.monotonic() > deadline:
                raise TimeoutError("the moment to freeze never came")
            time.sleep(0.01)
    nc.freeze_host(cluster, "worker-a")
    return time.monotonic()


#: case -> (network, phase of the job when worker-a's host freezes)
CASES = {
    "processing, results from the workers": ("flat", "processing"),
    "writes": ("flat", "writes"),
    "processing, results relayed": ("gated", "processing"),
}


def frozen_run(games: Path, folder: Path, topology: str, phase: str) -> dict:
    """The job on a fresh cluster of hosts, worker-a's host frozen at ``phase``: its exit
    code, stderr, output folder and seconds from the freeze to its end (None: it hung)."""
    cluster = nc.start_cluster(topology, folder / "cluster", settings=SETTINGS)
    try:
        victim = nc.worker_address(cluster, "worker-a")
        out = folder / "job" / "processed"
        out.parent.mkdir()
        config = folder / "config.yaml"
        config.write_text(yaml.safe_dump({"preprocessing": {"files_per_partition": 3}}))
        argv = ["preprocess", "--data-root", str(games), "--output", str(out), "--no-progress"]
        argv += ["--scheduler-address", cluster.scheduler_address, "--config", str(config)]
        argv += ["--no-cache"]
        env = {k: v for k, v in os.environ.items() if k != "DASK_SCHEDULER_ADDRESS"} | SETTINGS
        with open(folder / "job.err", "w+") as err_file:  # a file: a full pipe cannot block it
            job = subprocess.Popen(
                [*CLI, *argv], stdout=subprocess.DEVNULL, stderr=err_file, text=True, env=env
            )
            try:
                if phase == "processing":
                    nc.wait_until_mid_run(
                        cluster.scheduler_address, victim, lambda: job.poll() is None
                    )
                    nc.freeze_host(cluster, "worker-a")
                    frozen_at = time.monotonic()
                else:
                    look = task_on(victim, "write-x-rows", anywhere=True)
                    frozen_at = freeze_when(cluster, job, look)
                try:
                    job.wait(timeout=BOUND_S + 15)
                    took = time.monotonic() - frozen_at
                except subprocess.TimeoutExpired:
                    job.send_signal(signal.SIGUSR1)  # its stacks: where it hangs
                    time.sleep(2)
                    took = None
            finally:
                if job.poll() is None:
                    job.kill()
                    job.wait()
            err_file.seek(0)
            return {"code": job.returncode, "err": err_file.read(), "out": out, "took": took}
    finally:
        cluster.close()


def test_frozen_worker_host_at_every_phase(games, reference, namespaces, tmp_path):
    """The three cases at once, each on a cluster of its own (their waits overlap: a
    minute in all, not three)."""
    results: dict[str, dict] = {}
    failures: dict[str, BaseException] = {}

    def case(name: str, topology: str, phase: str, folder: Path) -> None:
        try:
            results[name] = frozen_run(games, folder, topology, phase)
        except BaseException as exc:  # reported below
            failures[name] = exc

    threads = []
    for i, (name, (topology, phase)) in enumerate(CASES.items()):
        folder = tmp_path / f"case-{i}"
        folder.mkdir()
        threads.append(threading.Thread(target=case, args=(name, topology, phase, folder)))
        threads[-1].start()
    for thread in threads:
        thread.join(timeout=600)
    assert not any(t.is_alive() for t in threads), "a case did not end"
    assert not failures, failures
    for name, r in results.items():
        err = r["err"]
        assert r["took"] is not None, f"{name}: the job still runs {BOUND_S + 15:.0f} s after " + (
            f"the freeze (hangs):\n{err[-12000:]}"
        )
        assert "Traceback" not in err, f"{name}: {err}"
        if r["code"] == 0:
            assert_same_dataset(r["out"], reference)
            assert no_leftovers(r["out"])
        else:
            assert r["code"] == 4, f"{name}: {err}"
            assert err.strip().splitlines()[-1].startswith("splendor-il preprocess: "), err
            assert beside(r["out"]) == []
        assert r["took"] <= BOUND_S, f"{name}: the job ended {r['took']:.1f} s after the freeze"
