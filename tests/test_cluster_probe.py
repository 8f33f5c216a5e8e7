"""How the job decides where its results come from on an existing cluster: straight from
the workers when it can open a connection to every one of them (a probe), else through the
scheduler. (On simulated hosts, with a network that lets the job reach the workers or not:
tests/test_multihost.py.)"""

from __future__ import annotations

import asyncio
import socket
import time

from distributed import Client, LocalCluster

from imitation_learning.cluster import _connect_all, pool_client, workers_reachable


def test_workers_of_a_loopback_cluster_are_reachable(dask_scheduler_address):
    with Client(dask_scheduler_address, timeout=10) as client:
        assert workers_reachable(client) is True
    with pool_client(1, scheduler_address=dask_scheduler_address) as client:
        assert client.direct_to_workers is True


def test_a_cluster_without_workers_relays_through_its_scheduler():
    with (
        LocalCluster(n_workers=0, host="127.0.0.1", dashboard_address="127.0.0.1:0") as cluster,
        pool_client(1, scheduler_address=cluster.scheduler_address) as client,
    ):
        assert client.direct_to_workers is False


def test_only_a_dask_server_answering_in_time_counts_as_reached(dask_scheduler_address):
    with Client(dask_scheduler_address, timeout=10) as client:
        worker = next(iter(client.scheduler_info(n_workers=-1)["workers"]))
    # a port that accepts connections but never speaks Dask (the handshake times out), and
    # a port nothing listens on (refused)
    with socket.socket() as silent, socket.socket() as closed:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        closed.bind(("127.0.0.1", 0))
        addresses = [
            worker,
            f"tcp://127.0.0.1:{silent.getsockname()[1]}",
            f"tcp://127.0.0.1:{closed.getsockname()[1]}",
        ]
        t0 = time.monotonic()
        reached = asyncio.run(_connect_all(addresses, 0.5, {}))
        elapsed = time.monotonic() - t0
    assert reached == [True, False, False]
    assert elapsed < 5  # probed at once, each within its time-out (generous: shared machine)
