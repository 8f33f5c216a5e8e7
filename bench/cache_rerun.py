"""The ``cache-rerun`` suite: ``splendor-il preprocess`` run again with its per-file result
cache, on the full-size dataset, each run a fresh process at 2 workers.

    uv run python -m bench.cache_rerun [--games 6650] [--dialect legacy] [--workers 2]
                                       [--added 0.01] [--json FILE] [--work-dir DIR]

Runs, in this order, with the same output folder and cache folder:

0. ``no cache``: ``--no-cache``, for reference (what the cache costs a first run);
1. ``first``: an empty cache (every file processed, every entry written);
2. ``unchanged``: the same command again (inputs, configuration and code unchanged, the
   output untouched: the run checks that and leaves the output as it is);
3. ``unchanged, reassembled``: the same, after touching the output's ``stats.json`` (the
   output is assembled again, every file's result from the cache);
4. ``+1% games``: a data root of the dataset's files (hard links, or symbolic links where
   hard links are not possible: nothing is copied) plus ``--added`` x games new games
   written by ``splendor-il simulate`` with another seed; only those are processed.

The wall time is taken around the whole process (``bench.fullsize``'s probe: interpreter
start and exit included). Also printed: the cache's size on disk (apparent bytes and
blocks) against the saved dataset's, and each run's ratio to the first run's wall time.
Targets: +1% games <= 25% of the first run, unchanged <= 20%, cache <= 1.5x the dataset.
Figures are printed (and saved with ``--json``), never asserted. The work folder (output,
cache, the +1% data root) is a temporary folder removed at the end unless ``--work-dir``
is given.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from bench.datasets import CACHE_DIR, REPO_ROOT, get_dataset, simulate_command
from bench.fullsize import run_probed

DEFAULT_GAMES = 6650
#: The new games' seed (the dataset's is 2027: other game ids, other games).
ADDED_SEED = 3031


def _cli(argv: list[str], work: Path, name: str) -> tuple[float, str]:
    """``splendor-il`` in a fresh process (``bench.fullsize --probe``); (wall s, stdout)."""
    return run_probed(argv, work / f"probe-{name}.json", name)


def folder_bytes(folder: Path) -> tuple[int, int]:
    """(apparent bytes, bytes of the blocks on disk) of every file under ``folder``."""
    apparent = blocks = 0
    for p in folder.rglob("*"):
        if p.is_file() and not p.is_symlink():
            st = p.stat()
            apparent += st.st_size
            blocks += st.st_blocks * 512
    return apparent, blocks


def linked_root(source: Path, target: Path) -> str:
    """``target``: the game files of ``source`` as hard links (symbolic links if the file
    system refuses them). Returns how they were linked."""
    how = "hard links"
    for folder in ("2_games", "3_games", "4_games"):
        (target / folder).mkdir(parents=True)
        for f in sorted((source / folder).glob("*.csv")):
            dest = target / folder / f.name
            try:
                os.link(f, dest)
            except OSError:
                os.symlink(f.resolve(), dest)
                how = "symbolic links"
    return how


def add_games(root: Path, games: int, dialect: str, work: Path) -> None:
    """``games`` new games (``splendor-il simulate`` with another seed) under ``root``."""
    new = work / "new-games"
    command = [*simulate_command(), "simulate", "--games", str(games), "--players", "2", "3",
               "4", "--agent", "greedy", "--seed", str(ADDED_SEED), "--out", str(new),
               "--dialect", dialect, "--no-progress"]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, cwd=REPO_ROOT)
    for f in sorted(new.glob("*_games/*.csv")):
        dest = root / f.parent.name / f.name
        if dest.exists():
            raise RuntimeError(f"new game {f.name} clashes with the dataset's")
        os.replace(f, dest)


def _summary_line(stdout: str, label: str) -> str:
    for line in stdout.splitlines():
        if line.strip().startswith(label):
            return line.strip()
    return ""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.cache_rerun", description=__doc__)
    parser.add_argument("--games", type=int, default=DEFAULT_GAMES)
    parser.add_argument("--dialect", default="legacy", choices=["current", "legacy", "legacy-402"])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--added", type=float, default=0.01, help="new games, as a share")
    parser.add_argument("--cache-dir", default=str(CACHE_DIR), help="where the dataset is")
    parser.add_argument("--work-dir", help="keep the runs' folders there (default: temporary)")
    parser.add_argument("--json", help="write the figures there")
    args = parser.parse_args(argv)

    ds = get_dataset(args.games, cache_dir=args.cache_dir, dialect=args.dialect)
    work = Path(args.work_dir or tempfile.mkdtemp(prefix="cache-rerun-"))
    work.mkdir(parents=True, exist_ok=True)
    out, cache = work / "processed", work / "processed.cache"
    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(cache, ignore_errors=True)
    config = work / "config.yaml"
    base = 11 if args.dialect.startswith("legacy") else 12
    config.write_text(f"reader:\n  blind_reserve_base: {base}\n")

    def argv_for(root: Path, use_cache: bool = True) -> list[str]:
        return ["preprocess", "--config", str(config), "--data-root", str(root), "--output",
                str(out), *(["--cache-dir", str(cache)] if use_cache else ["--no-cache"]),
                "--num-workers", str(args.workers), "--no-progress", "--dashboard-address",
                "127.0.0.1:0"]

    load_start = os.getloadavg()[0]
    print(f"dataset {ds.key}: {ds.games} games, {ds.rows:,} rows; {args.workers} workers; "
          f"load average {load_start:.2f}", flush=True)
    runs = []

    reference = {}

    def measure(name: str, root: Path, use_cache: bool = True) -> dict:
        wall, stdout = _cli(argv_for(root, use_cache), work, name)
        stats = json.loads((out / "stats.json").read_text())
        r = {"run": name, "wall_s": wall, "cache_line": _summary_line(stdout, "cache:"),
             "rows_read": stats["rows_read"], "timings": stats["timings"]}
        if not use_cache:
            r["ratio"] = 1.0
            reference.update(r)
            print(f"{name:<24} {wall:6.2f} s  rows {r['rows_read']:,}", flush=True)
            return r
        r["ratio"] = wall / runs[0]["wall_s"] if runs else 1.0
        runs.append(r)
        t = r["timings"]
        stages = ", ".join(
            f"{label} {t[key]:.2f} s"
            for label, key in (("hashing the inputs", "run_key_s"),
                               ("cluster start", "cluster_start_s"),
                               ("processing", "processing_s"), ("writing", "write_s"))
            if key in t
        )
        if "left as it is" in r["cache_line"]:  # stats.json is the earlier run's
            stages = "the output left as it is: no stage ran"
            r["timings"] = {}
        print(f"{name:<24} {wall:6.2f} s  {100 * r['ratio']:5.1f}% of the first run  "
              f"rows {r['rows_read']:,}\n    {r['cache_line']}\n    {stages}", flush=True)
        return r

    try:
        measure("no cache (reference)", ds.root, use_cache=False)
        shutil.rmtree(out)
        measure("first (empty cache)", ds.root)
        dataset_bytes = sum(p.stat().st_size for p in out.iterdir())
        cache_apparent, cache_blocks = folder_bytes(cache)
        measure("unchanged", ds.root)
        (out / "stats.json").touch()
        measure("unchanged, reassembled", ds.root)
        root = work / "games-plus"
        shutil.rmtree(root, ignore_errors=True)
        linked = linked_root(ds.root, root)
        added = max(1, round(ds.games * args.added))
        add_games(root, added, args.dialect, work)
        measure(f"+{added} games ({args.added:.0%})", root)
        cache_after_apparent, _ = folder_bytes(cache)
    finally:
        if not args.work_dir:
            shutil.rmtree(work, ignore_errors=True)
    load_end = os.getloadavg()[0]
    figures = {
        "dataset": ds.key, "games": ds.games, "rows": ds.rows, "workers": args.workers,
        "added_games": added, "linked_with": linked, "dataset_bytes": dataset_bytes,
        "cache_bytes": cache_apparent, "cache_disk_bytes": cache_blocks,
        "cache_bytes_after_added": cache_after_apparent, "load_start": load_start,
        "load_end": load_end, "runs": runs, "no_cache": reference,
    }
    gib = 2**30
    print(f"saved dataset {dataset_bytes / gib:.2f} GiB; cache {cache_apparent / gib:.2f} GiB "
          f"({cache_blocks / gib:.2f} GiB on disk) = {cache_apparent / dataset_bytes:.2f}x the "
          f"dataset; the +1% data root made of {linked}; load average at the end "
          f"{load_end:.2f}")
    print("targets: +1% games <= 25% of the first run, unchanged <= 20%, cache <= 1.5x")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
