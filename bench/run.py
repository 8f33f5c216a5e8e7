"""The job's throughput suites: ``per-file``, ``parallel``, ``scaling``, ``memory``, ``selfplay``.

    uv run python -m bench run per-file parallel        # through the registry (bench/suites.py)
    uv run python -m bench.run [all|parse|per-file|parallel|scaling|memory|selfplay] [--quick]

Datasets are self-play logs made by ``splendor-il simulate`` at a fixed seed and cached under
``bench/cache/`` (:mod:`bench.datasets`). What is measured (:mod:`bench.measure`):

- ``parse``: bare pyarrow parse of the main dataset, one thread, pinned to one core;
- ``per-file``: the same, and ``process_single_file`` over the same files (ratio to bare),
  and over the same games written in the older exporters' dialect (``legacy``: ratio of
  the two per-file rates);
- ``parallel``: the Dask job (``run_job``) at 1, 2, ... workers (up to the cores), and the
  same partitions through ``multiprocessing.Pool`` and ``ProcessPoolExecutor``; start-up
  apart from processing; then 1 against all workers with each run in a fresh interpreter;
- ``scaling``: the Dask job at all cores on datasets of growing size (time per row);
- ``memory``: the driver's peak RSS increase against the outputs' size, fresh process per size;
- ``selfplay``: games/s and rows/s of ``splendor.simulate.simulate``, random and greedy.

Results go to ``bench/results/`` (``--quick``: ``bench/cache/results-quick/``, not
committed): ``results.json``, ``results.md`` (table, machine, targets) and ``throughput.png``.
Sections measured by an earlier run into the same folder are kept (each has its date).
Targets are reported, never asserted.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bench import measure, report
from bench.datasets import CACHE_DIR, DEFAULT_PLAYERS, DEFAULT_SEED, REPO_ROOT, get_dataset

SUITES = ("all", "parse", "per-file", "parallel", "scaling", "memory", "selfplay")
RESULTS_DIR = REPO_ROOT / "bench" / "results"
QUICK_RESULTS_DIR = CACHE_DIR / "results-quick"


@dataclass(frozen=True)
class Plan:
    """Sizes of one run (full or ``--quick``)."""

    main_games: int  # the dataset of parse, per-file and parallel
    scaling_games: tuple[int, ...]
    repeat: int  # passes of the one-core measurements
    selfplay_games: int
    workers: tuple[int, ...]
    rounds: int = 1  # rounds of the parallel runners, interleaved; the fastest counts
    fresh_rounds: int = 0  # rounds of 1 against all workers, each run a fresh interpreter


def make_plan(quick: bool, cores: int | None = None) -> Plan:
    cores = cores or os.cpu_count() or 1
    workers = tuple(range(1, max(2, cores) + 1))  # 1, 2, and more where the cores allow
    if quick:
        return Plan(200, (50, 200, 500), 2, 30, workers, rounds=1, fresh_rounds=1)
    return Plan(1000, (100, 1000, 5000), 3, 150, workers, rounds=2, fresh_rounds=2)


def _say(message: str) -> None:
    print(message, flush=True)


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def run_parse(plan: Plan, cache_dir: Path, with_per_file: bool) -> dict:
    ds = get_dataset(plan.main_games, cache_dir=cache_dir, log=_say)
    legacy = {}
    if with_per_file:  # the same games in the older exporters' dialect
        old = get_dataset(plan.main_games, cache_dir=cache_dir, log=_say, dialect="legacy")
        config = measure.job_config()
        reader = {**config.get("reader", {}), "blind_reserve_base": old.blind_reserve_base}
        legacy = {"legacy_paths": old.paths, "legacy_config": {**config, "reader": reader}}
    _say(f"[parse{' + per-file' if with_per_file else ''}] {ds.key}: one core")
    out = measure.measure_parse_and_per_file(
        ds.paths, ds.rows, measure.job_config(), plan.repeat, with_per_file=with_per_file, **legacy
    )
    keys = ("bare_inferred", "bare_typed", "plain_tokenizer", "per_file")
    for key in (*keys, "plain_tokenizer_legacy", "per_file_legacy"):
        if key in out:
            _say(f"  {key:>22}: {out[key]['rows_per_s']:>10,.0f} rows/s")
    if with_per_file:
        _say(f"  per-file / bare parse: {out['per_file_vs_bare']:.2f}")
        _say(f"  per-file legacy / current: {out['legacy_vs_current']:.2f}")
        out["legacy_dataset"] = old.key
    _say(f"  CPU use: {out['cpu_use']:.0%}")
    return {"dataset": ds.key, "date": _now(), **out}


def run_parallel(plan: Plan, cache_dir: Path) -> dict:
    ds = get_dataset(plan.main_games, cache_dir=cache_dir, log=_say)
    _say(f"[parallel] {ds.key}: {len(ds.paths)} files, {ds.rows:,} rows")
    out: dict = {
        "dataset": ds.key,
        "date": _now(),
        "files": len(ds.paths),
        "rows": ds.rows,
        "workers": list(plan.workers),
        "rounds": plan.rounds,
        "dask": {},
        "multiprocessing": {},
        "futures": {},
    }

    def show(kind: str, w: int, r: dict) -> None:
        start = r.get("cluster_start_s", r.get("pool_start_s", 0.0))
        _say(
            f"  {kind:>15} x{w}: start {start:5.2f} s, processing {r['processing_s']:6.2f} s, "
            f"{r['rows_per_s']:>9,.0f} rows/s; driver CPU {r['driver_cpu_s']:5.2f} s; "
            f"CPU use {r['cpu_use']:.0%}"
        )

    runners = {
        "dask": lambda w: measure.measure_dask(ds.paths, ds.rows, w),
        "multiprocessing": lambda w: measure.measure_pool(ds.paths, ds.rows, w, "multiprocessing"),
        "futures": lambda w: measure.measure_pool(ds.paths, ds.rows, w, "futures"),
    }
    # Rounds over every (workers, runner) pair, so that a change in the machine's load (it is
    # shared) hits them alike; each keeps its fastest processing.
    for _ in range(plan.rounds):
        for w in plan.workers:
            for kind, runner in runners.items():
                r = runner(w)
                show(kind, w, r)
                best = out[kind].get(str(w))
                if best is None or r["processing_s"] < best["processing_s"]:
                    out[kind][str(w)] = r
    if plan.fresh_rounds and max(plan.workers) > 1:  # as the command line runs: new processes
        times = measure.fresh_runs(ds.root, max(plan.workers), plan.fresh_rounds)
        out["fresh_processing_s"] = {str(w): min(t) for w, t in times.items()}
        _say("  fresh interpreter, best processing: " + ", ".join(
            f"x{w} {min(t):.2f} s" for w, t in times.items()))
    return out


def run_scaling(plan: Plan, cache_dir: Path) -> dict:
    datasets = [get_dataset(g, cache_dir=cache_dir, log=_say) for g in plan.scaling_games]
    workers = max(plan.workers)
    _say(f"[scaling] Dask job, {workers} workers, and 1 worker (in-process)")
    points = []
    for ds in datasets:
        point = {"dataset": ds.key, "games": ds.games, "files": len(ds.paths), "rows": ds.rows}
        point["dask"] = measure.measure_dask(ds.paths, ds.rows, workers)
        one = point["in_process"] = measure.measure_dask(ds.paths, ds.rows, 1)
        points.append(point)
        _say(
            f"  {ds.games:>6} games, {ds.rows:>9,} rows: {workers} workers "
            f"{point['dask']['processing_s']:6.2f} s, {point['dask']['us_per_row']:6.1f} us/row; "
            f"1 worker {one['processing_s']:6.2f} s, {one['us_per_row']:6.1f} us/row; CPU use "
            f"{point['dask']['cpu_use']:.0%} / {one['cpu_use']:.0%}"
        )
    return {"date": _now(), "workers": workers, "points": points}


def run_memory(plan: Plan, cache_dir: Path) -> dict:
    datasets = [get_dataset(g, cache_dir=cache_dir, log=_say) for g in plan.scaling_games]
    counts = sorted({1, max(plan.workers)})
    _say(f"[memory] driver peak RSS, job in memory, {counts} workers, fresh process per run")
    points = []
    for ds in datasets:
        for workers in counts:
            r = measure.measure_driver_memory(ds.root, workers)
            points.append({"dataset": ds.key, "games": ds.games, **r})
            _say(
                f"  {ds.games:>6} games, {workers} workers: outputs "
                f"{r['outputs_bytes'] / 2**20:8.1f} MiB, driver peak "
                f"+{r['peak_increase_bytes'] / 2**20:8.1f} MiB "
                f"({r['peak_increase_over_outputs']:.2f}x)"
            )
    return {"date": _now(), "workers": counts, "points": points}


def run_selfplay(plan: Plan) -> dict:
    _say(f"[selfplay] {plan.selfplay_games} games per agent, players {DEFAULT_PLAYERS}")
    agents = []
    for agent in ("random", "greedy"):
        r = measure.measure_selfplay(agent, plan.selfplay_games, DEFAULT_PLAYERS, DEFAULT_SEED)
        agents.append(r)
        _say(f"  {agent:>6}: {r['games_per_s']:6.1f} games/s, {r['rows_per_s']:>8,.0f} rows/s")
    return {"date": _now(), "agents": agents}


def run(
    suite: str = "all",
    quick: bool = False,
    out_dir: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike = CACHE_DIR,
    plan: Plan | None = None,
    command: str | None = None,
) -> dict:
    """Measure ``suite``, merge into the results in ``out_dir`` and write them; return them."""
    if suite not in SUITES:
        raise ValueError(f"unknown suite {suite!r}; one of {', '.join(SUITES)}")
    plan = plan or make_plan(quick)
    cache_dir = Path(cache_dir)
    out_dir = (
        Path(out_dir) if out_dir is not None else (QUICK_RESULTS_DIR if quick else RESULTS_DIR)
    )
    os.environ.pop("DASK_SCHEDULER_ADDRESS", None)  # the job must start its own clusters

    previous = report.load_results(out_dir)
    sections = dict(previous["sections"]) if previous and previous.get("quick") == quick else {}
    results = {
        "command": command or f"uv run python -m bench.run {suite}" + (" --quick" if quick else ""),
        "quick": quick,
        "plan": plan.__dict__
        | {"scaling_games": list(plan.scaling_games), "workers": list(plan.workers)},  # fmt: skip
        "machine": report.machine_info(),
        "sections": sections,
    }
    t0 = time.perf_counter()
    if suite == "all":  # generate every dataset first, so that nothing else runs meanwhile
        for games in sorted({plan.main_games, *plan.scaling_games}):
            get_dataset(games, cache_dir=cache_dir, log=_say)
        get_dataset(plan.main_games, cache_dir=cache_dir, log=_say, dialect="legacy")
    if suite in ("all", "per-file"):
        sections.pop("parse", None)
        sections["per_file"] = run_parse(plan, cache_dir, with_per_file=True)
    elif suite == "parse":
        sections["parse"] = run_parse(plan, cache_dir, with_per_file=False)
    if suite in ("all", "parallel"):
        sections["parallel"] = run_parallel(plan, cache_dir)
    if suite in ("all", "scaling"):
        sections["scaling"] = run_scaling(plan, cache_dir)
    if suite in ("all", "memory"):
        sections["memory"] = run_memory(plan, cache_dir)
    if suite in ("all", "selfplay"):
        sections["selfplay"] = run_selfplay(plan)
    results["elapsed_s"] = round(time.perf_counter() - t0, 1)
    results["machine"]["load_avg_1m_at_end"] = report.load_average()

    written = report.write_results(results, out_dir)
    _say("\ntargets:")
    for t in results["targets"]:
        value = "not measured" if t["value"] is None else f"{t['value']:.2f}"
        met = {True: "met", False: "MISSED", None: "-"}[t["met"]]
        _say(f"  {t['name']:<48} {value:>12}  {met}")
    _say(f"\n{results['elapsed_s']:.0f} s; written: {', '.join(str(p) for p in written)}")
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run", description=__doc__.splitlines()[0]
    )
    parser.add_argument("suite", nargs="?", default="all", choices=SUITES)
    parser.add_argument("--quick", action="store_true", help="small sizes (50, 200, 500 games)")
    parser.add_argument("--out", default=None, help="results folder (default: bench/results)")
    parser.add_argument("--cache", default=str(CACHE_DIR), help="dataset cache folder")
    args = parser.parse_args(argv)
    command = " ".join(["uv run python -m bench.run", *(sys.argv[1:] if argv is None else argv)])
    run(args.suite, args.quick, args.out, args.cache, command=command)
    return 0


if __name__ == "__main__":
    sys.exit(main())
