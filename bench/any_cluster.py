"""Per-file speed on Dask clusters the job did not start, against the job's own cluster.

    uv run python -m bench.any_cluster [--games 1200] [--dialect legacy]
                                       [--cache-dir bench/cache] [--repeat 3] [--workers 2]
                                       [--json]

The job (``assembly.build_dataset``, the command line's ``preprocess`` without the result
cache) runs on each cluster in turn, round after round (interleaved, all in one run):

- ``own``: the cluster the job starts itself (``cluster.pool_client``: its workers run
  without Dask's ``MALLOC_TRIM_THRESHOLD_``);
- ``dask worker``: ``dask scheduler`` and ``dask worker --nworkers W --nthreads 1``, started
  with Dask's defaults (so the nannies give every worker ``MALLOC_TRIM_THRESHOLD_=65536``);
- ``dask worker, no tuning``: another such cluster whose workers have the job's allocator
  tuning turned off from the start (``allocator.set_tuning(False)``): how the job ran
  there before;
- ``caller's LocalCluster``: ``distributed.LocalCluster`` with Dask's defaults, made here.

Per run: rows read / seconds the bag's processing tasks computed (summed over the
workers) = the per-file step's rows/s per worker, its ratio to the ``own`` run of the same
round; rows read / CPU seconds of the workers over the whole run (both phases: less
sensitive to the other processes of a shared machine) and its ratio; the processing time
(phase 1, as the job times it), the write tasks' rows/s per worker (phase 2), and the
workers' minor page faults over the run (``/proc/<pid>/stat``).
Every run's files must be byte-identical to the first run's (``stats.json`` aside).
``--json`` writes ``bench/results/any_cluster.json``.

First, without a cluster: the per-file step in a fresh process (in a thread, as on a
worker) with glibc's own thresholds, with Dask's ``MALLOC_TRIM_THRESHOLD_`` and the
tuning off, and with it and the tuning on: CPU microseconds and page faults a row.

The machine may be shared: compare the ratios within a round, and read the ranges; CPU
time and page faults say more than wall time on a busy machine.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path

if not __package__:  # run as a script: make the bench package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.datasets import CACHE_DIR, get_dataset  # noqa: E402
from imitation_learning.job.bag import process_task_name  # noqa: E402
from imitation_learning.job.executors import task_seconds_key  # noqa: E402

#: The ``timings`` entry of the bag's processing tasks' compute seconds (over the workers).
PROCESS_SECONDS = task_seconds_key(process_task_name())

RESULTS = Path(__file__).resolve().parent / "results" / "any_cluster.json"
TARGET_RATIO = 0.95

#: The ``dask`` command of the environment running this code.
DASK = str(Path(sys.executable).parent / "dask")


def _dask_defaults_env() -> dict[str, str]:
    """This process's environment without any Dask setting or malloc variable: a cluster
    started with it runs Dask's defaults."""
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("DASK_") and not k.startswith("MALLOC_") and k != "GLIBC_TUNABLES"
    }


@contextmanager
def dask_command_cluster(workers: int, folder: Path):
    """``dask scheduler`` + ``dask worker --nworkers workers --nthreads 1`` on 127.0.0.1,
    Dask's defaults; yields the scheduler address. Both stopped on exit."""
    folder.mkdir(parents=True, exist_ok=True)
    scheduler_file = folder / "scheduler.json"
    env = _dask_defaults_env()
    procs = []
    try:
        # in this process's session, as the job's own cluster: with the kernel's autogroup
        # scheduling, a session of its own would get its own share of a busy machine
        common = dict(stdin=subprocess.DEVNULL, env=env)
        with open(folder / "scheduler.log", "wb") as log:
            procs.append(
                subprocess.Popen(
                    [DASK, "scheduler", "--host", "127.0.0.1", "--port", "0",
                     "--dashboard-address", "127.0.0.1:0", "--scheduler-file",
                     str(scheduler_file)],
                    stdout=log, stderr=subprocess.STDOUT, **common,
                )
            )
        deadline = time.monotonic() + 60
        while not scheduler_file.exists():
            if time.monotonic() > deadline or procs[0].poll() is not None:
                raise RuntimeError("dask scheduler did not start: " + (folder / "scheduler.log")
                                   .read_text(errors="replace")[-2000:])
            time.sleep(0.1)
        with open(folder / "worker.log", "wb") as log:
            procs.append(
                subprocess.Popen(
                    [DASK, "worker", "--scheduler-file", str(scheduler_file), "--nworkers",
                     str(workers), "--nthreads", "1", "--host", "127.0.0.1",
                     "--no-dashboard", "--local-directory", str(folder / "workers")],
                    stdout=log, stderr=subprocess.STDOUT, **common,
                )
            )
        address = json.loads(scheduler_file.read_text())["address"]
        from distributed import Client

        with Client(address, timeout=30) as client:
            client.wait_for_workers(workers, timeout=120)
        yield address
    finally:
        for proc in reversed(procs):  # the workers first, then the scheduler
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@contextmanager
def own_cluster(workers: int):
    """The cluster the job starts itself; yields its scheduler address."""
    from imitation_learning.cluster import pool_client

    with pool_client(workers, dashboard_address=None) as client:
        yield client.scheduler.address


