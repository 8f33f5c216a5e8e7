"""``splendor-il cache``: the per-file result cache of ``splendor-il preprocess``.

- ``splendor-il cache info``: the cache's folder, entry count and size on disk;
- ``splendor-il cache prune``: remove the entries that no current game file uses, that is
  every entry whose key is not that of a file under the data root with the configuration
  and the step version of now (the files are hashed; nothing is processed). It takes the
  same ``--config`` / ``--data-root`` / ``--output`` / ``--max-games`` as ``preprocess``,
  and ``--cache-dir`` (default: beside the output, as there).

Exit codes: 0 done, 2 usage error (one line on stderr).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from imitation_learning.config import ConfigError


def register_cli(subparsers) -> argparse.ArgumentParser:
    from splendor_il.preprocess_cli import DEFAULT_CONFIG_FILE, add_cache_flags

    p = subparsers.add_parser(
        "cache",
        help="size of the per-file result cache, or prune it",
        description="The per-file result cache of `splendor-il preprocess` (see docs/cache.md).",
    )
    sub = p.add_subparsers(dest="cache_command", required=True, metavar="ACTION")
    for name, text in (
        ("info", "the cache's folder, entry count and size on disk"),
        ("prune", "remove the entries no current game file uses (data root + config)"),
    ):
        q = sub.add_parser(name, help=text, description=text)
        q.add_argument(
            "--config",
            metavar="FILE",
            help=f"YAML configuration (default: ./{DEFAULT_CONFIG_FILE} if present)",
        )
        q.add_argument("--output", metavar="DIR", help="the run's output folder (data.processed_dir)")
        if name == "prune":
            q.add_argument("--data-root", metavar="DIR", help="folder with {2,3,4}_games/")
            q.add_argument("--max-games", type=int, metavar="N", help="only the first N games")
        add_cache_flags(q, no_cache=False)
        q.set_defaults(func=run_cache_command)
    return p


def _usage_error(message: str) -> int:
    """A user error on one line; exit code 2."""
    print(f"splendor-il cache: {' '.join(message.split())}", file=sys.stderr)
    return 2


def run_cache_command(args: argparse.Namespace) -> int:
    from imitation_learning import result_cache as rc
    from splendor_il.preprocess_cli import build_config, cache_dir_of, format_bytes

    try:
        cfg = build_config(args)
        folder = Path(cache_dir_of(args, cfg))  # type: ignore[arg-type]
        if folder.exists() and not folder.is_dir():
            raise ValueError(f"the cache folder {folder} is a file (--cache-dir)")
        paths = None
        if args.cache_command == "prune":
            from imitation_learning.job.discovery import discover_csv_files

            paths = discover_csv_files(cfg.data.data_root, cfg.preprocessing.max_games)
    except ConfigError as exc:
        return _usage_error(exc.one_line)
    except (OSError, ValueError) as exc:
        return _usage_error(str(exc))

    if args.cache_command == "info":
        entries, size = rc.cache_size(folder)
        print(f"cache {folder}: {entries} entries, {format_bytes(size)}")
        return 0
    if not folder.is_dir():
        print(f"cache {folder}: no cache, nothing to prune")
        return 0
    keep = rc.current_keys(paths, cfg.step)
    done = rc.prune(folder, keep)
    records = rc.prune_records(folder)
    print(
        f"cache {folder}: kept {done['kept']} entries ({format_bytes(done['kept_bytes'])}) "
        f"used by the {len(paths)} files of {cfg.data.data_root}; removed "
        f"{done['removed']} ({format_bytes(done['removed_bytes'])}) and the records of "
        f"{records} output folders that are gone"
    )
    return 0


