"""The pool of worker processes shared by the preprocessing job and self-play.

``pool_client(num_workers)`` yields a Dask client on a local cluster of ``num_workers``
single-threaded worker processes (started, and always stopped, here), or on the running
cluster at ``scheduler_address`` (left running).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from imitation_learning.config import validate_config


@contextmanager
def pool_client(
    num_workers: int,
    *,
    scheduler_address: str | None = None,
    dashboard_address: str | None = None,
) -> Iterator:
    from imitation_learning.parallel_processor import _pool_client

    preprocessing = {"scheduler_address": scheduler_address}
    if dashboard_address is not None:
        preprocessing["dashboard_address"] = dashboard_address
    config = validate_config({"preprocessing": preprocessing})
    with _pool_client(num_workers, config, scheduler_address) as client:
        yield client
