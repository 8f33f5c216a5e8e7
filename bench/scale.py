"""The ``scale`` suite: ``splendor-il preprocess --no-cache`` on the full-size older-dialect
set and on ten times it, with the peak resident memory of the driver and of every worker
process sampled through the run, the wall time and the rows/s at each size.

    uv run python -m bench.scale [--sizes 1 10] [--workers 2] [--cache-dir /work/benchdata]
                                 [--interval 0.5] [--json]

The full-size set is :func:`bench.datasets.get_dataset` of ``--games`` (6,650) greedy games
in the legacy dialect (about 550,000 rows, 0.73 GB of CSV; read with
``reader.blind_reserve_base: 11``). A larger size ``k`` is that set copied ``k`` times, the
``c``-th copy's games renamed ``id + c * 100,000`` (file name and ``game_id`` column), so
every copy is a new game: made once into ``<cache dir>/<key>-x<k>/`` (a temporary folder
renamed into place) and reused afterwards.

Each run is the command as a user types it, in a fresh process (``python -m
splendor_il.cli preprocess ...``). Every ``--interval`` seconds the process tree is read
from ``/proc`` (``VmRSS`` of the command's process, the driver, and of each of its
descendants: the Dask nannies' worker processes); each process's peak is the largest value
sampled, so a peak shorter than the interval may be missed (``VmHWM`` is read too, for the
driver, at its last sample). The output is deleted after each run. Also reported: the
largest disk use beside the output during the run (the spill folder, sampled the same way),
and the sizes of X and of the label and mask files.

Targets: every process at most 1 GB at ten times the full size; rows/s at ten times at least
that at full size. Figures are printed (``--json``: also saved to
``bench/results/scale.json``), never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

from bench.datasets import REPO_ROOT, get_dataset

DEFAULT_GAMES = 6650
DEFAULT_CACHE = Path("/work/benchdata")
RESULT_PATH = REPO_ROOT / "bench" / "results" / "scale.json"
ID_STRIDE = 100_000  # copy c renames game g to g + c * ID_STRIDE
GB = 1e9


# --------------------------------------------------------------------------- the data


def copied_dataset(base_root: Path, copies: int, cache_dir: Path) -> Path:
    """``base_root``'s games ``copies`` times under new ids (see the module docstring),
    made once into ``cache_dir / <base name>-x<copies>``; the folder."""
    root = cache_dir / f"{base_root.name}-x{copies}"
    if (root / "manifest.csv").is_file():
        return root
    tmp = cache_dir / f".{root.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    manifest = (base_root / "manifest.csv").read_text().splitlines()
    header, entries = manifest[0], manifest[1:]
    lines = [header]
    try:
        for folder in sorted(base_root.glob("*_games")):
            (tmp / folder.name).mkdir(parents=True)
            for path in sorted(folder.glob("*.csv")):
                data = path.read_bytes()
                game = int(path.stem)
                for c in range(copies):
                    new = game + c * ID_STRIDE
                    # the game id opens every data row (and is in no other column)
                    out = data.replace(f"\n{game},".encode(), f"\n{new},".encode())
                    (tmp / folder.name / f"{new}.csv").write_bytes(out)
        for c in range(copies):
            for entry in entries:
                game, rest = entry.split(",", 1)
                lines.append(f"{int(game) + c * ID_STRIDE},{rest}")
        (tmp / "manifest.csv").write_text("\n".join(lines) + "\n")
        os.replace(tmp, root)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return root


def tree_bytes(root: Path) -> int:
    total = 0
    for folder, _, files in os.walk(root):
        for name in files:
            try:
                total += os.stat(os.path.join(folder, name)).st_blocks * 512
            except OSError:
                pass
    return total


# --------------------------------------------------------------------------- sampling


def _children() -> dict[int, list[int]]:
    """Parent pid -> child pids, of every process now."""
    out: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        out.setdefault(ppid, []).append(int(name))
    return out


def _status(pid: int) -> dict[str, int]:
    figures = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key = line.split(":", 1)[0]
                if key in ("VmRSS", "VmHWM"):
                    figures[key] = int(line.split()[1]) * 1024
    except OSError:
        pass
    return figures


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


class TreeSampler(threading.Thread):
    """Samples the RSS of a process and its descendants, and a folder's disk use."""

    def __init__(self, pid: int, interval: float, watch: Path):
        super().__init__(daemon=True)
        self.pid, self.interval, self.watch = pid, interval, watch
        self.peaks: dict[int, int] = {}
        self.names: dict[int, str] = {}
        self.parent: dict[int, int] = {}
        self.driver_hwm = 0
        self.peak_total = 0
        self.peak_beside = 0  # bytes in the output's folder beside its final files
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            self.sample()
            self.stop.wait(self.interval)

    def sample(self) -> None:
        children = _children()
        todo, total = [self.pid], 0
        while todo:
            pid = todo.pop()
            status = _status(pid)
            rss = status.get("VmRSS", 0)
            if pid == self.pid:
                self.driver_hwm = max(self.driver_hwm, status.get("VmHWM", 0))
            if rss:
                total += rss
                self.peaks[pid] = max(self.peaks.get(pid, 0), rss)
                if pid not in self.names:
                    self.names[pid] = _cmdline(pid)
            for child in children.get(pid, []):
                self.parent[child] = pid
                todo.append(child)
        self.peak_total = max(self.peak_total, total)
        spill = 0
        for folder in self.watch.parent.glob(f".{self.watch.name}*"):
            for sub in folder.glob(".spill"):
                spill += tree_bytes(sub)
        self.peak_beside = max(self.peak_beside, spill)