@contextmanager
def callers_local_cluster(workers: int):
    """``LocalCluster`` as a caller makes it, Dask's defaults; yields its address."""
    from distributed import LocalCluster

    saved = os.environ.get("MALLOC_TRIM_THRESHOLD_")
    with LocalCluster(
        n_workers=workers,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
    ) as cluster:
        # the nannies put Dask's setting into this process's environment: not ours to keep
        if saved is None:
            os.environ.pop("MALLOC_TRIM_THRESHOLD_", None)
        yield cluster.scheduler_address


def _worker_counters() -> tuple[int, float]:
    """(minor page faults, CPU seconds) of this process so far (run on a worker)."""
    fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[7]), (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _state() -> str:
    from imitation_learning import allocator

    return allocator.state()


def _no_tuning() -> None:
    from imitation_learning import allocator

    allocator.set_tuning(False)


def run_once(address: str, paths, config: dict, out: Path) -> dict:
    """One run of the job on the cluster at ``address``; its figures."""
    from distributed import Client

    from imitation_learning.job.build import build_dataset

    cfg = json.loads(json.dumps(config))
    cfg.setdefault("preprocessing", {})["scheduler_address"] = address
    cfg.setdefault("data", {})["processed_dir"] = str(out)
    with Client(address, timeout=30) as client:
        states = client.run(_state)
        before = client.run(_worker_counters)
        with contextlib.redirect_stderr(io.StringIO()):  # the job's line about the cluster
            run = build_dataset(list(paths), cfg, progress=False)
        after = client.run(_worker_counters)
    faults = sum(after[w][0] - before[w][0] for w in before if w in after)
    cpu = sum(after[w][1] - before[w][1] for w in before if w in after)
    t = run.timings
    process_s = t[PROCESS_SECONDS]  # the bag's processing tasks, summed over the workers
    return {
        "rows_read": run.rows_read,
        "processing_s": t["processing_s"],
        "write_s": t["write_s"],
        "task_process_partition_s": process_s,
        "task_write_x_rows_s": t.get("task_write_x_rows_s", 0.0),
        "rows_per_s_per_worker": run.rows_read / process_s,
        "write_rows_per_s_per_worker": run.rows_read / max(t.get("task_write_x_rows_s", 0), 1e-9),
        "worker_faults_per_row": faults / run.rows_read,
        "worker_cpu_s": cpu,
        "rows_per_worker_cpu_s": run.rows_read / cpu,
        "allocator_before_run": sorted(set(states.values())),
    }


#: The per-file step of phase 1 (``process_partition_rows``, under ``allocator.tuned`` as
#: the bag's tasks run it) on partitions of 100 files in a thread of a fresh process (as on
#: a worker), after one partition to warm up: prints
#: rows, user and system CPU seconds and minor page faults of the measured ones.
_IN_PROCESS = """
import json, resource, sys, threading
from imitation_learning import allocator
from imitation_learning.config import validate_config
from imitation_learning.partition_rows import process_partition_rows as step
process_partition_rows = allocator.tuned(step)
paths, base, tuning = json.loads(sys.argv[1])
allocator.set_tuning(tuning)
cfg = validate_config({"reader": {"blind_reserve_base": base}})
parts = [paths[i : i + 100] for i in range(0, len(paths), 100)]
out = {}
def work():
    process_partition_rows(parts[0], cfg)
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    kept = [process_partition_rows(p, cfg) for p in parts[1:]]
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    out.update(rows=sum(k.summary.rows_read for k in kept), user_s=r1.ru_utime - r0.ru_utime,
               sys_s=r1.ru_stime - r0.ru_stime, faults=r1.ru_minflt - r0.ru_minflt)
t = threading.Thread(target=work)
t.start()
t.join()
print(json.dumps(out))
"""

#: In-process cases: (name, MALLOC_TRIM_THRESHOLD_ or None, tuning on).
IN_PROCESS_CASES = (
    ("glibc's own thresholds", None, True),
    ("Dask's setting, no tuning", "65536", False),
    ("Dask's setting, tuned", "65536", True),
)


def in_process(data, files: int, repeat: int) -> dict:
    """CPU seconds and page faults of the per-file step in one process, per case,
    interleaved ``repeat`` times: what the setting costs, free of the cluster and much less
    sensitive to a busy machine than times."""
    argv = json.dumps([list(data.paths[: files + 100]), data.blind_reserve_base, True])
    runs: dict[str, list[dict]] = {name: [] for name, _, _ in IN_PROCESS_CASES}
    for _ in range(repeat):
        for name, trim, tuning in IN_PROCESS_CASES:
            env = _dask_defaults_env()
            if trim is not None:
                env["MALLOC_TRIM_THRESHOLD_"] = trim
            args = json.loads(argv)
            args[2] = tuning
            proc = subprocess.run(
                [sys.executable, "-c", _IN_PROCESS, json.dumps(args)],
                env=env, capture_output=True, text=True, check=True, timeout=600,
            )
            runs[name].append(json.loads(proc.stdout))
    summary = {}
    for name, results in runs.items():
        rows = results[0]["rows"]
        cpu = [(r["user_s"] + r["sys_s"]) / rows * 1e6 for r in results]
        summary[name] = {
            "rows": rows,
            "cpu_us_per_row_median": statistics.median(cpu),
            "cpu_us_per_row_range": (min(cpu), max(cpu)),
            "sys_us_per_row_median": statistics.median(r["sys_s"] / rows * 1e6 for r in results),
            "faults_per_row_median": statistics.median(r["faults"] / rows for r in results),
        }
    return {"runs": runs, "summary": summary}


def digest(folder: Path) -> dict[str, str]:
    """sha256 of every file of a saved dataset but ``stats.json`` (timings, settings)."""
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.iterdir())
        if p.name != "stats.json"
    }


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


