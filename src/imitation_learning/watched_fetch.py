"""Fetches from the cluster that end even when a worker host freezes.

A frozen host (a stopped VM, a hung file system, its processes SIGSTOPped) keeps its
connections open: its kernel acknowledges what is sent to it and answers keepalive probes,
so neither Dask's TCP time-out nor its connect time-out ever fires, and a fetch of results
held by its worker (``client.gather``, straight from the worker or relayed by the
scheduler) waits forever. Only its silence tells: the scheduler removes a worker that has
sent no heartbeat for ``distributed.scheduler.worker-ttl`` (``cluster/dask.env``: 30 s),
and computes what it held again on the others. But it looks only once per time-to-live,
and a worker under a nanny is first asked to restart, for 30 s more: 60 to 90 s in all.
While it waits for results, the job therefore removes silent workers itself
(:func:`remove_silent_workers`: no heartbeat for the scheduler's own time-to-live, what
the scheduler would do), a second after the time-to-live has passed.

:func:`gather_watched` fetches as ``client.gather`` does while watching the holders of the
results: once one of them has left the cluster, the fetch is abandoned and None returned,
for the caller to wait for the results again (they are computed anew). A slow fetch from
workers that still send their heartbeats is never cut short. :func:`run_bounded` is
``client.run`` (which waits for every worker's answer) with a time-out.
"""

from __future__ import annotations

from collections.abc import Callable

#: Seconds between two looks at the cluster's workers while a fetch is in progress.
WATCH_S = 0.5


def gather_watched(client, futures: list, *, watch_s: float = WATCH_S) -> list | None:
    """The results of ``futures`` (as ``client.gather(futures)``: a task's error is raised
    here), or None once a worker that held one of them is no longer in the cluster (its
    results are lost; they are computed again). Fetched straight from the workers or
    through the scheduler as ``client.direct_to_workers`` says."""
    return client.sync(_gather_watched, client, list(futures), watch_s)


async def _gather_watched(client, futures: list, watch_s: float):
    import asyncio

    from distributed.comm.core import CommClosedError

    fetch = asyncio.ensure_future(client._gather(futures))
    holders = None  # asked only of a fetch that takes longer than watch_s (a rare one)
    try:
        while True:
            done, _ = await asyncio.wait({fetch}, timeout=watch_s)
            if done:
                return fetch.result()
            try:
                if holders is None:  # a result whose holder is already gone has none
                    holders = await client.scheduler.who_has(keys=[f.key for f in futures])
                await _remove_silent_async(client)
                workers = set(await client.scheduler.ncores())
            except OSError as exc:  # the scheduler is out of reach: as a closed connection
                raise CommClosedError(f"the scheduler: {exc}") from exc
            if any(not set(held_by) & workers for held_by in holders.values()):
                return None
    finally:
        # an abandoned fetch ends later, maybe with an error nobody wants (the scheduler
        # gone): collect it, or asyncio prints "Task exception was never retrieved"
        fetch.add_done_callback(_collect)
        if not fetch.done():
            fetch.cancel()


def _collect(task) -> None:
    if not task.cancelled():
        task.exception()


def worker_ttl_s(default: float = 300.0) -> float:
    """``distributed.scheduler.worker-ttl`` of this process's Dask configuration, seconds."""
    import dask
    from dask.utils import parse_timedelta

    value = dask.config.get("distributed.scheduler.worker-ttl", None)
    return float(parse_timedelta(value) or default) if value is not None else default


def run_bounded(client, function: Callable, *args, timeout_s: float | None = None):
    """``client.run(function, *args, on_error="ignore")`` that raises ``TimeoutError`` after
    ``timeout_s`` (default: the worker time-to-live plus 10 s, by when a frozen worker has
    been removed) instead of waiting for a worker that never answers."""
    if timeout_s is None:
        timeout_s = worker_ttl_s() + 10
    try:
        return client.sync(
            client._run, function, *args, on_error="ignore", callback_timeout=timeout_s
        )
    except TimeoutError:
        remove_silent_workers(client)  # the one that did not answer, if frozen: ask again
        raise


def remove_silent_workers(client) -> list[str]:
    """Remove from ``client``'s cluster the workers that have sent the scheduler no
    heartbeat for longer than its time-to-live (``distributed.scheduler.worker-ttl`` of the
    scheduler; none if it has none): what the scheduler does itself, but at once rather
    than at its next look, up to a time-to-live later, and without first waiting 30 s for
    the worker's nanny to restart it. What they held is computed again on the others.
    Returns their addresses (none where the scheduler cannot run it: Dask's own
    time-to-live then applies alone)."""
    return client.sync(_remove_silent_async, client)


async def _remove_silent_async(client) -> list[str]:
    try:
        return await client._run_on_scheduler(_silent_workers_remover())
    except OSError:  # the scheduler out of reach: the caller's to handle
        raise
    except Exception:  # e.g. it cannot load the function: not the job's failure
        return []


def _silent_workers_remover():
    """The function :func:`remove_silent_workers` runs on the scheduler; made here, inside
    a function, so that it travels by value (the scheduler needs no copy of this code)."""

    async def remove_silent(dask_scheduler):
        import time

        try:
            from distributed.scheduler import heartbeat_interval

            ttl = dask_scheduler.worker_ttl
            if not ttl:
                return []
            ttl = max(ttl, 10 * heartbeat_interval(len(dask_scheduler.workers)))  # as Dask
            now = time.time()
            silent = [a for a, w in dask_scheduler.workers.items() if now - w.last_seen > ttl]
            for address in silent:
                await dask_scheduler.remove_worker(
                    address, stimulus_id=f"splendor-il-silent-worker-{now}", close=False
                )
            return silent
        except Exception:  # another Dask's scheduler: its own time-to-live applies
            return []

    return remove_silent
