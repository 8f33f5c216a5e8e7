"""The bag job against the keyed futures it replaced, and 2 workers against 1.

    uv run python -m bench.bag_vs_keyed [--games 1000 6650] [--dialect current legacy]
        [--rounds 3] [--workers 2] [--cache-dir /work/benchdata] [--old-ref 4534f5c]
        [--json bench/results/bag_vs_keyed.json]

Two checkouts of the project run side by side, each extracted from git (``git archive``)
into a temporary folder and compiled to bytecode, both on this checkout's environment
(same libraries): ``keyed``, the commit ``--old-ref`` (default ``4534f5c``, the job of
``client.submit`` / ``client.map`` keyed futures), and ``bag``, ``--new-ref`` (default
``HEAD``, the Dask bag). Each run is a fresh interpreter, timed from its start to its exit
(end to end): ``in-memory`` is ``run_job`` (the job of ``process_files_parallel``) on a
local cluster of ``--workers`` processes; ``cli`` is ``splendor-il preprocess --no-cache``,
``cli-cache`` the same command with an empty result cache of its own (a user's first run).
Both sides cut the same files into the same partitions (``partition_sizes`` is unchanged).
The A and B runs alternate, the first side swapped every round; the load (``os.getloadavg``)
is recorded before each run.

``scaling`` (bag side only, the largest dataset): ``run_job`` on ``--workers`` workers
against 1 worker in process, each in a fresh interpreter, compared on the job's own
``processing_s`` (cluster start-up excluded).

Figures are printed and, with ``--json``, saved; never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.datasets import REPO_ROOT, get_dataset

RESULTS = Path(__file__).resolve().parent / "results" / "bag_vs_keyed.json"

IN_MEMORY = """
import json, sys
from imitation_learning.parallel_processor import discover_csv_files, run_job
root, base, workers = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
config = {"reader": {"blind_reserve_base": base},
          "preprocessing": {"dashboard_address": None}}
run = run_job(discover_csv_files(root), config, workers, progress=False)
print(json.dumps({"rows": len(run.result.df), "num_workers": run.num_workers,
                  **{k: run.timings[k] for k in ("cluster_start_s", "processing_s")}}))
"""

CLI = """
import sys
from splendor_il.cli import main
sys.exit(main(sys.argv[1:]))
"""


def checkout(ref: str, into: Path) -> Path:
    """``ref``'s tree extracted into ``into`` and compiled; its ``src`` folder."""
    into.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "archive", ref, "src"], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    src = into / "src"
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(src)], check=True)
    return src


