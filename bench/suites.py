"""The registry of benchmark suites: what ``uv run python -m bench list`` names and
``uv run python -m bench run NAME...`` runs.

A suite is a module of ``bench/`` with ``main(argv=None)`` (argparse), which prints its
figures and, where it saves them, writes them under ``bench/results/``. Adding one is one
line in :data:`SUITES`::

    Suite("scale", "bench.scale", "what it measures, in one line"),

``preset`` gives arguments that always come first (several suites of one module, as the
job's throughput sections of :mod:`bench.run`). No two suites measure the same thing;
one-off experiments live in ``bench/experiments/`` and are not registered.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Suite:
    name: str
    module: str
    summary: str
    preset: tuple[str, ...] = ()

    def run(self, argv: Sequence[str] = ()) -> int:
        """Import the module and call its ``main`` with the preset and ``argv``."""
        main = importlib.import_module(self.module).main
        code = main([*self.preset, *argv])
        return code if isinstance(code, int) else 0


SUITES: dict[str, Suite] = {
    s.name: s
    for s in (
        Suite("per-file", "bench.run", "one core: bare CSV parse vs the per-file step, both dialects", ("per-file",)),
        Suite("parallel", "bench.run", "the in-memory job at 1..N workers vs plain process pools", ("parallel",)),
        Suite("scaling", "bench.run", "the job at all cores on growing datasets: time per row", ("scaling",)),
        Suite("memory", "bench.run", "the in-memory job's driver peak against its outputs' size", ("memory",)),
        Suite("selfplay", "bench.run", "self-play games/s and rows/s, random and greedy agents", ("selfplay",)),
        Suite("fullsize", "bench.fullsize", "splendor-il preprocess end to end on ~550,000 rows: stages, driver peak"),
        Suite("cache-rerun", "bench.cache_rerun", "re-runs with the result cache: unchanged, +1% games, cache size"),
        Suite("rerun-floor", "bench.rerun_floor", "the least a cached re-run must spend, part by part"),
        Suite("scale", "bench.scale", "preprocess at 1x and 10x the full size: peak memory of every process, spill on disk"),
        Suite("check", "bench.check", "splendor-il check on a dataset: wall, CPU, peak memory"),
        Suite("row-checks", "bench.row_checks", "the reader's row checks on valid blocks and on blocks with a bad row"),
        Suite("multihost", "bench.multihost", "the job across simulated hosts (root, network namespaces)"),
        Suite("any-cluster", "bench.any_cluster", "per-file speed on a dask-worker cluster with Dask's defaults vs the job's own"),
        Suite("tls", "bench.tls", "TLS against TCP on simulated hosts (root, network namespaces)"),
        Suite("bag-vs-keyed", "bench.bag_vs_keyed", "the bag job against the keyed futures of 4534f5c, and 2 workers vs 1"),
        Suite("dashboard-screenshot", "bench.dashboard_screenshot", "docs/dashboard.png from a live run (Chromium)"),
    )
}
