"""TLS with mutual authentication, end to end, on simulated hosts.

A cluster of simulated hosts (``cluster/netns.py``: a scheduler host and two worker
hosts, ``dask scheduler`` / ``dask worker`` under a nanny) runs with the settings of
``cluster/dask.env`` and ``cluster/tls.env``, its certificates made by
``cluster/make-certs.sh``; the job takes the CA and the client pair only through Dask's
configuration and a ``tls://`` address, as ``cluster/README.md`` says.

Promises checked: the job's outputs over TLS are byte-identical to a local run; a worker
without a certificate, with a certificate of another authority, or speaking plain TCP,
never joins; a client without a certificate (or with one of another authority, or over
plain TCP) is refused, and the command line says so on one line, exit code 2, writing
nothing.

Needs root to create namespaces; skipped, with the reason, where ``ip netns add`` fails.
"""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import dask
import pytest
from distributed import Client

from cluster_script import load_cluster_module
from game_data import pipeline_config, reference_run, simulated_root
from imitation_learning.data_preprocessing import run_preprocessing
from test_scaleout import assert_same_dataset, beside, no_leftovers

nc = load_cluster_module("netns")  # the simulated hosts

SETTINGS = nc.read_dask_env()
CLI = [sys.executable, "-c", "import sys; from splendor_il.cli import main; sys.exit(main())"]


def client_part(settings: dict[str, str]) -> dict[str, str]:
    """What the job (a client) needs of a TLS settings file: no scheduler or worker pair."""
    return {
        k: v for k, v in settings.items() if "__SCHEDULER__" not in k and "__WORKER__" not in k
    }


@pytest.fixture(scope="module")
def certs(tmp_path_factory) -> dict[str, Path]:
    """The cluster's CA and its certificates, and another authority's."""
    folder = tmp_path_factory.mktemp("certs")
    return {name: nc.make_certificates(folder / name) for name in ("cluster", "other")}


@pytest.fixture(scope="module")
def client_tls(certs) -> dict[str, str]:
    """The job's TLS variables: the cluster's CA and client pair, encryption required."""
    return client_part(nc.tls_settings(certs["cluster"]))


@pytest.fixture(scope="module")
def tls_hosts(namespaces, certs, client_tls, tmp_path_factory):
    settings = SETTINGS | nc.tls_settings(certs["cluster"])
    folder = tmp_path_factory.mktemp("tls-hosts")
    with dask.config.set(nc.dask_config_of(client_tls)):  # this process's own clients
        cluster = nc.start_cluster("flat", folder, settings=settings, scheme="tls")
    try:
        yield cluster
    finally:
        cluster.close()


@pytest.fixture
def as_the_job(client_tls, monkeypatch):
    """This process runs with the cluster's settings and the job's TLS settings."""
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    with dask.config.set(nc.dask_config_of(SETTINGS | client_tls)):
        yield


@pytest.fixture(scope="module")
def games(tmp_path_factory) -> Path:
    return simulated_root(tmp_path_factory, "tls", 90, seed=25)


@pytest.fixture(scope="module")
def reference(games, tmp_path_factory) -> Path:
    return reference_run(games, tmp_path_factory)


def workers_of(address: str) -> dict:
    with Client(address, timeout=10) as client:
        return client.scheduler_info(n_workers=-1)["workers"]


# --- the job over TLS -------------------------------------------------------------------


@pytest.mark.parametrize("out_of_core", [False, True], ids=["in-memory", "out-of-core"])
def test_job_over_tls_equals_local_run(
    games, reference, tls_hosts, tmp_path, out_of_core, as_the_job
):
    assert tls_hosts.scheduler_address.startswith("tls://")
    workers = workers_of(tls_hosts.scheduler_address)
    assert len(workers) == 2 and all(a.startswith("tls://") for a in workers)
    out = tmp_path / "processed"
    cfg = pipeline_config(
        games, out, scheduler_address=tls_hosts.scheduler_address, out_of_core=out_of_core
    )
    summary = run_preprocessing(cfg, progress=False)
    assert summary["num_workers"] == 2 and summary["files"] == 90
    assert_same_dataset(out, reference)
    assert no_leftovers(out)


# --- who may join -----------------------------------------------------------------------


