"""What TLS with mutual authentication costs the job across hosts: the same run on two
clusters of simulated hosts, one plain TCP, one TLS, interleaved round by round.

    sudo uv run python -m bench.tls [--games 1200] [--dialect legacy] [--repeat 3]
                                    [--json [FILE]]

Needs root (``ip netns add``). Both clusters are those of the tests (``cluster/netns.py``:
a scheduler host and two worker hosts, ``dask worker`` under a nanny, one thread, the
settings of ``cluster/dask.env``); the TLS one adds ``cluster/tls.env`` with certificates of
``cluster/make-certs.sh``. The job runs here as the command line (``splendor-il
preprocess``, a fresh interpreter per run), with the cluster's settings, and for TLS the CA
and the client pair, through Dask's configuration only. Every run's files must be
byte-identical to those of a local run. Order alternates between rounds (TCP first, then
TLS first). Figures: the job's processing time (its own timing) and wall time, medians and
bests, and TLS against TCP (issue 25 targets at most 1.1x). The machine's load average is
printed with them: the figures compare variants within one run. ``--json`` writes them to
``bench/results/tls.json`` (or FILE).
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

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # ``bench``, when run as a script
    sys.path.insert(0, str(REPO))

from bench.datasets import get_dataset  # noqa: E402
from bench.multihost import nc  # noqa: E402  (cluster/netns.py, the simulated hosts)

DEFAULT_JSON = REPO / "bench" / "results" / "tls.json"
VARIANTS = ("tcp", "tls")


def run_job(root: Path, out: Path, base: int, address: str | None, env_extra: dict) -> dict:
    """One ``splendor-il preprocess`` in a fresh interpreter; wall seconds and its timings."""
    config = out.parent / "config.yaml"
    config.write_text(f"reader:\n  blind_reserve_base: {base}\n")
    argv = ["preprocess", "--config", str(config), "--data-root", str(root), "--output", str(out)]
    argv += ["--no-progress", "--no-cache", "--dashboard-address", "127.0.0.1:0"]
    if address is not None:
        argv += ["--scheduler-address", address]
    env = {k: v for k, v in os.environ.items() if not k.startswith("DASK_")} | env_extra
    t0 = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "splendor_il.cli", *argv],
        capture_output=True,
        text=True,
        env=env,
        cwd=out.parent,
        timeout=900,
    )
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"the job failed ({done.returncode}):\n{done.stderr[-3000:]}")
    timings = json.loads((out / "stats.json").read_text())["timings"]
    processing = timings.get("job_processing_s", timings.get("processing_s"))
    return {"wall_s": wall, "processing_s": processing}


def same_files(out: Path, reference: Path) -> bool:
    """Every file byte-identical to the reference's (stats.json aside: timings, settings)."""
    names = sorted(p.name for p in reference.iterdir())
    if sorted(p.name for p in out.iterdir()) != names:
        return False
    return all(
        (out / n).read_bytes() == (reference / n).read_bytes() for n in names if n != "stats.json"
    )


