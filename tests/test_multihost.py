"""Scale-out across hosts: the job on a Dask cluster of simulated hosts.

Each host is a Linux network namespace (``cluster/netns.py``): a scheduler host, two
worker hosts running ``dask worker`` under a nanny, all with the Dask settings of
``cluster/dask.env``; the job runs here, on its own host, with the same settings, as
``cluster/README.md`` asks. Two networks:

- ``flat``: the job reaches the workers, and fetches results straight from them;
- ``gated``: it reaches the scheduler only, and the results are relayed through it.

Promises checked: the outputs are byte-identical to a local run (in memory and out of
core, both networks); the job's choice of results path follows what it can reach; a
worker host killed or cut off mid-run (link down: no FIN, no RST) is survived with the
same outputs, the cut-off one noticed within the time-outs of ``cluster/dask.env``; the
scheduler host cut off: the job stops with a one-line error and writes nothing.

Needs root to create namespaces (CI runs as root); skipped, with the reason, where
``ip netns add`` fails.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import dask
import pytest
from dask.utils import parse_timedelta
from distributed import Client

from cluster_script import load_cluster_module
from game_data import pipeline_config, reference_run, simulated_root
from imitation_learning.cluster import CONNECT_TIMEOUT_S, pool_client
from imitation_learning.data_preprocessing import run_preprocessing
from test_scaleout import assert_same_dataset, beside, no_leftovers

nc = load_cluster_module("netns")  # the simulated hosts

pytestmark = pytest.mark.slow

SETTINGS = nc.read_dask_env()
TCP_TIMEOUT_S = parse_timedelta(SETTINGS["DASK_DISTRIBUTED__COMM__TIMEOUTS__TCP"])
CONNECT_S = parse_timedelta(SETTINGS["DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT"])
CLI = [sys.executable, "-c", "import sys; from splendor_il.cli import main; sys.exit(main())"]


@contextmanager
def simulated_cluster(topology: str, folder: Path):
    """A cluster of simulated hosts, torn down after the test whatever happened; the
    teardown is checked: no process, namespace, link or route of it is left."""
    cluster = nc.start_cluster(topology, folder)
    pids = [int(p) for h in cluster.hosts.values() for p in nc.ip("netns", "pids", h.netns).split()]
    assert len(pids) >= 5  # the scheduler, and a nanny and its worker on each worker host
    try:
        yield cluster
    finally:
        cluster.close()
        assert not [p for p in pids if nc.pid_alive(p) and not _zombie(p)], "processes left"
        names = nc.ip("netns", "list")
        assert not [h.netns for h in cluster.hosts.values() if h.netns in names]
        links = nc.ip("-o", "link", "show")
        assert not [link for link in cluster.links if f" {link}:" in links or f" {link}@" in links]
        routes = nc.ip("-4", "route", "show", "type", "blackhole")
        assert not [r for r in cluster.routes if r.split()[1] in routes]


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return False


@pytest.fixture(scope="module")
def flat(namespaces, tmp_path_factory):
    with simulated_cluster("flat", tmp_path_factory.mktemp("flat")) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def gated(namespaces, tmp_path_factory):
    with simulated_cluster("gated", tmp_path_factory.mktemp("gated")) as cluster:
        yield cluster


@pytest.fixture
def fresh_flat(namespaces, tmp_path):
    """A cluster of its own, for a test that damages it."""
    with simulated_cluster("flat", tmp_path / "cluster") as cluster:  # beside tmp_path / "job"
        yield cluster


@pytest.fixture(scope="module")
def games(tmp_path_factory) -> Path:
    """300 self-play games (100 per player count)."""
    return simulated_root(tmp_path_factory, "multihost", 300, seed=18)


@pytest.fixture(scope="module")
def reference(games, tmp_path_factory) -> Path:
    """The local run (one worker, in this process): what every run must give."""
    return reference_run(games, tmp_path_factory)


@pytest.fixture
def job_settings(monkeypatch):
    """The job's process runs with the cluster's settings too (cluster/README.md)."""
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    with dask.config.set(nc.dask_config_of(SETTINGS)):
        yield


def run_job(games: Path, out: Path, cluster: nc.SimulatedCluster, **prep) -> dict:
    out.parent.mkdir(exist_ok=True)
    cfg = pipeline_config(games, out, scheduler_address=cluster.scheduler_address, **prep)
    return run_preprocessing(cfg, progress=False)


def run_job_disrupted(games: Path, out: Path, cluster: nc.SimulatedCluster, disrupt) -> dict:
    """The job (small partitions: a long mid-run) with ``disrupt(job_running)`` running
    beside it in a thread; fails the test if ``disrupt`` did not complete."""
    finished = threading.Event()
    failure: list[BaseException] = []

    def body():
        try:
            disrupt(lambda: not finished.is_set())
        except BaseException as exc:  # reported below
            failure.append(exc)

    thread = threading.Thread(target=body, daemon=True)
    thread.start()
    try:
        summary = run_job(games, out, cluster, files_per_partition=5)
    finally:
        finished.set()
    thread.join(timeout=120)
    assert not thread.is_alive(), "the disruption did not end"
    assert not failure, f"disruption failed: {failure[0]!r}"
    return summary


# --- the cluster itself -----------------------------------------------------------------


def test_hosts_run_the_cluster_settings_on_their_own_addresses(flat):
    with Client(flat.scheduler_address, timeout=10) as client:
        workers = client.scheduler_info(n_workers=-1)["workers"]
        hosts = sorted(w["host"] for w in workers.values())
        assert hosts == sorted(h.address for h in flat.workers)
        assert all(w["nthreads"] == 1 and w["nanny"] for w in workers.values())
        keys = nc.dask_config_of(SETTINGS)

        def config(dask_scheduler=None, keys=keys):
            import dask

            return {key: dask.config.get(key) for key in keys}

        assert client.run_on_scheduler(config) == keys
        assert list(client.run(config).values()) == [keys, keys]


def test_leftovers_of_a_dead_run_are_removed(namespaces):
    dead = subprocess.Popen(["true"])
    dead.wait()
    netns, link = f"splil-{dead.pid}-1-scheduler", f"sb{dead.pid}x1"
    nc.ip("netns", "add", netns)
    nc.ip("link", "add", link, "type", "bridge")
    try:
        removed = nc.remove_stale()
        assert netns in removed and link in removed
        assert netns not in nc.ip("netns", "list")
        assert link not in nc.ip("-o", "link", "show")
    finally:
        nc.ip("netns", "del", netns, check=False)
        nc.ip("link", "del", link, check=False)


# --- outputs and the results path -------------------------------------------------------


@pytest.mark.parametrize("topology", ["flat", "gated"])
def test_results_path_follows_what_the_job_can_reach(topology, request, job_settings):
    cluster = request.getfixturevalue(topology)
    with pool_client(2, scheduler_address=cluster.scheduler_address) as client:
        assert client.direct_to_workers is (topology == "flat")
        # and the chosen path works: a result of each worker comes back
        futures = [
            client.submit(os.getpid, workers=[w], pure=False)
            for w in client.scheduler_info(n_workers=-1)["workers"]
        ]
        assert len(set(client.gather(futures))) == 2


@pytest.mark.parametrize("out_of_core", [False, True], ids=["in-memory", "out-of-core"])
@pytest.mark.parametrize("topology", ["flat", "gated"])
def test_job_on_simulated_hosts_equals_local_run(
    games, reference, topology, out_of_core, request, tmp_path, job_settings
):
    cluster = request.getfixturevalue(topology)
    out = tmp_path / "processed"
    summary = run_job(games, out, cluster, out_of_core=out_of_core)
    assert summary["num_workers"] == 2 and summary["files"] == 300
    assert_same_dataset(out, reference)
    assert no_leftovers(out)


# --- hosts lost mid-run -----------------------------------------------------------------


def test_worker_host_killed_mid_run(games, reference, fresh_flat, tmp_path, job_settings):
    """Every process of a worker host SIGKILLed (nanny included: nothing comes back)."""
    victim = nc.worker_address(fresh_flat, "worker-a")

    def kill(job_running):
        nc.wait_until_mid_run(fresh_flat.scheduler_address, victim, job_running)
        fresh_flat.kill_host("worker-a")

    out = tmp_path / "job" / "processed"
    summary = run_job_disrupted(games, out, fresh_flat, kill)
    assert nc.ip("netns", "pids", fresh_flat.hosts["worker-a"].netns).split() == []
    assert summary["files"] == 300 and summary["rows_rejected"] == 0
    assert_same_dataset(out, reference)
    assert no_leftovers(out)


def test_worker_host_cut_off_mid_run(games, reference, fresh_flat, tmp_path, job_settings):
    """The worker host's link set down mid-run: its processes live on, but nothing reaches
    it any more. The scheduler notices by the time-outs of cluster/dask.env (the TCP
    time-out: unacknowledged data, failed keepalive probes), re-runs its partitions on the
    other host, and the outputs are the same."""
    victim = nc.worker_address(fresh_flat, "worker-a")
    noticed = {}

    def cut(job_running):
        nc.wait_until_mid_run(fresh_flat.scheduler_address, victim, job_running)
        fresh_flat.cut_host("worker-a")
        noticed["cut"] = time.monotonic()
        nc.wait_until_removed(fresh_flat.scheduler_address, victim)
        noticed["removed"] = time.monotonic()

    out = tmp_path / "job" / "processed"
    summary = run_job_disrupted(games, out, fresh_flat, cut)
    assert nc.ip("netns", "pids", fresh_flat.hosts["worker-a"].netns).split() != []  # alive
    assert summary["files"] == 300 and summary["rows_rejected"] == 0
    assert_same_dataset(out, reference)
    assert no_leftovers(out)
    # Dask's defaults take 30 s (TCP) or 5 minutes (worker-ttl); the settings bound it by
    # the TCP time-out (a connection attempt to the lost host at most adds its own).
    unnoticed = noticed["removed"] - noticed["cut"]
    assert unnoticed <= TCP_TIMEOUT_S + CONNECT_S, f"lost host unnoticed for {unnoticed:.1f} s"


def test_scheduler_host_cut_off_mid_run(games, fresh_flat, tmp_path):
    """The job (the command line) loses its scheduler mid-run: a one-line error, exit
    code 4, and nothing written, within the time-outs (the TCP time-out to notice, the
    reconnection attempt, some slack)."""
    out = tmp_path / "work" / "processed"
    out.parent.mkdir()
    victim = nc.worker_address(fresh_flat, "worker-a")
    argv = ["preprocess", "--data-root", str(games), "--output", str(out), "--no-progress"]
    argv += ["--scheduler-address", fresh_flat.scheduler_address]
    argv += ["--config", str(write_config(tmp_path, files_per_partition=5))]
    env = {k: v for k, v in os.environ.items() if k != "DASK_SCHEDULER_ADDRESS"} | SETTINGS
    job = subprocess.Popen(
        [*CLI, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    try:
        nc.wait_until_mid_run(fresh_flat.scheduler_address, victim, lambda: job.poll() is None)
        fresh_flat.cut_host("scheduler")
        bound = TCP_TIMEOUT_S + CONNECT_TIMEOUT_S + 10
        try:
            _, err = job.communicate(timeout=bound)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the job still runs {bound:.0f} s after its scheduler was cut off")
    finally:
        if job.poll() is None:
            job.kill()
            job.communicate()
    assert job.returncode == 4, err
    assert "Traceback" not in err, err
    # the job's own message ends the output (Dask's log lines about the lost connection
    # come before it)
    message = err.strip().splitlines()[-1]
    assert message.startswith("splendor-il preprocess: "), err
    assert fresh_flat.scheduler_address in message, err
    assert beside(out) == []


def write_config(folder: Path, **prep) -> Path:
    import yaml

    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump({"preprocessing": prep}))
    return path
