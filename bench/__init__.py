"""Benchmarks of the preprocessing job and of self-play.

The suite's entry point is ``uv run python -m bench.run`` (see :mod:`bench.run`); the
stand-alone scripts ``bench/parse.py``, ``bench/per_file.py`` and ``bench/selfplay.py`` still
run on their own (``uv run python bench/<name>.py``).
"""
