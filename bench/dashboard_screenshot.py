"""Screenshots of the Dask dashboard in the middle of a ``splendor-il preprocess`` run.

    uv run python -m bench.dashboard_screenshot [--games 6650] [--workers 2]
        [--at 8 16] [--out docs/dashboard.png]

Starts the command on a cached self-play dataset (:mod:`bench.datasets`) with the dashboard
on a free port, reads the dashboard's address from the command's stderr, and opens its
``/status`` page in headless Chromium (Debian's ``chromium`` package, driven by the
``playwright`` package of the dev dependencies; no browser is downloaded), keeps it open
(the dashboard updates it live) and saves a PNG at each ``--at`` delay (seconds after the
address was printed) and, with ``--phase2``, one as the writes begin (the split files
appear in the save's temporary folder): ``--out`` for the first, ``<stem>-2.png`` ... for
the others. The run is then left to finish (its output goes to
``bench/cache/dashboard-run/``).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from bench.datasets import CACHE_DIR, REPO_ROOT, get_dataset

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
PHASE2_DELAY_MS = 700


def _split_files_exist(out_dir: Path) -> bool:
    """Phase 2 has begun: the split files are preallocated in the save's temporary folder."""
    return any(out_dir.parent.glob(f".{out_dir.name}.tmp-*/X_train.npy"))


def take(url: str, moments: list, out_dir: Path, width: int, height: int, t0: float) -> None:
    """One page kept open (the dashboard updates it live), a screenshot at each moment:
    ``(path, seconds after t0)`` or ``(path, "phase 2")``."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.goto(url, wait_until="networkidle", timeout=60_000)
            for path, when in moments:
                if when == "phase 2":
                    while not _split_files_exist(out_dir):
                        page.wait_for_timeout(100)
                    page.wait_for_timeout(PHASE2_DELAY_MS)
                else:
                    page.wait_for_timeout(max(0.0, when - (time.monotonic() - t0)) * 1000)
                page.screenshot(path=str(path))
                print(f"{path} ({time.monotonic() - t0:.1f} s after the dashboard came up)")
        finally:
            browser.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.dashboard_screenshot")
    parser.add_argument("--games", type=int, default=6650)
    parser.add_argument("--dialect", default=None)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--at", type=float, nargs="*", default=[8.0], help="seconds")
    parser.add_argument("--phase2", action="store_true", help="and one as the writes start")
    parser.add_argument("--out", default=str(REPO_ROOT / "docs" / "dashboard.png"))
    parser.add_argument("--size", type=int, nargs=2, default=[1500, 950])
    args = parser.parse_args(argv)

    ds = get_dataset(args.games, dialect=args.dialect)
    out_dir = CACHE_DIR / "dashboard-run"
    shutil.rmtree(out_dir, ignore_errors=True)
    command = [sys.executable, "-m", "splendor_il.cli", "preprocess", "--config", os.devnull]
    # without the result cache: a second run would find every file cached and run in this
    # process, with no cluster and no dashboard
    command += ["--data-root", str(ds.root), "--output", str(out_dir), "--no-progress", "--no-cache"]
    command += ["--num-workers", str(args.workers), "--dashboard-address", "127.0.0.1:0"]
    env = {k: v for k, v in os.environ.items() if k != "DASK_SCHEDULER_ADDRESS"}
    proc = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO_ROOT)
    url = None
    try:
        for line in proc.stderr:
            found = re.search(r"Dask dashboard: (http://\S+)", line)
            if found:
                url = found.group(1)
                break
        if url is None:
            raise RuntimeError("the command printed no dashboard address")
        t0 = time.monotonic()
        target = Path(args.out)
        whens = [*sorted(args.at), *(["phase 2"] if args.phase2 else [])]
        paths = [target] + [
            target.with_name(f"{target.stem}-{n}{target.suffix}") for n in range(2, len(whens) + 1)
        ]
        take(url, list(zip(paths, whens, strict=True)), out_dir, *args.size, t0)
        rest = proc.stderr.read()
        proc.wait(timeout=600)
        if proc.returncode != 0:
            raise RuntimeError(f"the run failed:\n{rest[-2000:]}")
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=60)


if __name__ == "__main__":
    main()
