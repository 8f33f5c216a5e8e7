"""``splendor-il preprocess``: game logs -> the saved train/val/test dataset.

The configuration is ``--config FILE`` (else ``./config.yaml`` if present, else the
defaults), with the command-line flags applied over it; it is validated, and the data root
checked, before any work starts. Exit codes: 0 done (rejected rows and files are counted in
the summary), 2 configuration or usage error (one line on stderr, before any file is
processed), 3 under ``--strict``: the first rejected file or row stopped the job (its
message is printed; no dataset is written), 4 the cluster was lost mid-run (its scheduler,
or every worker for ``preprocessing.no_workers_timeout_s``; nothing is written).

Each game file's result of the per-file step is cached (:mod:`imitation_learning.result_cache`)
in ``--cache-dir`` (default: beside the output, ``<output>.cache``), keyed by the file's
content, the configuration keys that change it and the step's version: a re-run processes
only the files not in the cache, and saves the same bytes. ``--no-cache`` runs without it.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from imitation_learning.config import ConfigError, Settings, deep_merge, load_config

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_STRICT = 3
EXIT_CLUSTER_LOST = 4

DEFAULT_CONFIG_FILE = "config.yaml"

# flag destination -> (config section, key)
_OVERRIDES = {
    "data_root": ("data", "data_root"),
    "output": ("data", "processed_dir"),
    "max_games": ("preprocessing", "max_games"),
    "num_workers": ("preprocessing", "num_workers"),
    "scheduler_address": ("preprocessing", "scheduler_address"),
    "dashboard_address": ("preprocessing", "dashboard_address"),
    "report": ("preprocessing", "report"),
}


def register_cli(subparsers) -> argparse.ArgumentParser:
    """Add the ``preprocess`` subcommand to ``splendor-il``."""
    p = subparsers.add_parser(
        "preprocess",
        help="preprocess game logs into a train/val/test dataset (Dask job)",
        description=(
            "Read the game logs <data_root>/{2,3,4}_games/*.csv on a pool of worker processes "
            "(a local Dask cluster, or an existing one), compute the features, labels and "
            "masks, split by game, scale and save the dataset. Flags override the config file."
        ),
    )
    p.add_argument(
        "--config",
        metavar="FILE",
        help=f"YAML configuration (default: ./{DEFAULT_CONFIG_FILE} if present, else defaults)",
    )
    p.add_argument("--data-root", metavar="DIR", help="folder (or fsspec URL) with {2,3,4}_games/")
    p.add_argument("--max-games", type=int, metavar="N", help="process only the first N games")
    p.add_argument(
        "--num-workers", type=int, metavar="N", help="worker processes (default: all cores)"
    )
    p.add_argument(
        "--scheduler-address",
        metavar="ADDR",
        help="use the running Dask scheduler at ADDR (e.g. tcp://host:8786) instead of a "
        "local cluster (default: $DASK_SCHEDULER_ADDRESS if set)",
    )
    p.add_argument(
        "--dashboard-address",
        metavar="HOST:PORT",
        help="dashboard of the local cluster (default 127.0.0.1:8787; a free port if taken)",
    )
    p.add_argument("--report", metavar="HTML", help="write a Dask performance report")
    p.add_argument("--output", metavar="DIR", help="output folder (data.processed_dir)")
    p.add_argument(
        "--strict",
        action="store_true",
        default=None,
        help="stop at the first rejected file or row: print it, write nothing, exit with code 3",
    )
    p.add_argument(
        "--out-of-core",
        action="store_true",
        default=None,
        help="deprecated, does nothing (the dataset never passes through this process): "
        "accepted for older scripts, with a warning",
    )
    p.add_argument(
        "--durable",
        action="store_true",
        default=None,
        help="flush the dataset to disk (fsync) before swapping it in (survives a power cut; "
        "costs the disk's time for the whole dataset)",
    )
    add_cache_flags(p)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run_preprocess_command)
    return p


def add_cache_flags(p: argparse.ArgumentParser, *, no_cache: bool = True) -> None:
    """``--cache-dir`` (and ``--no-cache``)."""
    group = p.add_mutually_exclusive_group() if no_cache else p
    group.add_argument(
        "--cache-dir",
        metavar="DIR",
        help="folder of the per-file result cache (default: beside the output, "
        "<output>.cache; on a cluster, a folder every worker sees at that path)",
    )
    if no_cache:
        group.add_argument(
            "--no-cache",
            action="store_true",
            help="process every file, neither reading nor writing the cache",
        )


def cache_dir_of(args: argparse.Namespace, settings: Settings) -> str | None:
    """The cache folder of a run (None with --no-cache)."""
    if getattr(args, "no_cache", False):
        return None
    if args.cache_dir is not None:
        return args.cache_dir
    from imitation_learning.result_cache import default_cache_dir

    return str(default_cache_dir(settings.data.processed_dir))


def build_config(args: argparse.Namespace) -> Settings:
    """The run's settings, built and validated once: the config file, then the flags over
    it."""
    path = args.config
    if path is None and Path(DEFAULT_CONFIG_FILE).is_file():
        path = DEFAULT_CONFIG_FILE
    cfg = load_config(path)
    overrides: dict = {}
    for dest, (section, key) in _OVERRIDES.items():
        value = getattr(args, dest, None)
        if value is not None:
            overrides.setdefault(section, {})[key] = value
    if getattr(args, "strict", None):
        overrides.setdefault("preprocessing", {})["strict"] = True
    for flag in ("out_of_core", "durable"):
        if getattr(args, flag, None):
            overrides.setdefault("preprocessing", {})[flag] = True
    return Settings.of(deep_merge(cfg, overrides))


def format_summary(summary: dict) -> str:
    """The end-of-run summary, one fact a line."""
    splits = summary.get("rows_per_split", {})
    lines = [
        "Preprocessing done",
        f"  files:          {summary['files']} ({summary['files_rejected']} rejected)",
        f"  rows read:      {summary['rows_read']} ({summary['rows_rejected']} rejected)",
        "  rows per split: "
        + ", ".join(f"{name} {splits.get(name, 0)}" for name in ("train", "val", "test")),
        f"  wall time:      {summary['wall_time_s']:.2f} s ({summary['rows_per_s']:,.0f} rows/s)",
        f"  output:         {summary['output_dir']}",
    ]
    timings = summary.get("timings") or {}
    if "processing_s" in timings:
        processing = timings["processing_s"]
        rate = summary["rows_read"] / processing if processing > 0 else 0.0
        lines.insert(
            -1,
            f"  of which:       cluster start {timings.get('cluster_start_s', 0.0):.2f} s, "
            f"processing {processing:.2f} s ({rate:,.0f} rows/s), writing "
            f"{timings.get('write_s', 0.0) + timings.get('flush_s', 0.0):.2f} s",
        )
    cache = summary.get("cache")
    unchanged = bool(cache and cache.get("output_unchanged"))
    if summary.get("num_workers") is not None and not unchanged:  # no worker ran then
        where = " (in this process, no cluster)" if summary.get("in_process") else ""
        lines.append(f"  workers:        {summary['num_workers']}{where}")
    if unchanged:
        lines.append(
            f"  cache:          {cache['files_cached']} files, configuration and code "
            "unchanged since the output was saved: left as it is"
        )
    elif cache:
        lines.append(
            f"  cache:          {cache['files_cached']} files from the cache, "
            f"{cache['files_processed']} processed; {cache['entries']} entries, "
            f"{format_bytes(cache['bytes'])} in {cache['dir']}"
        )
        if cache.get("damaged"):
            lines.append(
                f"  cache damaged:  {len(cache['damaged'])} entries not used (recomputed), "
                f"first: {cache['damaged'][0]}"
            )
    if summary.get("dashboard_link"):
        lines.append(f"  dashboard:      {summary['dashboard_link']}")
    return "\n".join(lines)


def format_bytes(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1024
    raise AssertionError


def _first_rejection(summary: dict) -> str | None:
    rejections = summary.get("rejections") or []
    if not rejections:
        return None
    r = rejections[0]
    where = str(r.get("file"))
    if r.get("line") is not None:
        where += f", line {r['line']}"
    if r.get("column"):
        where += f", column {r['column']!r}"
    return f"{where}: {r.get('reason')}"


def _usage_error(message: str) -> int:
    """Print a user error on one line (the fix included in the message); exit code 2."""
    print(f"splendor-il preprocess: {' '.join(message.split())}", file=sys.stderr)
    return EXIT_USAGE


def run_preprocess_command(args: argparse.Namespace) -> int:
    from imitation_learning.job.discovery import discover_csv_files
    from imitation_learning.job.executors import resolve_scheduler_address
    from imitation_learning.preflight import (
        check_cache_dir,
        check_output_dir,
        check_scheduler_address,
    )
    from imitation_learning.tls_check import check_client_tls

    if getattr(args, "out_of_core", None):
        print(
            "splendor-il preprocess: warning: --out-of-core is deprecated and does nothing "
            "(the dataset never passes through this process); drop it",
            file=sys.stderr,
        )
    try:
        cfg = build_config(args)
        # Usage errors before any work starts: the data root (missing, no game file), the
        # output folder, the form of the scheduler address (its reachability is checked
        # when the job connects, before any file is processed), the cache folder.
        files = discover_csv_files(cfg.data.data_root, cfg.preprocessing.max_games)
        check_output_dir(cfg.data.processed_dir)
        address = resolve_scheduler_address(cfg)
        check_scheduler_address(address)
        check_client_tls(address)  # tls://: certificates in Dask's config
        cache_dir = cache_dir_of(args, cfg)
        if cache_dir is not None:
            check_cache_dir(cache_dir, cfg.data.processed_dir)
    except ConfigError as exc:
        return _usage_error(exc.one_line)
    except (OSError, ValueError) as exc:  # includes preflight.UsageError
        return _usage_error(str(exc))

    from imitation_learning.cluster import ClusterLostError

    # The client's own log of a lost scheduler is a traceback per reconnection attempt; the
    # job reports the loss itself, on one line (ClusterLostError below).
    logging.getLogger("distributed.client").setLevel(logging.CRITICAL)
    from imitation_learning.data_preprocessing import run_preprocessing
    from imitation_learning.per_file.file_processing import StrictModeError

    try:
        summary = run_preprocessing(
            cfg, progress=not args.no_progress, cache_dir=cache_dir, files=files
        )
    except StrictModeError as exc:  # the first rejection stopped the job; nothing was saved
        print(f"splendor-il preprocess: --strict: input rejected: {exc.rejection}", file=sys.stderr)
        return EXIT_STRICT
    except ConnectionError as exc:  # the scheduler address given cannot be reached
        return _usage_error(str(exc))
    except ClusterLostError as exc:  # scheduler gone, or no worker left, mid-run
        print(f"splendor-il preprocess: {exc}", file=sys.stderr)
        return EXIT_CLUSTER_LOST
    except KeyboardInterrupt:
        print("splendor-il preprocess: interrupted", file=sys.stderr)
        return 130

    print(format_summary(summary))
    first = _first_rejection(summary)
    if first:
        print(f"  first rejection: {first}")
        report = os.path.join(summary["output_dir"], "rejections.json")
        print(f"  all rejections:  {report}")
    rejected = summary["files_rejected"] or summary["rows_rejected"] or first
    if cfg.preprocessing.strict and rejected:
        print(f"splendor-il preprocess: --strict: input rejected: {first}", file=sys.stderr)
        return EXIT_STRICT
    return EXIT_OK
