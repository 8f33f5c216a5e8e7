"""The ``fullsize`` suite: ``splendor-il preprocess`` on a dataset of the size this kind of
project trains on, timed end to end as a fresh process, with the driver's peak memory and
the time of each stage.

    uv run python -m bench.fullsize [--games 6650] [--dialect legacy] [--workers 1 2]
                                    [--modes in-memory out-of-core] [--rounds 1]

The dataset: ``--games`` greedy self-play games of 2-4 players (default 6,650: about
550,000 rows, the row count of the 5,700 games of the issue's older-exporter dataset; our
simulator's games are shorter), generated once by ``splendor-il simulate`` and cached under
``bench/cache/`` (:mod:`bench.datasets`). ``--dialect legacy`` passes ``--dialect legacy``
to ``simulate`` (the older exporter's quirks) and ``reader.blind_reserve_base: 11`` to the
job.

Each run is ``splendor-il preprocess`` in a fresh interpreter (``--probe``: the command's
``main`` in this process, which then prints its peak resident size, ``VmHWM``, on one JSON
line); the wall time is taken around the whole process, from its start to its exit. The
stages come from the run's ``stats.json``: cluster start, processing (phase 1, up to the
last partition's summary), plan (the driver between the phases), writing (phase 2: X,
labels and masks written by the workers), flush (only with ``--durable``), cluster close,
metadata (the small files and the swap). *Workers idle* is the time the command ran after
its cluster was up with no worker computing a task (from the cluster's task stream),
process exit included. Figures are printed and saved (``--json``), never asserted.
Targets (2 workers): end to end <= 20 s, processing >= 45,000 rows/s, workers idle <= 2 s,
driver peak <= 1 GiB.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from bench.datasets import CACHE_DIR, REPO_ROOT, get_dataset

WORK_DIR = CACHE_DIR / "fullsize"
DEFAULT_GAMES = 6650
MODES = ("in-memory", "out-of-core")
GIB = 2**30
STAGE_KEYS = (
    "discover_s", "cluster_start_s", "processing_s", "plan_s", "write_s", "flush_s",
    "cluster_close_s",
)


def probe(argv: list[str], result_path: str) -> int:
    """Run ``splendor-il`` with ``argv`` in this process; record its peak memory."""
    t0 = time.perf_counter()
    from bench.memprobe import peak_rss_bytes
    from splendor_il.cli import main

    code = main(argv)
    inner = time.perf_counter() - t0
    Path(result_path).write_text(
        json.dumps({"exit_code": code, "peak_rss_bytes": peak_rss_bytes(), "inner_s": inner})
    )
    return code


def run_probed(argv: list[str], result_path: Path, name: str) -> tuple[float, str]:
    """``splendor-il *argv`` in a fresh interpreter under ``--probe`` (its peak memory and
    inner time into ``result_path``), without the caller's scheduler address: (wall s from
    the process's start to its exit, its stdout).

    The earlier runs' writes are flushed to disk first (``os.sync``), so that no run
    shares the disk with the write-back of the gigabytes of X the run before it left in
    the page cache (the kernel holds writers back when too much is dirty)."""
    os.sync()
    command = [sys.executable, "-m", "bench.fullsize", "--probe", str(result_path), "--", *argv]
    env = {k: v for k, v in os.environ.items() if k != "DASK_SCHEDULER_ADDRESS"}
    t0 = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO_ROOT)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{name} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    return wall, proc.stdout


def run_once(
    data_root: Path,
    mode: str,
    workers: int,
    dialect: str,
    durable: bool = False,
    work_dir: Path = WORK_DIR,
    result_cache: bool = True,
) -> dict:
    """One ``splendor-il preprocess`` in a fresh process; its figures. With
    ``result_cache`` the run keeps its per-file result cache beside the output, as by
    default, starting empty (a first run); without, it runs with ``--no-cache``."""
    out = work_dir / f"{mode}-{workers}"
    cache = out.with_name(out.name + ".cache")  # the command's default cache folder
    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(cache, ignore_errors=True)
    work_dir.mkdir(parents=True, exist_ok=True)
    config = work_dir / "config.yaml"
    base = 11 if dialect.startswith("legacy") else 12  # the older exporters' blind reserves
    config.write_text(f"reader:\n  blind_reserve_base: {base}\n")
    result_path = work_dir / f"probe-{mode}-{workers}.json"
    argv = ["preprocess", "--config", str(config), "--data-root", str(data_root)]
    argv += ["--output", str(out), "--num-workers", str(workers), "--no-progress"]
    argv += ["--dashboard-address", "127.0.0.1:0"]
    argv += ["--out-of-core"] if mode == "out-of-core" else []
    argv += ["--durable"] if durable else []
    argv += [] if result_cache else ["--no-cache"]
    wall, _ = run_probed(argv, result_path, f"{mode} x{workers}")
    probe_result = json.loads(result_path.read_text())
    stats = json.loads((out / "stats.json").read_text())
    t = stats["timings"]
    rows = stats["rows_read"]
    figures = {
        "mode": mode,
        "workers": workers,
        "rows": rows,
        "wall_s": wall,
        "rows_per_s": rows / wall,
        "driver_peak_bytes": probe_result["peak_rss_bytes"],
        "dataset_bytes": sum(p.stat().st_size for p in out.iterdir()),
        "timings": t,
        "processing_rows_per_s": rows / t["processing_s"],
        "outside_main_s": wall - probe_result["inner_s"],  # interpreter start and exit
    }
    staged = sum(t.get(k, 0.0) for k in STAGE_KEYS)
    figures["other_s"] = wall - figures["outside_main_s"] - staged  # metadata, swap, exit
    if "workers_busy_s" in t:
        # from the cluster being up to the process's exit, minus the time a worker computed
        up_to_exit = wall - (figures["outside_main_s"] + t["discover_s"] + t["cluster_start_s"])
        figures["workers_idle_s"] = up_to_exit - t["workers_busy_s"]
    figures["result_cache"] = result_cache
    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(cache, ignore_errors=True)
    return figures


def _show(r: dict) -> None:
    t = r["timings"]
    idle = f"{r['workers_idle_s']:5.2f} s" if "workers_idle_s" in r else "    -  "
    print(
        f"{r['mode']:<12} x{r['workers']}  end to end {r['wall_s']:6.2f} s "
        f"({r['rows_per_s']:7,.0f} rows/s)  driver peak {r['driver_peak_bytes'] / GIB:5.2f} GiB  "
        f"workers idle {idle}\n"
        f"    start-up {r['outside_main_s'] + t['discover_s']:5.2f} s, cluster start "
        f"{t['cluster_start_s']:5.2f} s, processing {t['processing_s']:6.2f} s "
        f"({r['processing_rows_per_s']:7,.0f} rows/s), plan {t['plan_s']:5.2f} s, "
        f"write {t['write_s']:5.2f} s, flush {t['flush_s']:5.2f} s, cluster close "
        f"{t.get('cluster_close_s', 0.0):5.2f} s, metadata and swap {r['other_s']:5.2f} s",
        flush=True,
    )


def plot(results: list[dict], path: Path) -> None:
    """Stacked stage times of each run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stages = [
        ("start-up", lambda r, t: r["outside_main_s"] + t["discover_s"]),
        ("cluster start", lambda r, t: t["cluster_start_s"]),
        ("processing (phase 1)", lambda r, t: t["processing_s"]),
        ("plan (driver)", lambda r, t: t["plan_s"]),
        ("writing (phase 2)", lambda r, t: t["write_s"] + t["flush_s"]),
        ("cluster close", lambda r, t: t.get("cluster_close_s", 0.0)),
        ("metadata + swap", lambda r, t: r["other_s"]),
    ]
    labels = [f"{r['mode']}\n{r['workers']} worker{'s' if r['workers'] > 1 else ''}" for r in results]
    fig, ax = plt.subplots(figsize=(9.5, 4.5))
    left = [0.0] * len(results)
    for name, get in stages:
        widths = [get(r, r["timings"]) for r in results]
        ax.barh(labels, widths, left=left, label=name)
        left = [a + b for a, b in zip(left, widths, strict=True)]
    for y, r in enumerate(results):
        ax.text(r["wall_s"], y, f" {r['wall_s']:.1f} s", va="center", fontsize=8)
    ax.axvline(20, color="grey", linestyle="--", linewidth=1)
    ax.set_xlabel("seconds, end to end (fresh process); dashed: 20 s target")
    ax.set_title(f"splendor-il preprocess, {results[0]['rows']:,} rows")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.invert_yaxis()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--probe"]:
        sys.exit(probe(argv[3:], argv[1]))  # --probe RESULT -- ARGV...
    parser = argparse.ArgumentParser(prog="python -m bench.fullsize", description=__doc__)
    parser.add_argument("--games", type=int, default=DEFAULT_GAMES)
    parser.add_argument(
        "--dialect",
        default="legacy",
        choices=["current", "legacy", "legacy-402"],
        help="the logs' dialect (default legacy: the older exporters' text, as users' data)",
    )
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    parser.add_argument("--rounds", type=int, default=1, help="runs of each; the fastest kept")
    parser.add_argument("--durable", action="store_true", help="run with --durable (fsync)")
    parser.add_argument("--cache-dir", default=str(CACHE_DIR))
    parser.add_argument(
        "--no-result-cache",
        action="store_true",
        help="run preprocess with --no-cache (default: its result cache, empty: a first run)",
    )
    parser.add_argument("--json", help="write the figures there")
    parser.add_argument("--plot", help="write the stage plot (PNG) there")
    args = parser.parse_args(argv)

    ds = get_dataset(args.games, cache_dir=args.cache_dir, dialect=args.dialect)
    load_start = os.getloadavg()[0]
    cache_state = "off (--no-cache)" if args.no_result_cache else "on, empty (a first run)"
    print(f"dataset {ds.key}: {ds.games} games, {ds.rows:,} rows; result cache "
          f"{cache_state}; load average {load_start:.2f}", flush=True)
    best: dict[tuple, dict] = {}
    for _ in range(args.rounds):
        for workers in args.workers:
            for mode in args.modes:
                r = run_once(
                    ds.root, mode, workers, args.dialect, args.durable,
                    result_cache=not args.no_result_cache,
                )
                _show(r)
                key = (mode, workers)
                if key not in best or r["wall_s"] < best[key]["wall_s"]:
                    best[key] = r
    results = list(best.values())
    load_end = os.getloadavg()[0]
    print(f"load average at the end {load_end:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(
            {"dataset": ds.key, "rows": ds.rows, "games": ds.games, "load_start": load_start,
             "load_end": load_end, "results": results},
            indent=2,
        ))
    if args.plot:
        plot(results, Path(args.plot))


if __name__ == "__main__":
    main()
