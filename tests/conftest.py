"""Shared fixtures: one Dask cluster for the whole session, the repository paths.

The session cluster (2 worker processes, one thread each) is for tests that run the job on
an existing cluster: they pass ``dask_scheduler_address`` as ``scheduler_address``. Tests
of the job's own cluster (start, dashboard, shutdown) start it through ``run_job``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

from game_data import simulated_root

# Property tests draw the same examples on every run (derandomize): a run that lands must
# not depend on the luck of the draw. Explore with `--hypothesis-profile explore`; a failure
# found that way goes into the test as an explicit @example.
settings.register_profile("repeatable", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile("repeatable")

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA_GAMES = REPO_ROOT / "data" / "games"


# --------------------------------------------------------------------------- isolation
@pytest.fixture(scope="session", autouse=True)
def isolated_from_callers_dask():
    """Every test runs without the caller's Dask environment.

    ``DASK_SCHEDULER_ADDRESS`` would send the jobs to the caller's cluster, and any other
    ``DASK_*`` variable (``DASK_DISTRIBUTED__...``, ``DASK_CONFIG``...) changes Dask's
    configuration. They are removed from ``os.environ`` for the whole session (so every
    subprocess a test starts inherits a clean environment too), Dask's configuration is
    rebuilt without them, and both are restored at the end. A test that wants one sets it
    with ``monkeypatch.setenv``.
    """
    import dask

    with pytest.MonkeyPatch.context() as mp:
        for name in [n for n in os.environ if n.startswith("DASK_")]:
            mp.delenv(name)
        dask.config.refresh()  # the configuration Dask read from them at import
        yield
    dask.config.refresh()


@pytest.fixture(scope="session")
def dask_cluster():
    """A LocalCluster of 2 worker processes shared by the session; closed at the end."""
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address="127.0.0.1:0",
    ) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def dask_scheduler_address(dask_cluster) -> str:
    """The scheduler address of the session cluster (``tcp://127.0.0.1:<port>``)."""
    return dask_cluster.scheduler_address


@pytest.fixture(scope="session")
def simulated_games(tmp_path_factory) -> Path:
    """A data root of 18 self-play games (6 per player count) with the real engine."""
    return simulated_root(tmp_path_factory, "simulated", 18, seed=11)


@pytest.fixture(scope="module")
def namespaces() -> None:
    """Skips the test where simulated hosts (Linux network namespaces, root) are unavailable."""
    import sys

    from cluster_script import load_cluster_module

    if not sys.platform.startswith("linux"):
        pytest.skip("simulated hosts need Linux network namespaces")
    reason = load_cluster_module("netns").namespaces_unavailable()
    if reason is not None:
        pytest.skip(f"simulated hosts unavailable: {reason}")
