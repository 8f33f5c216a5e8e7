"""The current results: one table from the committed figures, and the plots redrawn.

    uv run python -m bench report            # rewrites docs/benchmarks.md's table and the plots
    uv run python -m bench report --check    # exit 1 if the page's table is not the one the
                                             # figures give (nothing written)

Reads the results the suites saved in ``bench/results/`` (``results.json`` of the job's
throughput suites, ``fullsize.json``, ``cache_rerun.json``, ``rerun_floor.json``,
``bag_vs_keyed-*.json``, ``any_cluster.json``, ``multihost.json``, ``tls.json``,
``scale.json``), builds
one markdown table (figure, target, the suite that measures it, the date it was measured)
and writes it between the markers of ``docs/benchmarks.md``; redraws
``bench/results/throughput.png`` and ``docs/fullsize.png`` from the same files. It measures
nothing: run the suites (``python -m bench run NAME...``) to refresh the figures first.
"""

from __future__ import annotations

import argparse
import json
import subprocess

from bench import report
from bench.datasets import REPO_ROOT

RESULTS = REPO_ROOT / "bench" / "results"
PAGE = REPO_ROOT / "docs" / "benchmarks.md"
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"


def _load(name: str) -> dict | None:
    path = RESULTS / name
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _saved_on(name: str) -> str:
    """The day the figures of ``name`` were committed (author date: a rebase keeps it; the
    files carry no date of their own)."""
    try:
        out = subprocess.run(
            ["git", "log", "-1", "--format=%as", "--", f"bench/results/{name}"],
            cwd=REPO_ROOT, capture_output=True, text=True, check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        out = ""
    return out or "?"


def _span(values: list[float], fmt: str, unit: str = "") -> str:
    """``lo-hi unit`` (one value when they print alike)."""
    lo, hi = fmt.format(min(values)), fmt.format(max(values))
    return (lo if lo == hi else f"{lo}-{hi}") + unit


def rows() -> list[tuple[str, str, str, str, str]]:
    """(what, figure, target, suite, date) of every figure there is."""
    out = []
    full = _load("fullsize.json")
    if full:
        day = _saved_on("fullsize.json")
        two = [r for r in full["results"] if r["workers"] == 2]
        one = [r for r in full["results"] if r["workers"] == 1]
        what = f"`splendor-il preprocess`, {full['rows']:,} rows ({full['games']:,} games)"
        if two:
            out.append((f"{what}, 2 workers, end to end",
                        _span([r["wall_s"] for r in two], "{:.1f}", " s"), "<= 20 s", "fullsize", day))
            out.append(("the same, 2 workers: processing (phase 1)",
                        _span([r["processing_rows_per_s"] for r in two], "{:,.0f}", " rows/s"),
                        ">= 45,000 rows/s", "fullsize", day))
            out.append(("the same, 2 workers: driver peak memory",
                        _span([r["driver_peak_bytes"] / 2**30 for r in two], "{:.2f}", " GiB"),
                        "<= 1 GiB", "fullsize", day))
        if one:
            out.append((f"{what}, 1 worker (no cluster), end to end",
                        _span([r["wall_s"] for r in one], "{:.1f}", " s"), "-", "fullsize", day))
    cache = _load("cache_rerun.json")
    if cache:
        day = _saved_on("cache_rerun.json")
        runs = {r["run"].split(" (")[0]: r for r in cache["runs"]}
        first = runs.get("first")
        if first:
            out.append(("re-run, first run with an empty cache", f"{first['wall_s']:.1f} s", "-",
                        "cache-rerun", day))
        for key, label, target in (("unchanged", "re-run, nothing changed", "<= 20%"),
                                   (f"+{cache['added_games']} games", "re-run after adding 1% games",
                                    "<= 25%")):
            if key in runs:
                r = runs[key]
                out.append((label, f"{r['wall_s']:.2f} s ({r['ratio']:.1%} of the first)",
                            f"{target} of the first", "cache-rerun", day))
        out.append(("result cache size / saved dataset",
                    f"{cache['cache_bytes'] / cache['dataset_bytes']:.2f}x", "<= 1.5x",
                    "cache-rerun", day))
    floor = _load("rerun_floor.json")
    if floor:
        out.append(("least a cached re-run must spend (two cores)",
                    f"{floor['floor_s']:.2f} s ({floor['floor_share']:.1%} of a first run)", "-",
                    "rerun-floor", _saved_on("rerun_floor.json")))
    out += _this_round_rows()
    res = _load(report.RESULTS_JSON)
    if res:
        s = res["sections"]
        if "per_file" in s:
            pf = s["per_file"]
            out.append((f"per-file step, one core ({pf['rows']:,} rows)",
                        f"{pf['per_file']['rows_per_s']:,.0f} rows/s ({pf['per_file_vs_bare']:.2f}x "
                        "a bare typed CSV parse)", ">= 0.5x", "per-file", pf["date"][:10]))
            out.append(("per-file step: older exporters' dialect / current",
                        f"{pf['legacy_vs_current']:.2f}x", ">= 0.9x", "per-file", pf["date"][:10]))
        if "parallel" in s and "2" in s["parallel"]["dask"]:
            par = s["parallel"]
            d1, d2 = par["dask"]["1"], par["dask"]["2"]
            out.append((f"in-memory job, 2 workers / 1 ({par['rows']:,} rows, processing)",
                        f"{d1['processing_s'] / d2['processing_s']:.2f}x", ">= 1.6x", "parallel",
                        par["date"][:10]))
            pool = par["futures"].get("2")
            if pool:
                out.append(("in-memory job: Dask / `ProcessPoolExecutor`, 2 workers (processing)",
                            f"{d2['processing_s'] / pool['processing_s']:.2f}", "<= 1.1",
                            "parallel", par["date"][:10]))
        if "scaling" in s:
            pts = s["scaling"]["points"]
            a, b = pts[0]["dask"]["us_per_row"], pts[-1]["dask"]["us_per_row"]
            out.append((f"time per row, {pts[0]['games']:,} -> {pts[-1]['games']:,} games "
                        f"({s['scaling']['workers']} workers)",
                        f"{a:.1f} -> {b:.1f} us ({b / a - 1:+.0%})", "within 15%", "scaling",
                        s["scaling"]["date"][:10]))
        if "memory" in s:
            ratios = [p["peak_increase_over_outputs"] for p in s["memory"]["points"]]
            out.append(("in-memory job: driver peak / size of the outputs",
                        _span(ratios, "{:.2f}x"), "<= 2x", "memory", s["memory"]["date"][:10]))
        if "selfplay" in s:
            rnd = {a["agent"]: a for a in s["selfplay"]["agents"]}
            out.append(("self-play, one core",
                        ", ".join(f"{k} {a['games_per_s']:.0f} games/s" for k, a in rnd.items()),
                        ">= 50 random games/s", "selfplay", s["selfplay"]["date"][:10]))
    return out


def _this_round_rows() -> list[tuple[str, str, str, str, str]]:
    """The bag against the keyed futures, any cluster, simulated hosts, TLS, ten times the
    full size (issues 23, 25 and 26)."""
    out = []
    labels = {"in-memory": "`process_files_parallel`", "cli": "command line",
              "cli-cache": "command line, empty result cache"}
    for name in sorted(p.name for p in RESULTS.glob("bag_vs_keyed-*.json")):
        bvk, day = _load(name), _saved_on(name)
        for ds in bvk["datasets"].values():
            modes = [(m, ds[m]) for m in labels if m in ds]
            figure = ", ".join(f"{labels[m]} {f['bag_over_keyed_median']:.2f}x" for m, f in modes)
            out.append((f"the bag job / the keyed futures of {bvk['old_ref']}, {ds['rows']:,} "
                        f"rows, {bvk['workers']} workers, end to end (medians)",
                        figure, "<= 1.05x", "bag-vs-keyed", day))
            for m, f in modes:
                if m != "in-memory":
                    out.append((f"`splendor-il preprocess` ({labels[m]}), {ds['rows']:,} rows, "
                                f"{bvk['workers']} workers, the bag job, end to end",
                                _span(f["bag"]["runs"], "{:.1f}", " s"),
                                "no slower than the keyed futures", "bag-vs-keyed", day))
        sc = bvk.get("scaling")
        if sc:
            out.append((f"`process_files_parallel`, {bvk['workers']} workers / 1 in process, "
                        f"{sc['rows']:,} rows, processing (medians)",
                        f"{sc['speedup_median']:.2f}x", ">= 1.4x", "bag-vs-keyed", day))
    anyc = _load("any_cluster.json")
    if anyc:
        day, s = _saved_on("any_cluster.json"), anyc["summary"]["dask worker"]
        out.append(("per-file rows/s per worker, `dask worker` with Dask's defaults / the "
                    f"job's own cluster ({anyc['rows']:,} rows)",
                    f"{s['vs_own_median']:.2f}x (median; {s['vs_own_min']:.2f}-"
                    f"{s['vs_own_max']:.2f}), CPU {s['cpu_vs_own_median']:.2f}x",
                    ">= 0.95x", "any-cluster", day))
        ip = anyc["in_process"]["summary"]
        out.append(("per-file step, CPU a row: glibc's own / Dask's trim setting / the same, "
                    "tuned", " / ".join(f"{ip[k]['cpu_us_per_row_median']:.0f}" for k in ip)
                    + " us", "-", "any-cluster", day))
    hosts = _load("multihost.json")
    if hosts:
        by = {p["variant"]: p for p in hosts["paths"]}
        ratios = [f"{v.split(' (')[0].removeprefix('hosts, ')} {p['processing_vs_local']:.2f}x"
                  for v, p in by.items()
                  if v.startswith("hosts") and "not tuned" not in v]
        out.append((f"simulated hosts / the job's own local cluster, processing "
                    f"({hosts['rows']:,} rows, medians)", ", ".join(ratios), "<= 1.1x",
                    "multihost", _saved_on("multihost.json")))
    tls = _load("tls.json")
    if tls:
        out.append(("TLS / TCP on simulated hosts, processing (median)",
                    f"{tls['tls_vs_tcp']['processing']:.2f}x", "<= 1.1x", "tls",
                    _saved_on("tls.json")))
    scale = _load("scale.json")
    if scale:
        day = _saved_on("scale.json")
        for r in scale["runs"]:
            out.append((f"`splendor-il preprocess`, {r['rows']:,} rows (x{r['size']}): driver / "
                        "largest worker peak memory",
                        f"{r['driver_peak_bytes'] / 1e9:.2f} / {r['worker_peak_bytes'] / 1e9:.2f} GB"
                        f" ({r['rows_per_s']:,.0f} rows/s)", "< 1 GB each", "scale", day))
    return out


def table() -> str:
    lines = ["| what | figure | target | suite | measured |", "|---|---|---|---|---|"]
    lines += [f"| {' | '.join(r)} |" for r in rows()]
    return "\n".join(lines)


def page_with_table(page: str, body: str) -> str:
    if BEGIN not in page or END not in page:
        raise SystemExit(f"{PAGE}: no {BEGIN} ... {END} markers")
    head, rest = page.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{body}\n{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench report", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="only compare the page's table with the figures (exit 1 if stale)")
    args = parser.parse_args(argv)
    page = PAGE.read_text(encoding="utf-8")
    new = page_with_table(page, table())
    if args.check:
        if new != page:
            print(f"{PAGE.relative_to(REPO_ROOT)}: the results table is stale: run "
                  "uv run python -m bench report")
            return 1
        return 0
    PAGE.write_text(new, encoding="utf-8")
    written = [PAGE]
    res = _load(report.RESULTS_JSON)
    if res and report.plot(res, RESULTS / report.RESULTS_PNG):
        written.append(RESULTS / report.RESULTS_PNG)
    full = _load("fullsize.json")
    if full:
        from bench.fullsize import plot

        plot(full["results"], REPO_ROOT / "docs" / "fullsize.png")
        written.append(REPO_ROOT / "docs" / "fullsize.png")
    print("written: " + ", ".join(str(p.relative_to(REPO_ROOT)) for p in written))
    return 0
