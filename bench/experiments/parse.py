"""Single-threaded parse speed of game logs: bare pyarrow, bare pandas (C engine), read_game_log.

Usage (from the repository root)::

    uv run python bench/experiments/parse.py [FOLDER ...] [--repeat N] [--base B]

Folders default to the legacy fixtures and ``data/games`` (when present); every ``*.csv``
below them is read into memory first, so disk speed does not count. Rows/s are data rows
(lines after the header) divided by the wall time of ``--repeat`` passes over all files.
"""

from __future__ import annotations

import argparse
import io
import time
from collections.abc import Callable
from pathlib import Path

DEFAULT_FOLDERS = ["tests/data/legacy-logs", "data/games"]


def _files(folders: list[str]) -> list[Path]:
    found: list[Path] = []
    for folder in folders:
        root = Path(folder)
        if root.is_dir():
            found += sorted(p for p in root.rglob("*.csv") if p.is_file())
    return found


def _time(fn: Callable[[bytes, str], object], blobs: list[tuple[bytes, str]], repeat: int) -> float:
    start = time.perf_counter()
    for _ in range(repeat):
        for data, name in blobs:
            fn(data, name)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    import pandas as pd
    import pyarrow.csv as pacsv

    from splendor.log_reader import read_game_log

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="*", default=DEFAULT_FOLDERS)
    parser.add_argument("--repeat", type=int, default=10, help="passes over the files")
    parser.add_argument("--base", type=int, default=11, help="blind-reserve base of the files")
    args = parser.parse_args(argv)

    files = _files(args.folders)
    if not files:
        raise SystemExit(f"no *.csv files under {args.folders}")
    blobs = [(p.read_bytes(), str(p)) for p in files]
    rows = sum(max(data.count(b"\n") - 1, 0) + (not data.endswith(b"\n")) for data, _ in blobs)
    print(f"{len(files)} files, {rows} data rows, {args.repeat} passes, one thread")

    arrow_opts = pacsv.ReadOptions(use_threads=False)

    def bare_pyarrow(data: bytes, name: str) -> object:
        return pacsv.read_csv(io.BytesIO(data), read_options=arrow_opts)

    def bare_pandas_c(data: bytes, name: str) -> object:
        return pd.read_csv(io.BytesIO(data), engine="c", na_values=["nan"], low_memory=False)

    def reader(data: bytes, name: str) -> object:
        return read_game_log(data, blind_reserve_base=args.base, label=name)

    for fn in (bare_pyarrow, bare_pandas_c, reader):
        seconds = _time(fn, blobs, args.repeat)
        label = "read_game_log" if fn is reader else fn.__name__
        print(f"{label:>15}: {rows * args.repeat / seconds:>10,.0f} rows/s")


if __name__ == "__main__":
    main()