# --------------------------------------------------------------------------- a run


def compare_npz_loads(out: Path, rounds: int = 3) -> dict:
    """``np.load`` of every labels and masks file of ``out`` (all members read), against
    the same arrays written DEFLATE-compressed as before issue 26 (``write_npz``'s
    ``compress=True``, level 1): best of ``rounds`` interleaved, seconds and bytes."""
    import numpy as np

    from imitation_learning.dataset.files import write_npz

    stored = sorted(p for p in out.iterdir() if p.name.startswith(("labels_", "masks_")))
    deflated = []
    for p in stored:
        with np.load(p) as z:
            arrays = {k: z[k] for k in z.files}
        d = p.with_name(p.stem + ".deflated.npz")
        write_npz(d, arrays, compress=True)
        deflated.append(d)

    def load_all(paths) -> float:
        t0 = time.perf_counter()
        for p in paths:
            with np.load(p) as z:
                for k in z.files:
                    z[k]
        return time.perf_counter() - t0

    times = {"stored": [], "deflated": []}
    for _ in range(rounds):
        times["stored"].append(load_all(stored))
        times["deflated"].append(load_all(deflated))
    figures = {
        "stored_s": min(times["stored"]),
        "deflated_s": min(times["deflated"]),
        "stored_bytes": sum(p.stat().st_size for p in stored),
        "deflated_bytes": sum(p.stat().st_size for p in deflated),
    }
    for d in deflated:
        d.unlink()
    return figures


def run_once(data_root: Path, rows: int, workers: int, work_dir: Path, interval: float,
             compare_npz: bool = False) -> dict:
    """``splendor-il preprocess --no-cache`` of ``data_root`` in a fresh process, sampled."""
    work_dir.mkdir(parents=True, exist_ok=True)
    out = work_dir / "out"
    shutil.rmtree(out, ignore_errors=True)
    config = work_dir / "config.yaml"
    config.write_text("reader:\n  blind_reserve_base: 11\n")
    command = [
        sys.executable, "-m", "splendor_il.cli", "preprocess", "--config", str(config),
        "--data-root", str(data_root), "--output", str(out), "--num-workers", str(workers),
        "--no-progress", "--no-cache", "--dashboard-address", "127.0.0.1:0",
    ]
    env = {k: v for k, v in os.environ.items() if k != "DASK_SCHEDULER_ADDRESS"}
    os.sync()  # the previous run's writes do not share this run's disk
    load = os.getloadavg()
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        cwd=REPO_ROOT,
    )
    sampler = TreeSampler(proc.pid, interval, out)
    sampler.start()
    stdout, stderr = proc.communicate()
    wall = time.perf_counter() - t0
    sampler.stop.set()
    sampler.join()
    if proc.returncode != 0:
        raise RuntimeError(f"preprocess failed:\n{stdout[-2000:]}\n{stderr[-3000:]}")
    stats = json.loads((out / "stats.json").read_text())
    sizes = {p.name: p.stat().st_size for p in out.iterdir()}
    workers_peaks = {
        pid: peak for pid, peak in sampler.peaks.items() if pid != proc.pid
    }
    biggest = max(workers_peaks, key=workers_peaks.get) if workers_peaks else None
    npz = compare_npz_loads(out) if compare_npz else None
    figures = {
        "npz_load": npz,
        "rows": int(stats["rows_read"]),
        "files": len(stats["input_files"]),
        "workers": workers,
        "wall_s": wall,
        "rows_per_s": stats["rows_read"] / wall,
        "load_before": list(load),
        "load_after": list(os.getloadavg()),
        "driver_peak_bytes": sampler.peaks.get(proc.pid, 0),
        "driver_hwm_bytes": sampler.driver_hwm,
        "worker_peak_bytes": workers_peaks.get(biggest, 0) if biggest else 0,
        "processes": [
            {"pid": pid, "peak_bytes": peak, "parent": sampler.parent.get(pid),
             "command": sampler.names.get(pid, "")[:160]}
            for pid, peak in sorted(sampler.peaks.items())
        ],
        "tree_peak_bytes": sampler.peak_total,
        "spill_peak_bytes": sampler.peak_beside,
        "x_bytes": sum(v for k, v in sizes.items() if k.startswith("X_")),
        "labels_masks_bytes": sum(
            v for k, v in sizes.items() if k.startswith(("labels_", "masks_"))
        ),
        "dataset_bytes": sum(sizes.values()),
        "timings": stats["timings"],
        "expected_rows": rows,
    }
    shutil.rmtree(out, ignore_errors=True)
    return figures


