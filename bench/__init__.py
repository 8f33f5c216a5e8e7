"""Benchmarks of the preprocessing job and of self-play.

One command: ``uv run python -m bench list`` names every suite, ``uv run python -m bench run
NAME...`` runs them (:mod:`bench.__main__`, registry in :mod:`bench.suites`). Shared parts:
:mod:`bench.datasets` (cached self-play datasets), :mod:`bench.measure` and
:mod:`bench.memprobe` (measurements), :mod:`bench.report` (results files and plots).
One-off experiments are in ``bench/experiments/``.
"""
