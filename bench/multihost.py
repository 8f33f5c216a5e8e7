"""Benchmark of the job across hosts: simulated hosts (network namespaces) against this
machine alone, results fetched from the workers against relayed through the scheduler,
and what losing a worker host mid-run costs.

    sudo uv run python -m bench.multihost [--games 1200] [--dialect legacy]
        [--cache-dir bench/cache] [--repeat 3] [--variants ...] [--disruptions 2]
        [--with-defaults] [--rate-mbit 1000] [--json]

Needs root (``ip netns add``). The hosts are those of the tests (``cluster/netns.py``):
a scheduler host and two worker hosts (``dask worker`` under a nanny, one thread), with the
settings of ``cluster/dask.env``; the job runs here, on its own host, as the command line
(``splendor-il preprocess --no-cache``, a fresh interpreter per run, with the same
settings). Every run processes the same games (``bench.datasets``), and its files must be
byte-identical to those of the local run. Variants, interleaved round by round, after a
first run of each (its processing shown apart: the workers' warm-up):

- ``local``: the job's own cluster (2 worker processes on this machine, started by the job);
- ``loopback``: ``cluster/local-cluster.sh`` (the same ``dask`` commands, all on 127.0.0.1);
- ``hosts, direct``: workers the job reaches (the probe says so): results from the workers;
- ``hosts, direct, allocator not tuned``: the same on a second cluster of hosts whose
  workers have the job's malloc tuning turned off from the start
  (``allocator.set_tuning(False)``): what Dask's ``MALLOC_TRIM_THRESHOLD_`` costs there,
  as before the tuning;
- ``hosts, relay (forced)``: the same hosts, the probe overruled: results via the scheduler;
- ``hosts behind the scheduler``: workers on a network the job cannot reach: relayed.

Each run's processing (phase 1) is split into the per-file step's compute per worker and
the rest (scheduling, the summaries' fetch, waiting for the last partition).

``--disruptions N``: N rounds of an undisturbed run, a worker host cut off mid-run (link
down) and one killed mid-run (every process), each on a freshly started cluster of hosts;
``--with-defaults`` adds a host cut off a cluster (and job) with Dask's default time-outs.
``--rate-mbit R``: every host's link limited to R Mbit/s each way for the results-path runs
(the kernel has no ``netem``, so no latency can be added; a token bucket limits the rate).

The machine has 2 cores for 3 to 5 busy processes: the figures compare variants within one
run; the "machine CPU" column says how much of the machine was busy during each run.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

if not __package__:  # run as a script: make the bench package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.datasets import CACHE_DIR, get_dataset  # noqa: E402
from imitation_learning.job.bag import process_task_name  # noqa: E402
from imitation_learning.job.executors import task_seconds_key  # noqa: E402

#: The ``timings`` entry of the bag's processing tasks' compute seconds (over the workers).
PROCESS_SECONDS = task_seconds_key(process_task_name())

REPO = Path(__file__).resolve().parents[1]


def _load_netns():
    """``cluster/netns.py``, the simulated hosts (a file of ``cluster/``, loaded by path)."""
    name = "cluster_netns"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPO / "cluster" / "netns.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # before running it: its dataclasses look it up
        spec.loader.exec_module(module)
    return sys.modules[name]


nc = _load_netns()

#: The command line in a fresh interpreter; ``FORCE_RELAY`` overrules the reachability probe.
_JOB = """
import os, sys
if os.environ.get("FORCE_RELAY"):
    import imitation_learning.cluster as cluster
    cluster.workers_reachable = lambda client, timeout_s=None: False