def measure(root: Path, base: int, work: Path, repeat: int) -> dict:
    certs = nc.make_certificates(work / "certs")
    tls = nc.tls_settings(certs)
    client_tls = {k: v for k, v in tls.items() if "__SCHEDULER__" not in k and "__WORKER__" not in k}
    settings = nc.read_dask_env()
    reference = work / "reference" / "processed"
    reference.parent.mkdir(parents=True)
    run_job(root, reference, base, None, {})  # the local run: what every run must give
    clusters: dict[str, nc.SimulatedCluster] = {}
    runs: dict[str, list[dict]] = {v: [] for v in VARIANTS}
    try:
        import dask

        clusters["tcp"] = nc.start_cluster("flat", work / "tcp-cluster", settings=settings)
        with dask.config.set(nc.dask_config_of(client_tls)):  # this process's own client
            clusters["tls"] = nc.start_cluster(
                "flat", work / "tls-cluster", settings=settings | tls, scheme="tls"
            )
        job_env = {"tcp": settings, "tls": settings | client_tls}
        for r in range(repeat):
            for variant in VARIANTS if r % 2 == 0 else VARIANTS[::-1]:
                out = work / f"{variant}-{r}" / "processed"
                out.parent.mkdir(parents=True)
                load = os.getloadavg()[0]
                run = run_job(root, out, base, clusters[variant].scheduler_address, job_env[variant])
                if not same_files(out, reference):
                    raise AssertionError(f"{variant}: outputs differ from the local run")
                shutil.rmtree(out.parent)
                run["load"] = load
                runs[variant].append(run)
                print(
                    f"  round {r + 1}: {variant.upper():3s} wall {run['wall_s']:6.2f} s, "
                    f"processing {run['processing_s']:6.2f} s (load {load:.1f})",
                    flush=True,
                )
    finally:
        for cluster in clusters.values():
            cluster.close()
    figures = {}
    for variant, results in runs.items():
        figures[variant] = {
            "processing_s": statistics.median(x["processing_s"] for x in results),
            "processing_best_s": min(x["processing_s"] for x in results),
            "wall_s": statistics.median(x["wall_s"] for x in results),
            "wall_best_s": min(x["wall_s"] for x in results),
            "runs": results,
        }
    tcp, tls_ = figures["tcp"], figures["tls"]
    figures["tls_vs_tcp"] = {
        "processing": tls_["processing_s"] / tcp["processing_s"],
        "processing_best": tls_["processing_best_s"] / tcp["processing_best_s"],
        "wall": tls_["wall_s"] / tcp["wall_s"],
        # round by round (each round runs both, back to back)
        "processing_per_round": [
            b["processing_s"] / a["processing_s"]
            for a, b in zip(runs["tcp"], runs["tls"], strict=True)
        ],
    }
    return figures


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.tls", description=__doc__.splitlines()[0])
    p.add_argument("--games", type=int, default=1200)
    p.add_argument("--dialect", default="legacy", choices=["current", "legacy", "legacy-402"])
    p.add_argument("--repeat", type=int, default=3, help="rounds (each: one TCP, one TLS run)")
    p.add_argument("--cache-dir", help="where the datasets are (default: bench's own cache)")
    p.add_argument(
        "--json", nargs="?", const=str(DEFAULT_JSON), help=f"write the figures (default {DEFAULT_JSON.relative_to(REPO)})"
    )
    args = p.parse_args(argv)
    reason = nc.namespaces_unavailable()
    if reason:
        print(f"bench.tls: {reason} (run as root)", file=sys.stderr)
        return 2
    kwargs = {"cache_dir": args.cache_dir} if args.cache_dir else {}
    data = get_dataset(args.games, dialect=args.dialect, **kwargs)
    base = 11 if args.dialect.startswith("legacy") else 12
    load0 = os.getloadavg()
    print(
        f"{data.games} games, {data.rows:,} rows ({data.key}); {os.cpu_count()} cores; "
        f"load average {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f}",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="bench-tls-") as tmp:
        figures = measure(data.root, base, Path(tmp), args.repeat)
    load1 = os.getloadavg()
    ratio = figures["tls_vs_tcp"]
    print("\n| variant | processing s (median) | best | wall s (median) | best |")
    print("|---|---:|---:|---:|---:|")
    for variant in VARIANTS:
        f = figures[variant]
        print(
            f"| {variant.upper()} | {f['processing_s']:.2f} | {f['processing_best_s']:.2f} "
            f"| {f['wall_s']:.2f} | {f['wall_best_s']:.2f} |"
        )
    per_round = ", ".join(f"{x:.2f}" for x in ratio["processing_per_round"])
    print(
        f"\nTLS against TCP: processing {ratio['processing']:.2f}x (best against best "
        f"{ratio['processing_best']:.2f}x; per round {per_round}), wall {ratio['wall']:.2f}x; "
        f"load average after {load1[0]:.2f} {load1[1]:.2f} {load1[2]:.2f}"
    )
    if args.json:
        result = {
            "dataset": data.key,
            "games": data.games,
            "rows": data.rows,
            "repeat": args.repeat,
            "load_before": load0,
            "load_after": load1,
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            **figures,
        }
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
        print(f"figures written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
