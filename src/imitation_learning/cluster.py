"""The pool of worker processes shared by the preprocessing job and self-play.

``pool_client(num_workers)`` yields a Dask client on a local cluster of ``num_workers``
single-threaded worker processes bound to 127.0.0.1 (started, and always stopped, here:
errors and Ctrl-C included), or on the running cluster at ``scheduler_address`` (reached
within :data:`CONNECT_TIMEOUT_S`, and left running). Results are fetched straight from the
workers when this process can reach every one of them (:func:`workers_reachable`, a probe);
otherwise they come through the scheduler.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager

#: Seconds allowed to reach an existing scheduler.
CONNECT_TIMEOUT_S = 10

#: The local cluster's dashboard unless told otherwise (another free port if it is taken).
DEFAULT_DASHBOARD_ADDRESS = "127.0.0.1:8787"

#: Dask settings of the local cluster the job starts:
#:
#: - the workers' environment: Dask sets MALLOC_TRIM_THRESHOLD_ to 64 KiB by default, which
#:   fixes glibc's malloc thresholds and makes the preprocessing job (many short-lived arrays
#:   of a few hundred KiB) about 25% slower on the workers; unset here, malloc keeps its
#:   adaptive defaults (a Dask cluster started earlier in this process with the default
#:   setting leaves it in ``os.environ``, where workers would inherit it:
#:   :func:`_without_dask_malloc_setting` hides it while the job's workers start; on a
#:   cluster the job did not start, its tasks tune the allocator themselves:
#:   :mod:`imitation_learning.allocator`);
#: - the scheduler's ``worker-saturation``: 1.0 hands a worker its next partition only when
#:   it is free. The default (1.1) lets a worker hold one more in reserve, and at the end of
#:   a run one worker could be left idle while the other still had two partitions to go
#:   (1,000 games on 2 workers: 1.78-1.85 s instead of 1.55-1.72 s). A partition runs for a
#:   good fraction of a second, so the few milliseconds of waiting for the next cost little.
#:
#: For a cluster of your own, set ``distributed.scheduler.worker-saturation: 1.0`` in the
#: scheduler's Dask config (or ``DASK_DISTRIBUTED__SCHEDULER__WORKER_SATURATION=1.0``).
LOCAL_CLUSTER_CONFIG = {
    "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,
    "distributed.scheduler.worker-saturation": 1.0,
}


#: The value Dask's default configuration gives MALLOC_TRIM_THRESHOLD_.
_DASK_MALLOC_TRIM = "65536"


@contextmanager
def _without_dask_malloc_setting() -> Iterator[None]:
    """Leave MALLOC_TRIM_THRESHOLD_ out of ``os.environ`` while the block runs, when it holds
    the value Dask's nannies put there (they set it in their own process before spawning a
    worker); any other value is the user's and stays."""
    saved = os.environ.get("MALLOC_TRIM_THRESHOLD_")
    if saved != _DASK_MALLOC_TRIM:
        yield
        return
    del os.environ["MALLOC_TRIM_THRESHOLD_"]
    try:
        yield
    finally:
        os.environ.setdefault("MALLOC_TRIM_THRESHOLD_", saved)


#: Seconds a worker has to accept the job's probe connection (all workers are probed at
#: once). Connections within a data centre take milliseconds; a worker that does not answer
#: in time (firewall, private network, another host's container address) is taken as out
#: of reach.
PROBE_TIMEOUT_S = 2.0


def workers_reachable(client, timeout_s: float = PROBE_TIMEOUT_S) -> bool:
    """Whether this process can open a Dask connection (TCP, TLS: the client's own security
    settings) to every worker of ``client``'s cluster within ``timeout_s``; False for a
    cluster without workers. Probed at once, so it takes at most about ``timeout_s``."""
    addresses = list(client.scheduler_info(n_workers=-1)["workers"])
    if not addresses:
        return False
    reached = client.sync(_connect_all, addresses, timeout_s, client.connection_args)
    return all(reached)


async def _connect_all(addresses: list[str], timeout_s: float, connection_args: dict):
    import asyncio

    from distributed.comm import connect

    async def one(address: str) -> bool:
        try:
            # the outer bound covers the handshake too, which Dask's connect waits for
            # without a time-out (a host that accepts connections but is frozen)
            comm = await asyncio.wait_for(
                connect(address, timeout=timeout_s, **connection_args), timeout_s
            )
        except (OSError, TimeoutError, ValueError):  # refused, unroutable, silent, unknown scheme
            return False
        await comm.close()
        return True

    return await asyncio.gather(*(one(a) for a in addresses))


