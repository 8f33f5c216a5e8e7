"""Run the preprocessing on a SLURM cluster with dask-jobqueue.

dask-jobqueue is not a project dependency; install it next to the project, in the same
environment on the login node and the compute nodes (a shared filesystem):

    uv pip install dask-jobqueue        # or: pip install dask-jobqueue

Then, from the login node (the scheduler runs inside this script, the workers are SLURM
jobs that connect back to it):

    python cluster/slurm_jobqueue.py --jobs 8 --queue normal --account myproject \\
        --data-root /shared/splendor/games

Each SLURM job runs ``--workers-per-job`` single-threaded ``dask worker`` processes. The
game logs must be on a filesystem every compute node sees (or an fsspec URL such as
s3://bucket/games, with s3fs installed everywhere). The dashboard listens on 127.0.0.1 of
the login node only: reach it with ``ssh -L 8787:127.0.0.1:8787 login-node``.

To produce the saved dataset instead of just the arrays, keep a cluster up and run
``splendor-il preprocess --scheduler-address <address printed below> ...`` against it, or
see cluster/slurm-batch.sh for a cluster that lives inside one batch allocation.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

#: The cluster's Dask settings, one ``NAME=value`` a line (see cluster/README.md).
DASK_ENV_FILE = Path(__file__).resolve().parent / "dask.env"
#: The TLS settings (mutual authentication), their certificates under :data:`TLS_DIR_IN_FILE`.
TLS_ENV_FILE = Path(__file__).resolve().parent / "tls.env"
TLS_DIR_IN_FILE = "/etc/dask-tls"
MAKE_CERTS = Path(__file__).resolve().parent / "make-certs.sh"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-root", required=True, help="folder or fsspec URL with {2,3,4}_games/")
    p.add_argument("--jobs", type=int, default=4, help="SLURM jobs to submit (default 4)")
    p.add_argument("--workers-per-job", type=int, default=1, help="worker processes per job")
    p.add_argument("--memory-per-worker", default="4GiB", help="memory per worker process")
    p.add_argument("--walltime", default="01:00:00")
    p.add_argument("--queue", help="SLURM partition (-p)")
    p.add_argument("--account", help="SLURM account (-A)")
    p.add_argument("--interface", help="network interface the workers reach the scheduler on")
    p.add_argument("--log-dir", default="slurm-logs", help="where the SLURM job logs go")
    p.add_argument(
        "--tls-dir",
        default=str(Path.home() / ".dask-tls" / "splendor-il"),
        help="the cluster's certificates, on a filesystem the compute nodes see (made by "
        "cluster/make-certs.sh there if absent; default ~/.dask-tls/splendor-il)",
    )
    p.add_argument("--max-games", type=int, help="process only the first N games")
    p.add_argument("--wait-timeout", type=float, default=600, help="seconds to wait for workers")
    return p.parse_args(argv)


def dask_settings(path: Path = DASK_ENV_FILE) -> dict[str, str]:
    """The ``DASK_*`` variables of ``cluster/dask.env`` (comments and blank lines skipped)."""
    settings = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            settings[name.strip()] = value.strip()
    return settings


def config_keys(settings: dict[str, str]) -> dict[str, object]:
    """``DASK_DISTRIBUTED__COMM__TIMEOUTS__TCP=12s`` -> ``{"distributed.comm.timeouts.tcp":
    "12s"}``, values read as Dask reads environment variables (``1.0`` a number), for
    ``dask.config.set`` in this process, which started without them."""
    import ast

    def value_of(text: str) -> object:
        try:
            return ast.literal_eval(text)
        except (SyntaxError, ValueError):
            return text

    return {
        name.removeprefix("DASK_").lower().replace("__", ".").replace("_", "-"): value_of(v)
        for name, v in settings.items()
    }


def tls_settings(tls_dir: str | Path) -> dict[str, str]:
    """``cluster/tls.env`` with its certificates in ``tls_dir`` instead of /etc/dask-tls."""
    return {
        name: value.replace(TLS_DIR_IN_FILE, str(tls_dir), 1)
        for name, value in dask_settings(TLS_ENV_FILE).items()
    }


def ensure_certificates(tls_dir: str | Path) -> None:
    """The CA and the certificates in ``tls_dir``, made by cluster/make-certs.sh if absent."""
    import subprocess

    if not (Path(tls_dir) / "ca.crt").is_file():
        subprocess.run(["bash", str(MAKE_CERTS), str(tls_dir)], check=True)


def make_cluster(args: argparse.Namespace):
    """A ``SLURMCluster`` whose jobs each run ``workers_per_job`` one-thread workers."""
    import dask
    from dask.utils import format_bytes, parse_bytes
    from dask_jobqueue import SLURMCluster

    n = args.workers_per_job
    job_memory = format_bytes(parse_bytes(args.memory_per_worker) * n)
    # The cluster's settings (cluster/dask.env): set for the whole of this process, which
    # runs the scheduler and the job (the comm time-outs apply to every connection opened);
    # the workers get them as environment variables in their job script.
    # TLS with mutual authentication (cluster/README.md, "TLS"): the scheduler listens on
    # the login node's network, so only holders of the cluster CA's certificates may join
    # (the workers, by the variables of their job script) or submit work (this process).
    from distributed.security import Security

    ensure_certificates(args.tls_dir)
    settings = dask_settings() | tls_settings(args.tls_dir)
    dask.config.set(config_keys(settings))
    return SLURMCluster(
        protocol="tls://",
        security=Security(),  # from the configuration just set: require_encryption, the files
        queue=args.queue,
        account=args.account,
        cores=n,  # threads per job ...
        processes=n,  # ... split over n processes: one thread each
        memory=job_memory,
        walltime=args.walltime,
        job_name="splendor-dask",
        interface=args.interface,
        log_directory=args.log_dir,
        local_directory="$TMPDIR",  # spill to node-local disk, not the shared filesystem
        python=sys.executable,  # the workers run this very environment (same versions)
        job_script_prologue=[
            "export OMP_NUM_THREADS=1",
            *(f"export {name}={value}" for name, value in settings.items()),
        ],
        worker_extra_args=["--death-timeout", "120"],
        scheduler_options={"dashboard_address": "127.0.0.1:8787"},
    )


def main(argv: list[str] | None = None) -> int:
    from distributed import Client

    from imitation_learning.config import validate_config
    from imitation_learning.parallel_processor import discover_csv_files, process_files_parallel

    args = parse_args(argv)
    n_workers = args.jobs * args.workers_per_job
    with make_cluster(args) as cluster:
        print(cluster.job_script(), file=sys.stderr)  # what gets submitted, for the record
        cluster.scale(jobs=args.jobs)
        with Client(cluster) as client:
            print(f"scheduler address: {cluster.scheduler_address}", file=sys.stderr)
            print(f"dashboard:         {client.dashboard_link}", file=sys.stderr)
            client.wait_for_workers(n_workers, timeout=args.wait_timeout)

            # The job connects to this scheduler by its address (and leaves it running).
            config = validate_config(
                {
                    "data": {"data_root": args.data_root},
                    "preprocessing": {
                        "scheduler_address": cluster.scheduler_address,
                        "max_games": args.max_games,
                    },
                }
            )
            paths = discover_csv_files(args.data_root, max_games=args.max_games)
            df, features, labels, masks = process_files_parallel(
                paths, config, num_workers=n_workers
            )
    print(f"files: {len(paths)}  rows: {len(df)}  features: {features.shape}")
    print(f"label heads: {sorted(labels)}  mask heads: {sorted(masks)}")
    rejections = df.attrs.get("rejections", [])
    print(f"rejected: {len(rejections)} ({sum(r['rows'] for r in rejections)} rows)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