def _show(size: int, r: dict) -> None:
    t = r["timings"]
    print(
        f"x{size:<3} {r['files']:,} files, {r['rows']:,} rows: {r['wall_s']:.1f} s end to end "
        f"({r['rows_per_s']:,.0f} rows/s), processing {t.get('processing_s', 0):.1f} s, "
        f"writing {t.get('write_s', 0):.1f} s; load {r['load_before'][0]:.2f} before\n"
        f"     peak RSS: driver {r['driver_peak_bytes'] / GB:.2f} GB "
        f"(VmHWM {r['driver_hwm_bytes'] / GB:.2f}), largest worker "
        f"{r['worker_peak_bytes'] / GB:.2f} GB, whole tree {r['tree_peak_bytes'] / GB:.2f} GB\n"
        f"     disk: spill peak {r['spill_peak_bytes'] / GB:.2f} GB beside X "
        f"{r['x_bytes'] / GB:.2f} GB, labels and masks {r['labels_masks_bytes'] / GB:.3f} GB",
        flush=True,
    )
    if r.get("npz_load"):
        n = r["npz_load"]
        print(f"     np.load of labels and masks: stored {n['stored_s']:.3f} s "
              f"({n['stored_bytes'] / GB:.3f} GB), as DEFLATE level 1 before "
              f"{n['deflated_s']:.3f} s ({n['deflated_bytes'] / GB:.3f} GB)")
    for p in r["processes"]:
        print(f"       pid {p['pid']:>7} peak {p['peak_bytes'] / GB:5.2f} GB  {p['command'][:90]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 10],
                        help="multiples of the full-size set to run (default 1 10)")
    parser.add_argument("--games", type=int, default=DEFAULT_GAMES)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE,
                        help="where the datasets are generated once and kept")
    parser.add_argument("--work-dir", type=Path, default=None,
                        help="where the outputs go (deleted after each run; default: "
                        "<cache dir>/scale-work)")
    parser.add_argument("--interval", type=float, default=0.5, help="sampling period, s")
    parser.add_argument("--json", action="store_true", help=f"also write {RESULT_PATH}")
    args = parser.parse_args(argv)
    base = get_dataset(args.games, dialect="legacy", cache_dir=args.cache_dir)
    work = args.work_dir or args.cache_dir / "scale-work"
    results = []
    for size in args.sizes:
        root = base.root if size == 1 else copied_dataset(base.root, size, args.cache_dir)
        r = run_once(root, base.rows * size, args.workers, work, args.interval,
                     compare_npz=size == 1)
        r["size"] = size
        _show(size, r)
        results.append(r)
    shutil.rmtree(work, ignore_errors=True)
    if args.json:
        RESULT_PATH.parent.mkdir(parents=True, exist_ok=True)
        RESULT_PATH.write_text(json.dumps({"runs": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