@contextmanager
def pool_client(
    num_workers: int,
    *,
    scheduler_address: str | None = None,
    dashboard_address: str | None = DEFAULT_DASHBOARD_ADDRESS,
    worker_setup: Callable[[], None] | None = None,
) -> Iterator:
    """A Dask client on the pool of worker processes, closed (and the pool stopped) on exit.

    ``worker_setup`` runs once on every worker as part of the start-up (e.g. imports).
    """
    import dask
    from distributed import Client, LocalCluster

    from imitation_learning.tls_check import check_client_tls

    with ExitStack() as stack:
        if scheduler_address is not None:
            check_client_tls(scheduler_address)  # one line, not Dask's TypeError, without certs
            try:
                client = stack.enter_context(
                    Client(scheduler_address, timeout=CONNECT_TIMEOUT_S, set_as_default=True)
                )
            except (OSError, TimeoutError) as exc:
                raise ConnectionError(
                    f"cannot reach the Dask scheduler at {scheduler_address!r} within "
                    f"{CONNECT_TIMEOUT_S} s ({type(exc).__name__}: {exc}); check the address "
                    "(preprocessing.scheduler_address / DASK_SCHEDULER_ADDRESS / "
                    "--scheduler-address) or leave it unset to start a local cluster"
                ) from exc
            client.direct_to_workers = workers_reachable(client)
        else:
            with (
                warnings.catch_warnings(record=True) as caught,
                dask.config.set(LOCAL_CLUSTER_CONFIG),
                _without_dask_malloc_setting(),
            ):
                warnings.simplefilter("always")
                cluster = stack.enter_context(
                    LocalCluster(
                        n_workers=num_workers,
                        threads_per_worker=1,
                        processes=True,
                        host="127.0.0.1",
                        dashboard_address=dashboard_address,
                    )
                )
            for w in caught:
                if "already in use" in str(w.message):
                    print(
                        f"dashboard port taken ({str(w.message).splitlines()[0]}); "
                        "using a free port",
                        file=sys.stderr,
                        flush=True,
                    )
                else:
                    warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
            # The workers are on this machine: fetch results from them directly rather than
            # through the scheduler, which runs in this process too (one copy through this
            # process's sockets instead of three).
            client = stack.enter_context(
                Client(cluster, set_as_default=True, direct_to_workers=True)
            )
        if worker_setup is not None:
            warm_up(client, worker_setup)
        yield client


def warm_up(client, worker_setup: Callable[[], None]) -> None:
    """Run ``worker_setup`` on every worker now (e.g. imports), as an optimisation only: a
    worker lost meanwhile, or a setup that fails, is not an error (Dask replaces the worker,
    and the first task on a worker does the same work anyway)."""
    from imitation_learning.watched_fetch import run_bounded

    try:
        run_bounded(client, worker_setup)  # client.run, bounded: a frozen worker never answers
    except (OSError, TimeoutError):  # the connection to a worker closed under the call
        pass


class ClusterLostError(RuntimeError):
    """The run's cluster cannot go on: its scheduler is gone, or it has had no worker at all
    for longer than the job's ``preprocessing.no_workers_timeout_s``."""


#: Seconds between two looks at the cluster while no result arrives, and between two looks
#: for a finished future. Every task is submitted up front, so the workers never wait for
#: the driver to notice a result; 20 ms only delays the end of a phase, once.
_POLL_S = 1.0
_WAKE_S = 0.02


def results_as_completed(
    client, futures: list, *, no_workers_timeout_s: float
) -> Iterator[tuple[object, object]]:
    """``(future, result)`` for every future, in the order they finish (results fetched in
    batches, as ``as_completed(..., with_results=True)`` does).

    Unlike ``as_completed`` it never waits forever: while no result arrives it looks at the
    cluster every second and raises :class:`ClusterLostError` once the scheduler cannot be
    reached, or once the cluster has had no worker for ``no_workers_timeout_s`` seconds
    (workers that come back in time, e.g. restarted by their nannies, are waited for; Dask
    re-runs what the lost ones held). An error raised by a task is raised here.
    """
    import time
    from concurrent.futures import CancelledError

    from distributed import as_completed
    from distributed.comm.core import CommClosedError

    from imitation_learning.watched_fetch import gather_watched, remove_silent_workers

    done = as_completed(futures, loop=client.loop)
    last_look = time.monotonic()
    without_workers_since: float | None = None
    while not done.is_empty():
        if done.has_ready():
            batch = done.next_batch(block=False)
            try:
                results = gather_watched(client, batch)  # None: a holder left (frozen host)
            except (CommClosedError, CancelledError) as exc:
                raise _scheduler_lost(client, exc) from None
            except OSError as exc:  # a task's own error (FileNotFoundError...), unless the
                if client.status in ("running", "connecting"):  # scheduler went with it
                    raise
                raise _scheduler_lost(client, exc) from None
            if results is None:  # lost with their worker: wait for them to be computed again
                done.update(batch)
                continue
            yield from zip(batch, results, strict=True)
            last_look, without_workers_since = time.monotonic(), None
            continue
        time.sleep(_WAKE_S)
        if time.monotonic() - last_look < _POLL_S:
            continue
        last_look = time.monotonic()
        try:
            remove_silent_workers(client)  # a frozen host's worker, past its time-to-live
            workers = len(client.nthreads())
        except (OSError, TimeoutError) as exc:
            raise _scheduler_lost(client, exc) from None
        if client.status not in ("running", "connecting"):
            raise _scheduler_lost(client, None)
        if workers:
            without_workers_since = None
        elif without_workers_since is None:
            without_workers_since = last_look
        elif last_look - without_workers_since > no_workers_timeout_s:
            raise ClusterLostError(
                f"the Dask cluster at {client.scheduler.address} has had no worker for "
                f"{no_workers_timeout_s:g} s (all lost, none came back); nothing was written: "
                "restart the workers and run again"
            )


def _scheduler_lost(client, exc: BaseException | None) -> ClusterLostError:
    why = f" ({type(exc).__name__})" if exc is not None else ""
    return ClusterLostError(
        f"lost the connection to the Dask scheduler at {client.scheduler.address}{why}; "
        "nothing was written: check the scheduler and run again"
    )