def timed(src: Path, code: str, args: list[str]) -> tuple[float, str]:
    """Seconds from the start of a fresh interpreter running ``code`` to its exit, and its
    standard output."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DASK_")}
    env["PYTHONPATH"] = str(src)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True,
                          text=True, cwd=src.parent)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"run failed ({done.returncode}): {done.stderr[-2000:]}")
    return wall, done.stdout


def cli_args(ds, out: Path, workers: int, cache: bool = False) -> list[str]:
    """``preprocess`` without the result cache, or (``cache``) with an empty one of its
    own: a first run of the command as a user makes it."""
    config = out.parent / f"{out.name}.yaml"
    config.write_text(f"reader:\n  blind_reserve_base: {ds.blind_reserve_base}\n")
    cache_args = ["--cache-dir", str(out.parent / f"{out.name}.cache")] if cache else ["--no-cache"]
    return ["preprocess", "--config", str(config), "--data-root", str(ds.root), "--output",
            str(out), *cache_args, "--no-progress", "--num-workers", str(workers),
            "--dashboard-address", "127.0.0.1:0"]


def summary(times: list[float]) -> dict:
    return {"runs": times, "best": min(times), "median": statistics.median(times),
            "worst": max(times)}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench.bag_vs_keyed")
    parser.add_argument("--games", type=int, nargs="+", default=[1000, 6650])
    parser.add_argument("--dialect", nargs="+", default=["current", "legacy"],
                        help="the dialect of each --games entry")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--modes", nargs="+", default=["in-memory", "cli", "scaling"])
    parser.add_argument("--cache-dir", default=None, help="where the datasets are cached")
    parser.add_argument("--old-ref", default="4534f5c")
    parser.add_argument("--new-ref", default="HEAD")
    parser.add_argument("--json", nargs="?", const=str(RESULTS), default=None)
    args = parser.parse_args(argv)
    if len(args.dialect) != len(args.games):
        parser.error("give one --dialect for each --games entry")

    kwargs = {} if args.cache_dir is None else {"cache_dir": args.cache_dir}
    datasets = [get_dataset(g, dialect=d, **kwargs)
                for g, d in zip(args.games, args.dialect, strict=True)]
    result: dict = {"old_ref": args.old_ref, "new_ref": args.new_ref, "workers": args.workers,
                    "cpu_count": os.cpu_count(), "datasets": {}}
    with tempfile.TemporaryDirectory(prefix="bag-vs-keyed-") as tmp:
        tmp = Path(tmp)
        sides = {"keyed": checkout(args.old_ref, tmp / "keyed"),
                 "bag": checkout(args.new_ref, tmp / "bag")}
        for ds in datasets:
            figures: dict = {"rows": ds.rows, "files": len(ds.paths)}
            for mode in [m for m in args.modes if m in ("in-memory", "cli", "cli-cache")]:
                times: dict[str, list[float]] = {side: [] for side in sides}
                inner: dict[str, list[dict]] = {side: [] for side in sides}
                loads: list[float] = []
                for r in range(args.rounds):
                    order = list(sides) if r % 2 == 0 else list(sides)[::-1]
                    for side in order:
                        loads.append(os.getloadavg()[0])
                        if mode == "in-memory":
                            wall, out = timed(sides[side], IN_MEMORY,
                                              [str(ds.root), str(ds.blind_reserve_base),
                                               str(args.workers)])
                            inner[side].append(json.loads(out))
                            assert inner[side][-1]["rows"] > 0
                        else:
                            out_dir = tmp / f"out-{side}-{r}-{mode}"
                            wall, _ = timed(sides[side], CLI, cli_args(
                                ds, out_dir, args.workers, cache=mode == "cli-cache"))
                            shutil.rmtree(out_dir.parent / f"{out_dir.name}.cache",
                                          ignore_errors=True)
                            shutil.rmtree(out_dir, ignore_errors=True)
                        times[side].append(wall)
                        extra = (f", processing {inner[side][-1]['processing_s']:.2f} s"
                                 if mode == "in-memory" else "")
                        print(f"{ds.key} {mode} {side}: {wall:.2f} s{extra} "
                              f"(load {loads[-1]:.1f})", flush=True)
                figures[mode] = {side: summary(t) for side, t in times.items()}
                figures[mode]["bag_over_keyed_median"] = (
                    figures[mode]["bag"]["median"] / figures[mode]["keyed"]["median"])
                # Each round's pair ran back to back, so its ratio is free of the drift
                # between rounds; the median of those ratios is the steadier figure.
                figures[mode]["bag_over_keyed_paired"] = statistics.median(
                    b / k for b, k in zip(times["bag"], times["keyed"], strict=True))
                if mode == "in-memory":
                    for side in sides:
                        figures[mode][side]["processing_s"] = [
                            r["processing_s"] for r in inner[side]]
                    figures[mode]["processing_bag_over_keyed_paired"] = statistics.median(
                        b["processing_s"] / k["processing_s"]
                        for b, k in zip(inner["bag"], inner["keyed"], strict=True))
                figures[mode]["load"] = [min(loads), max(loads)]
            result["datasets"][ds.key] = figures
        if "scaling" in args.modes:
            ds = max(datasets, key=lambda d: d.rows)
            runs: dict[int, list[dict]] = {1: [], args.workers: []}
            for _ in range(args.rounds):
                for workers in runs:
                    _, out = timed(sides["bag"], IN_MEMORY,
                                   [str(ds.root), str(ds.blind_reserve_base), str(workers)])
                    runs[workers].append(json.loads(out))
                    print(f"{ds.key} scaling {workers} worker(s): processing "
                          f"{runs[workers][-1]['processing_s']:.2f} s", flush=True)
            one = statistics.median(r["processing_s"] for r in runs[1])
            many = statistics.median(r["processing_s"] for r in runs[args.workers])
            result["scaling"] = {"dataset": ds.key, "rows": ds.rows, "runs": runs,
                                 "speedup_median": one / many}
    for key, figures in result["datasets"].items():
        for mode in ("in-memory", "cli", "cli-cache"):
            if mode in figures:
                f = figures[mode]
                print(f"{key} {mode}: keyed median {f['keyed']['median']:.2f} s "
                      f"(best {f['keyed']['best']:.2f}), bag median {f['bag']['median']:.2f} s "
                      f"(best {f['bag']['best']:.2f}); bag/keyed {f['bag_over_keyed_median']:.3f}"
                      f" (medians), {f['bag_over_keyed_paired']:.3f} (median of the rounds' "
                      f"pairs), load {f['load'][0]:.1f}-{f['load'][1]:.1f}")
                if "processing_bag_over_keyed_paired" in f:
                    print(f"{key} {mode}: processing only, bag/keyed "
                          f"{f['processing_bag_over_keyed_paired']:.3f} (median of pairs)")
    if "scaling" in result:
        s = result["scaling"]
        print(f"scaling {s['dataset']} ({s['rows']:,} rows): {args.workers} workers vs 1 in "
              f"process, processing time: {s['speedup_median']:.2f}x (medians)")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
    return result


if __name__ == "__main__":
    main()
