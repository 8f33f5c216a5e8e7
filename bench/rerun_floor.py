"""The ``rerun-floor`` suite: the least a re-run of ``splendor-il preprocess`` must spend
on the full-size dataset when its result cache holds every file, measured part by part,
against a first run's wall time.

    uv run python -m bench.rerun_floor [--games 6650] [--dialect legacy] [--workers 2]
                                       [--repeat 3] [--json FILE]

Adding games to a dataset changes its split and its scaler, so a re-run, however few files
it processes, standardises and writes every row of X again. This suite makes a first run
(``preprocess --num-workers 2``, a fresh process, empty cache beside the output) for the
reference (``--workers`` 2 by default), then times, in this process and with nothing else running, what any such re-run
must do without counting a cluster:

1. ``start``: a fresh interpreter importing the command and the job (no Dask cluster);
2. ``hashing``: the content hash of every input (:func:`~imitation_learning.result_cache.hash_files`,
   as many threads as cores);
3. ``reading``: every file's entry looked up and read (one thread, :class:`Lookup`);
4. ``writing``: every file's rows of X, from its entry, standardised with the saved scaler
   and written into new files, with one and with two threads (the saved X's size; labels
   and masks not counted);
5. ``replacing``: removing the output the first run saved (a re-run replaces its output
   atomically, so the old one goes once the new one is in place; timed once, after a sync).

The floor on two cores is start + hashing + reading / 2 + writing with two threads +
replacing (the reading taken as perfectly parallel). Each part is run ``--repeat`` times; the fastest is
kept. Figures are printed (and saved with ``--json``), never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from bench.datasets import CACHE_DIR, REPO_ROOT, get_dataset
from bench.fullsize import run_probed
from imitation_learning.config import validate_config
from imitation_learning.dataset.scaler import Scaler
from imitation_learning.parallel_processor import discover_csv_files
from imitation_learning.partition_writes import write_rows_at
from imitation_learning.result_cache import CacheSpec, Lookup, config_key, hash_files

GIB = 2**30


def best_of(repeat: int, run) -> float:
    """The fastest of ``repeat`` calls of ``run`` (seconds; each run after an ``os.sync``)."""
    times = []
    for _ in range(repeat):
        os.sync()
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    return min(times)


def start_seconds() -> None:
    """A fresh interpreter that imports what ``preprocess`` imports before it works."""
    code = "import splendor_il.preprocess_cli, imitation_learning.job.build"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO_ROOT)


def read_all(spec: CacheSpec, paths) -> list:
    """Every path's piece from the cache (None where its entry is missing), one thread."""
    lookup = Lookup(spec)
    return [lookup.find(p)[0] for p in paths]


def write_rows(pieces, scaler: Scaler, path: Path) -> None:
    """``pieces``' rows of X, standardised, one after the other into the new file ``path``
    (with the job's own writer, :func:`write_rows_at`)."""
    path.touch(exist_ok=False)
    written = 0
    for piece in pieces:
        block = scaler.transform(piece.X.load(as_stored=True))
        write_rows_at(str(path), written, block)
        written += block.nbytes


def write_seconds(pieces, scaler: Scaler, folder: Path, threads: int) -> None:
    shares = [pieces[i::threads] for i in range(threads)]
    paths = [folder / f"x-{threads}-{i}.f32" for i in range(threads)]
    try:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(write_rows, shares, [scaler] * threads, paths))
    finally:
        for p in paths:
            p.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.rerun_floor", description=__doc__)
    parser.add_argument("--games", type=int, default=6650)
    parser.add_argument("--dialect", default="legacy", choices=["current", "legacy", "legacy-402"])
    parser.add_argument("--workers", type=int, default=2, help="of the first run")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--cache-dir", default=str(CACHE_DIR), help="where the dataset is")
    parser.add_argument("--json", help="write the figures there")
    args = parser.parse_args(argv)

    ds = get_dataset(args.games, cache_dir=args.cache_dir, dialect=args.dialect)
    work = Path(tempfile.mkdtemp(prefix="rerun-floor-"))
    try:
        out, cache = work / "processed", work / "processed.cache"
        config = work / "config.yaml"
        base = 11 if args.dialect.startswith("legacy") else 12
        config.write_text(f"reader:\n  blind_reserve_base: {base}\n")
        argv_first = ["preprocess", "--config", str(config), "--data-root", str(ds.root),
                      "--output", str(out), "--cache-dir", str(cache), "--num-workers", str(args.workers),
                      "--no-progress", "--dashboard-address", "127.0.0.1:0"]
        print(f"dataset {ds.key}: {ds.games} games, {ds.rows:,} rows; load average "
              f"{os.getloadavg()[0]:.2f}", flush=True)
        first, _ = run_probed(argv_first, work / "probe-first.json", "first run")
        print(f"first run ({args.workers} workers, empty cache)   {first:6.2f} s", flush=True)

        cfg = validate_config({"reader": {"blind_reserve_base": base}})
        paths = discover_csv_files(ds.root)
        scaler = Scaler.from_arrays(np.load(out / "scaler.npz"))
        x_bytes = sum((out / f"X_{s}.npy").stat().st_size for s in ("train", "val", "test"))
        os.sync()
        t0 = time.perf_counter()
        shutil.rmtree(out)  # what replacing the output costs, once the new one is in place
        figures = {"replacing_s": time.perf_counter() - t0}
        figures["start_s"] = best_of(args.repeat, start_seconds)
        figures["hashing_s"] = best_of(args.repeat, lambda: hash_files(paths))
        contents = hash_files(paths)
        spec = CacheSpec(str(cache), config_key(cfg), dict(zip(paths, contents, strict=True)))
        figures["reading_s"] = best_of(args.repeat, lambda: read_all(spec, paths))
        pieces = read_all(spec, paths)
        if any(p is None for p in pieces):
            raise RuntimeError("an entry is missing from the cache the first run made")
        for threads in (1, 2):
            figures[f"writing_{threads}_threads_s"] = best_of(
                args.repeat, lambda t=threads: write_seconds(pieces, scaler, work, t)
            )
        floor = (figures["start_s"] + figures["hashing_s"] + figures["reading_s"] / 2
                 + figures["writing_2_threads_s"] + figures["replacing_s"])
        figures.update(first_run_s=first, floor_s=floor, floor_share=floor / first,
                       x_bytes=x_bytes, files=len(paths), rows=ds.rows)
        for name, key in (("start (interpreter and imports)", "start_s"),
                          ("hashing the inputs", "hashing_s"),
                          ("reading every entry, one thread", "reading_s"),
                          (f"writing X ({x_bytes / GIB:.2f} GiB), one thread",
                           "writing_1_threads_s"),
                          ("writing X, two threads", "writing_2_threads_s"),
                          ("removing the replaced output", "replacing_s")):
            print(f"{name:<37}{figures[key]:6.2f} s", flush=True)
        print(f"floor on two cores: {floor:.2f} s = {100 * floor / first:.1f}% of the first "
              f"run (target for +1% games: 25%); load average at the end "
              f"{os.getloadavg()[0]:.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