def test_workers_without_the_clusters_certificate_never_join(tls_hosts, certs, as_the_job):
    """Three workers try to join for a while: one with the cluster's CA file but no
    certificate of its own, one with a certificate of another authority (trusting the
    cluster's CA, which is public), one over plain TCP. None is ever counted."""
    cluster_tls = nc.tls_settings(certs["cluster"])
    other = nc.tls_settings(certs["other"])
    no_pair = {k: v for k, v in cluster_tls.items() if "__WORKER__" not in k}
    foreign_pair = cluster_tls | {k: v for k, v in other.items() if "__WORKER__" in k}
    tcp_address = tls_hosts.scheduler_address.replace("tls://", "tcp://")
    attempts = {
        "no-certificate": (SETTINGS | no_pair, tls_hosts.scheduler_address),
        "other-authority": (SETTINGS | foreign_pair, tls_hosts.scheduler_address),
        "plain-tcp": (dict(SETTINGS), tcp_address),
    }
    procs = {
        name: nc.start_foreign_worker(tls_hosts, "worker-b", name, env, address)
        for name, (env, address) in attempts.items()
    }
    try:
        deadline = time.monotonic() + 20  # several connection attempts each
        while time.monotonic() < deadline:
            workers = workers_of(tls_hosts.scheduler_address)
            names = {w["name"] for w in workers.values()}
            assert names == {"worker-a", "worker-b"}, names
            time.sleep(0.5)
    finally:
        for proc in procs.values():
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(timeout=30)
    logs = {name: tls_hosts.log(name) for name in procs}
    # each was turned away for the reason expected, not for something else
    assert "TLS expects a `ssl_context`" in logs["no-certificate"], logs["no-certificate"]
    assert "Registered to" not in "".join(logs.values())
    scheduler_log = tls_hosts.log("scheduler")
    assert "CERTIFICATE_VERIFY_FAILED" in scheduler_log or "certificate" in scheduler_log.lower()


def test_clients_without_the_clusters_certificate_are_refused(tls_hosts, certs, client_tls):
    address = tls_hosts.scheduler_address
    host, port = address.removeprefix("tls://").rsplit(":", 1)
    # a TLS client that trusts the cluster's CA but has no certificate of its own: the
    # scheduler ends the handshake
    ctx = ssl.create_default_context(cafile=str(certs["cluster"] / "ca.crt"))
    ctx.check_hostname = False
    with socket.create_connection((host, int(port)), timeout=10) as raw:
        with pytest.raises((ssl.SSLError, ConnectionError)):
            with ctx.wrap_socket(raw) as tls:
                tls.sendall(b"\0" * 8)
                assert tls.recv(1) == b""  # TLS 1.3: the refusal comes with the first read
                raise ConnectionError("closed by the scheduler")
    # plain TCP: refused
    with pytest.raises(OSError):
        Client(address.replace("tls://", "tcp://"), timeout=5)
    # Dask clients with another authority's pair (trusting either CA): refused
    other = nc.tls_settings(certs["other"])
    for trusted in (client_tls, client_part(other)):
        pair = trusted | {k: v for k, v in other.items() if "__CLIENT__" in k}
        with dask.config.set(nc.dask_config_of(pair)), pytest.raises(OSError):
            Client(address, timeout=5)


@pytest.mark.parametrize("case", ["no certificate", "other authority"])
def test_command_line_without_a_valid_client_certificate(
    games, tls_hosts, certs, client_tls, tmp_path, case
):
    """One line, exit code 2, nothing written; Dask's TypeError never shows."""
    out = tmp_path / "work" / "processed"
    out.parent.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DASK_")} | SETTINGS
    if case == "other authority":
        other = nc.tls_settings(certs["other"])
        env |= client_tls | {k: v for k, v in other.items() if "__CLIENT__" in k}
    argv = ["preprocess", "--data-root", str(games), "--output", str(out), "--no-progress"]
    argv += ["--scheduler-address", tls_hosts.scheduler_address]
    t0 = time.monotonic()
    done = subprocess.run([*CLI, *argv], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("splendor-il preprocess: "), done.stderr
    if case == "no certificate":
        assert "DASK_DISTRIBUTED__COMM__TLS__CLIENT__CERT" in lines[0]
        assert time.monotonic() - t0 < 30
    else:
        assert "TLS" in lines[0] and tls_hosts.scheduler_address in lines[0]
    assert done.stdout == ""
    assert beside(out) == []