from splendor_il.cli import main
sys.exit(main())
"""


def run_job(
    root: Path,
    out: Path,
    address: str | None,
    *,
    relay: bool = False,
    on_start=None,
    settings: dict[str, str] | None = None,
):
    """One run of ``splendor-il preprocess --no-cache``; (wall seconds, the job's timings).
    On a cluster the job gets the cluster's settings (``cluster/dask.env`` unless given)."""
    config = out.parent / "config.yaml"
    config.write_text(json.dumps({"reader": {"blind_reserve_base": BLIND_RESERVE_BASE[0]}}))
    argv = ["preprocess", "--config", str(config), "--data-root", str(root), "--no-cache"]
    argv += ["--output", str(out), "--no-progress", "--dashboard-address", "127.0.0.1:0"]
    env = {k: v for k, v in os.environ.items() if k != "DASK_SCHEDULER_ADDRESS"}
    if address is not None:
        argv += ["--scheduler-address", address]
        env |= nc.read_dask_env() if settings is None else settings  # as the cluster's
    if relay:
        env["FORCE_RELAY"] = "1"
    t0 = time.perf_counter()
    job = subprocess.Popen(
        [sys.executable, "-c", _JOB, *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=out.parent,
    )
    helper = threading.Thread(target=on_start, daemon=True) if on_start else None
    if helper:
        helper.start()
    _, err = job.communicate(timeout=600)
    wall = time.perf_counter() - t0
    if helper:
        helper.join(timeout=60)
    if job.returncode != 0:
        raise RuntimeError(f"the job failed ({job.returncode}):\n{err[-3000:]}")
    timings = json.loads((out / "stats.json").read_text())["timings"]
    return wall, timings


#: The reader's blind-reserve base of the dataset measured (set by main).
BLIND_RESERVE_BASE = [12]


def _set_tuning(address: str, on: bool) -> None:
    from distributed import Client

    from imitation_learning.allocator import set_tuning

    with Client(address, timeout=30) as client:
        client.run(set_tuning, on)


def same_files(out: Path, reference: Path) -> bool:
    """The dataset's files byte-identical to the reference (stats.json: its timings and
    the run's own settings aside)."""
    names = sorted(p.name for p in reference.iterdir())
    if sorted(p.name for p in out.iterdir()) != names:
        return False
    for name in names:
        if name == "stats.json":
            a, b = (json.loads((d / name).read_text()) for d in (out, reference))
            for stats in (a, b):
                for key in ("timings", "config", "input_files"):
                    stats.pop(key, None)
            if a != b:
                return False
        elif (out / name).read_bytes() != (reference / name).read_bytes():
            return False
    return True


def cpu_seconds_of_machine() -> float:
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    ticks = [int(f) for f in fields]
    busy = sum(ticks) - ticks[3] - ticks[4]  # idle, iowait
    return busy / os.sysconf("SC_CLK_TCK")


def loopback_cluster(folder: Path):
    script = REPO / "cluster" / "local-cluster.sh"
    args = ["start", "2", "--port", "0", "--dashboard-port", "0", "--dir", str(folder)]
    subprocess.run(["bash", str(script), *args], check=True, capture_output=True, timeout=120)
    address = json.loads((folder / "scheduler.json").read_text())["address"]

    def stop():
        subprocess.run(
            ["bash", str(script), "stop", "--dir", str(folder)], capture_output=True, timeout=120
        )

    return address, stop


LOCAL = "local (the job's own cluster)"
UNTUNED = "hosts, direct, allocator not tuned"
#: The variants of the results-path table, in the order they run in a round.
PATH_VARIANTS = (
    LOCAL,
    "loopback (local-cluster.sh)",
    "hosts, direct from workers",
    "hosts, direct, allocator not tuned",
    "hosts, relay (probe overruled)",
    "hosts behind the scheduler, relay",
)


def _processing(timings: dict) -> float:
    return timings["processing_s"]


def measure_paths(
    root: Path,
    work: Path,
    reference: Path,
    repeat: int,
    rate_mbit: int | None,
    variants: tuple[str, ...] = PATH_VARIANTS,
) -> list[dict]:
    """Every variant ``repeat`` times, interleaved, after a first run on each cluster (its
    workers' warm-up: imports, first allocations; kept apart); rows for the table.

    Per run, the processing (phase 1, as the job times it) is split into the per-file
    step's compute per worker (the bag's processing tasks' seconds over the workers)
    and the rest (scheduling, fetching the summaries, waiting for the last partition)."""
    clusters = {}
    stops = []
    try:
        how: dict[str, dict] = {LOCAL: dict(address=None)}
        if "loopback (local-cluster.sh)" in variants:
            loop_address, stop = loopback_cluster(work / "loopback-cluster")
            stops.append(stop)
            how["loopback (local-cluster.sh)"] = dict(address=loop_address)
        for topology in ("flat", "gated", "flat, not tuned"):
            if topology == "gated" and "hosts behind the scheduler, relay" not in variants:
                continue
            if topology == "flat, not tuned" and UNTUNED not in variants:
                continue
            # in this session, as the job's own cluster is (autogroup scheduling: see netns)
            cluster = nc.start_cluster(
                topology.split(",")[0],
                work / f"{topology.replace(', ', '-').replace(' ', '-')}-cluster",
                rate_mbit=rate_mbit,
                new_session=False,
            )
            stops.append(cluster.close)
            clusters[topology] = cluster
            if topology == "flat, not tuned":
                # a cluster of its own, never tuned: memory the tuning left in a worker's
                # heap would serve the untuned runs' arrays and hide what they cost
                _set_tuning(cluster.scheduler_address, False)
        flat = clusters["flat"].scheduler_address
        how["hosts, direct from workers"] = dict(address=flat)
        if UNTUNED in variants:
            how[UNTUNED] = dict(address=clusters["flat, not tuned"].scheduler_address)
        how["hosts, relay (probe overruled)"] = dict(address=flat, relay=True)
        if "gated" in clusters:
            how["hosts behind the scheduler, relay"] = dict(
                address=clusters["gated"].scheduler_address
            )
        runs: dict[str, list] = {name: [] for name in variants}
        first: dict[str, tuple] = {}
        for r in range(repeat + 1):
            for name in variants:
                out = work / f"{r}-{variants.index(name)}" / "processed"
                out.parent.mkdir(parents=True)
                cpu0, t0 = cpu_seconds_of_machine(), time.perf_counter()
                wall, timings = run_job(root, out, **how[name])
                cpu = (cpu_seconds_of_machine() - cpu0) / (time.perf_counter() - t0)
                if not same_files(out, reference):
                    raise AssertionError(f"{name}: outputs differ from the local run")
                shutil.rmtree(out.parent)
                compute = timings[PROCESS_SECONDS] / 2  # two workers
                if r == 0:
                    first[name] = (wall, timings, cpu)
                else:
                    runs[name].append((wall, timings, cpu))
                print(
                    f"  {'first run' if r == 0 else f'round {r}'}: {name:36s} wall "
                    f"{wall:6.2f} s, processing {_processing(timings):5.2f} s (per-file "
                    f"compute {compute:5.2f} s a worker), machine CPU {cpu:4.2f} cores, "
                    f"load {os.getloadavg()[0]:.1f}",
                    flush=True,
                )
    finally:
        for stop in reversed(stops):
            stop()
    base_wall = statistics.median(w for w, _, _ in runs[LOCAL])
    base_proc = statistics.median(_processing(t) for _, t, _ in runs[LOCAL])
    rows = []
    for name, results in runs.items():
        processing = [_processing(t) for _, t, _ in results]
        compute = [t[PROCESS_SECONDS] / 2 for _, t, _ in results]
        per_round = [p / _processing(t) for p, (_, t, _) in zip(processing, runs[LOCAL], strict=True)]
        rows.append(
            {
                "variant": name,
                "wall_s": statistics.median(w for w, _, _ in results),
                "wall_min_s": min(w for w, _, _ in results),
                "start_s": statistics.median(t["cluster_start_s"] for _, t, _ in results),
                "first_processing_s": _processing(first[name][1]),
                "processing_s": statistics.median(processing),
                "processing_min_s": min(processing),
                "compute_per_worker_s": statistics.median(compute),
                "rest_s": statistics.median(p - c for p, c in zip(processing, compute, strict=True)),
                "wall_vs_local": statistics.median(w for w, _, _ in results) / base_wall,
                "processing_vs_local": statistics.median(processing) / base_proc,
                "processing_vs_local_range": (min(per_round), max(per_round)),
                "cpu_cores": statistics.median(c for _, _, c in results),
            }
        )
    return rows


#: Dask's default time-outs: only the scheduling setting of cluster/dask.env.
DASK_DEFAULTS = {"DASK_DISTRIBUTED__SCHEDULER__WORKER_SATURATION": "1.0"}


def measure_disruptions(
    root: Path, work: Path, reference: Path, rounds: int, with_defaults: bool
) -> list[dict]:
    """Undisturbed / worker host cut off / worker host killed, each on a fresh cluster;
    ``with_defaults``: a cut-off host with Dask's default time-outs as well."""
    actions = ["undisturbed", "worker host cut off", "worker host killed"]
    if with_defaults:
        actions.append("worker host cut off, Dask's default time-outs")
    results: dict[str, list[tuple[float, float | None]]] = {}
    for r in range(rounds):
        for i, action in enumerate(actions):
            settings = DASK_DEFAULTS if "default" in action else None
            cluster = nc.start_cluster("flat", work / f"d{r}-{i}-cluster", settings=settings)
            events: dict[str, float] = {}
            try:
                victim = nc.worker_address(cluster, "worker-a")

                def disrupt(cluster=cluster, victim=victim, action=action, events=events):
                    if action == "undisturbed":
                        return
                    nc.wait_until_mid_run(cluster.scheduler_address, victim)
                    if action.startswith("worker host cut off"):
                        cluster.cut_host("worker-a")
                    else:
                        cluster.kill_host("worker-a")
                    events["lost"] = time.perf_counter()
                    nc.wait_until_removed(cluster.scheduler_address, victim)
                    events["noticed"] = time.perf_counter()

                out = work / f"d{r}-{i}" / "processed"
                out.parent.mkdir(parents=True)
                wall, _ = run_job(
                    root, out, cluster.scheduler_address, on_start=disrupt, settings=settings
                )
                if not same_files(out, reference):
                    raise AssertionError(f"{action}: outputs differ from the local run")
                shutil.rmtree(out.parent)
            finally:
                cluster.close()
            noticed = events["noticed"] - events["lost"] if "noticed" in events else None
            results.setdefault(action, []).append((wall, noticed))
            after = f", lost host noticed after {noticed:.1f} s" if noticed is not None else ""
            print(f"  round {r + 1}: {action:46s} wall {wall:6.2f} s{after}", flush=True)
    base = statistics.median(w for w, _ in results["undisturbed"])
    rows = []
    for action, runs in results.items():
        noticed = [n for _, n in runs if n is not None]
        wall = statistics.median(w for w, _ in runs)
        rows.append(
            {
                "run": action,
                "wall_s": wall,
                "wall_max_s": max(w for w, _ in runs),
                "extra_s": wall - base,
                "noticed_s": statistics.median(noticed) if noticed else None,
            }
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--games", type=int, default=1200)
    p.add_argument("--dialect", default="legacy", help="dialect of the logs (bench.datasets)")
    p.add_argument("--cache-dir", default=str(CACHE_DIR), help="where the datasets are kept")
    p.add_argument("--repeat", type=int, default=3, help="rounds of the results-path variants")
    p.add_argument(
        "--variants",
        nargs="+",
        choices=PATH_VARIANTS,
        default=list(PATH_VARIANTS),
        help="results-path variants to run (the local run always runs: the ratios are to it)",
    )
    p.add_argument("--disruptions", type=int, default=2, help="rounds of the host-loss runs")
    p.add_argument(
        "--rate-mbit",
        type=int,
        help="limit every host's link to this many Mbit/s each way (tbf; results-path runs)",
    )
    p.add_argument(
        "--with-defaults",
        action="store_true",
        help="also cut a worker host off a cluster running Dask's default time-outs",
    )
    p.add_argument("--json", action="store_true", help="write bench/results/multihost.json")
    args = p.parse_args(argv)
    reason = nc.namespaces_unavailable()
    if reason:
        print(f"bench/multihost.py: {reason} (run as root)", file=sys.stderr)
        return 2
    data = get_dataset(args.games, dialect=args.dialect, cache_dir=args.cache_dir)
    BLIND_RESERVE_BASE[0] = data.blind_reserve_base
    variants = tuple(v for v in PATH_VARIANTS if v == LOCAL or v in args.variants)
    print(
        f"{data.games} games, {data.rows:,} rows ({data.key}); {os.cpu_count()} cores; "
        f"load {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    results: dict = {"dataset": data.key, "rows": data.rows, "repeat": args.repeat}
    with tempfile.TemporaryDirectory(prefix="bench-multihost-") as tmp:
        work = Path(tmp)
        reference = work / "reference" / "processed"
        reference.parent.mkdir(parents=True)
        run_job(data.root, reference, None)  # the outputs every run must give (warms caches)
        if args.repeat:
            paths = measure_paths(
                data.root, work, reference, args.repeat, args.rate_mbit, variants
            )
            results["paths"] = paths
            print(
                "\n| variant | wall s | start-up s | first run's processing s | processing s "
                "| best processing s | per-file compute a worker s | rest s "
                "| processing vs local (rounds) | machine CPU (cores) |"
            )
            print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
            for row in paths:
                lo, hi = row["processing_vs_local_range"]
                print(
                    f"| {row['variant']} | {row['wall_s']:.2f} | {row['start_s']:.2f} "
                    f"| {row['first_processing_s']:.2f} | {row['processing_s']:.2f} "
                    f"| {row['processing_min_s']:.2f} | {row['compute_per_worker_s']:.2f} "
                    f"| {row['rest_s']:.2f} | {row['processing_vs_local']:.2f}x "
                    f"({lo:.2f}-{hi:.2f}) | {row['cpu_cores']:.2f} |"
                )
        if args.disruptions:
            lost = measure_disruptions(
                data.root, work, reference, args.disruptions, args.with_defaults
            )
            results["disruptions"] = lost
            print(
                "\n| run (fresh cluster of hosts each) | wall s (median) | worst wall s "
                "| extra vs undisturbed s | lost host noticed after s |"
            )
            print("|---|---:|---:|---:|---:|")
            for row in lost:
                noticed = f"{row['noticed_s']:.1f}" if row["noticed_s"] is not None else "-"
                print(
                    f"| {row['run']} | {row['wall_s']:.2f} | {row['wall_max_s']:.2f} "
                    f"| {row['extra_s']:+.2f} | {noticed} |"
                )
    if args.json:
        out = REPO / "bench" / "results" / "multihost.json"
        results["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        out.write_text(json.dumps(results, indent=1) + "\n")
        print(f"written: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