VARIANTS = ("own", "dask worker", "dask worker, no tuning", "caller's LocalCluster")


def measure(data, workers: int, repeat: int, variants=VARIANTS) -> dict:
    config = {
        "reader": {"blind_reserve_base": data.blind_reserve_base},
        "preprocessing": {"num_workers": workers, "dashboard_address": None},
    }
    runs: dict[str, list[dict]] = {v: [] for v in variants}
    reference = None
    with tempfile.TemporaryDirectory(prefix="bench-any-cluster-") as tmp, ExitStack() as stack:
        work = Path(tmp)
        addresses = {}
        addresses["own"] = stack.enter_context(own_cluster(workers))
        addresses["dask worker"] = stack.enter_context(
            dask_command_cluster(workers, work / "dask")
        )
        if "dask worker, no tuning" in variants:
            # a cluster of its own, never tuned: memory the tuning left in a worker's heap
            # would serve the untuned runs' arrays and hide what they cost
            address = stack.enter_context(dask_command_cluster(workers, work / "dask-untuned"))
            from distributed import Client

            with Client(address, timeout=30) as client:
                client.run(_no_tuning)
            addresses["dask worker, no tuning"] = address
        if "caller's LocalCluster" in variants:
            addresses["caller's LocalCluster"] = stack.enter_context(
                callers_local_cluster(workers)
            )
        for name in variants:  # a first run each: imports, caches (not counted)
            out = work / "warm" / "processed"
            run_once(addresses[name], data.paths, config, out)
            if reference is None:
                reference = digest(out)
            shutil.rmtree(out.parent)
        for r in range(repeat):
            for name in variants:
                out = work / f"{r}" / "processed"
                result = run_once(addresses[name], data.paths, config, out)
                if digest(out) != reference:
                    raise AssertionError(f"{name}: the saved files differ from the first run's")
                shutil.rmtree(out.parent)
                result["load"] = _load()
                runs[name].append(result)
            own = runs["own"][-1]
            for name in variants:
                res = runs[name][-1]
                res["vs_own"] = res["rows_per_s_per_worker"] / own["rows_per_s_per_worker"]
                res["cpu_vs_own"] = res["rows_per_worker_cpu_s"] / own["rows_per_worker_cpu_s"]
                print(
                    f"round {r + 1}: {name:24s} per-file {res['rows_per_s_per_worker']:8,.0f} "
                    f"rows/s/worker ({res['vs_own']:.2f}x own), "
                    f"{res['rows_per_worker_cpu_s']:7,.0f} rows/CPU s "
                    f"({res['cpu_vs_own']:.2f}x own), processing "
                    f"{res['processing_s']:5.2f} s, writes "
                    f"{res['write_rows_per_s_per_worker']:9,.0f} rows/s/worker, "
                    f"{res['worker_faults_per_row']:5.1f} faults/row "
                    f"(load {res['load']})",
                    flush=True,
                )
    summary = {}
    for name, results in runs.items():
        ratios = [x["vs_own"] for x in results]
        summary[name] = {
            "rows_per_s_per_worker_median": statistics.median(
                x["rows_per_s_per_worker"] for x in results
            ),
            "vs_own_median": statistics.median(ratios),
            "vs_own_min": min(ratios),
            "vs_own_max": max(ratios),
            "rows_per_worker_cpu_s_median": statistics.median(
                x["rows_per_worker_cpu_s"] for x in results
            ),
            "cpu_vs_own_median": statistics.median(x["cpu_vs_own"] for x in results),
            "cpu_vs_own_min": min(x["cpu_vs_own"] for x in results),
            "cpu_vs_own_max": max(x["cpu_vs_own"] for x in results),
            "processing_s_median": statistics.median(x["processing_s"] for x in results),
            "write_rows_per_s_per_worker_median": statistics.median(
                x["write_rows_per_s_per_worker"] for x in results
            ),
            "faults_per_row_median": statistics.median(
                x["worker_faults_per_row"] for x in results
            ),
        }
    return {"runs": runs, "summary": summary}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--games", type=int, default=1200)
    p.add_argument("--dialect", default="legacy")
    p.add_argument("--cache-dir", default=str(CACHE_DIR), help="where the datasets are kept")
    p.add_argument("--repeat", type=int, default=3, help="interleaved rounds")
    p.add_argument("--workers", type=int, default=2, help="worker processes of each cluster")
    p.add_argument(
        "--variants",
        nargs="+",
        choices=VARIANTS,
        default=list(VARIANTS),
        help="clusters to run on (own is always run: the ratios are to it)",
    )
    p.add_argument(
        "--in-process-files",
        type=int,
        default=400,
        help="files of the in-process comparison (after 100 to warm up)",
    )
    p.add_argument("--json", action="store_true", help="write bench/results/any_cluster.json")
    args = p.parse_args(argv)
    variants = tuple(v for v in VARIANTS if v == "own" or v in args.variants)
    data = get_dataset(args.games, dialect=args.dialect, cache_dir=args.cache_dir)
    print(
        f"{data.key}: {data.games} files, {data.rows:,} rows; {args.workers} workers a "
        f"cluster, {os.cpu_count()} cores; load {_load()}"
    )
    local = in_process(data, args.in_process_files, args.repeat)
    print(
        f"\nIn one process (per-file step of phase 1, {args.in_process_files} files in "
        "partitions of 100, a thread; CPU time, not wall):\n"
        "| case | CPU us a row (median) | range | of which system | page faults a row |"
    )
    print("|---|---:|---:|---:|---:|")
    for name, s in local["summary"].items():
        lo, hi = s["cpu_us_per_row_range"]
        print(
            f"| {name} | {s['cpu_us_per_row_median']:.1f} | {lo:.1f}-{hi:.1f} "
            f"| {s['sys_us_per_row_median']:.1f} | {s['faults_per_row_median']:.2f} |"
        )
    print()
    result = measure(data, args.workers, args.repeat, variants)
    result["in_process"] = local
    print(
        "\n| cluster | per-file rows/s per worker (median) | vs own (median) | vs own "
        "(range) | rows per worker CPU s | vs own (range) | processing s (median) "
        "| write rows/s per worker | page faults a row |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, s in result["summary"].items():
        print(
            f"| {name} | {s['rows_per_s_per_worker_median']:,.0f} | {s['vs_own_median']:.2f}x "
            f"| {s['vs_own_min']:.2f}-{s['vs_own_max']:.2f}x "
            f"| {s['rows_per_worker_cpu_s_median']:,.0f} | {s['cpu_vs_own_median']:.2f}x "
            f"({s['cpu_vs_own_min']:.2f}-{s['cpu_vs_own_max']:.2f}) "
            f"| {s['processing_s_median']:.2f} "
            f"| {s['write_rows_per_s_per_worker_median']:,.0f} "
            f"| {s['faults_per_row_median']:.1f} |"
        )
    ok = None
    if "dask worker" in result["summary"]:
        ok = result["summary"]["dask worker"]["vs_own_median"] >= TARGET_RATIO
        print(f"\ntarget: dask worker >= {TARGET_RATIO}x own (median): {'met' if ok else 'NOT met'}")
    if args.json:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "dataset": data.key,
            "rows": data.rows,
            "workers": args.workers,
            "repeat": args.repeat,
            "cores": os.cpu_count(),
            "target_ratio": TARGET_RATIO,
            "target_met": ok,
            "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            **result,
        }
        RESULTS.write_text(json.dumps(payload, indent=1) + "\n")
        print(f"written: {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
