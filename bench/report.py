"""The benchmark report: machine description, targets, markdown table, PNG plot, JSON."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
from pathlib import Path

RESULTS_JSON = "results.json"
RESULTS_MD = "results.md"
RESULTS_PNG = "throughput.png"

#: The targets of the issue (reported, not asserted).
TARGET_PER_FILE_VS_BARE = 0.5
TARGET_LEGACY_VS_CURRENT = 0.9
TARGET_TWO_WORKER_SPEEDUP = 1.6
TARGET_DASK_OVER_POOL = 1.10
TARGET_FLAT_SPREAD = 0.15
TARGET_MEMORY_OVER_OUTPUTS = 2.0


# --------------------------------------------------------------------------- machine


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gib() -> float | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def load_average() -> float | None:
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None


def machine_info() -> dict:
    """CPU model, cores, memory, load, Python and library versions, date (UTC)."""
    import dask
    import distributed
    import numpy
    import pandas
    import pyarrow

    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "memory_gib": _memory_gib(),
        "load_avg_1m_at_start": load_average(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "pandas": pandas.__version__,
        "pyarrow": pyarrow.__version__,
        "dask": dask.__version__,
        "distributed": distributed.__version__,
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


# --------------------------------------------------------------------------- targets


def _target(name: str, value: float | None, threshold: float, higher_is_better: bool, text: str):
    met = None
    if value is not None:
        met = value >= threshold if higher_is_better else value <= threshold
    return {"name": name, "value": value, "threshold": threshold, "met": met, "how": text}


def evaluate_targets(sections: dict) -> list[dict]:
    """The targets, from whatever sections were measured (``value`` None if not)."""
    targets = []

    per_file = sections.get("per_file")
    targets.append(
        _target(
            "per-file step >= 0.5x bare parse (one core)",
            per_file["per_file_vs_bare"] if per_file else None,
            TARGET_PER_FILE_VS_BARE,
            True,
            "process_single_file rows/s over the faster bare pyarrow parse, one core",
        )
    )
    targets.append(
        _target(
            "per-file step on the older dialect >= 0.9x current",
            per_file.get("legacy_vs_current") if per_file else None,
            TARGET_LEGACY_VS_CURRENT,
            True,
            "process_single_file rows/s on the same games written by simulate --dialect legacy "
            "(nan cells, float integers, blind reserves from 11, CRLF) over the current format, "
            "one core",
        )
    )

    parallel = sections.get("parallel")
    speedup = dask_over_pool = None
    if parallel and "1" in parallel["dask"] and "2" in parallel["dask"]:
        speedup = parallel["dask"]["2"]["rows_per_s"] / parallel["dask"]["1"]["rows_per_s"]
    if parallel:
        top = str(max(parallel["workers"]))
        pool = min(parallel[k][top]["processing_s"] for k in ("multiprocessing", "futures"))
        dask_over_pool = parallel["dask"][top]["processing_s"] / pool
    targets.append(
        _target(
            "2 workers >= 1.6x one worker",
            speedup,
            TARGET_TWO_WORKER_SPEEDUP,
            True,
            "Dask job processing rate, 2 workers (local cluster) over 1 worker (in-process)",
        )
    )
    targets.append(
        _target(
            "Dask within 10% of a plain process pool",
            dask_over_pool,
            TARGET_DASK_OVER_POOL,
            False,
            "Dask job processing time over the faster pool's, all workers",
        )
    )

    scaling = sections.get("scaling")
    spread = None
    if scaling and len(scaling["points"]) >= 2:
        per_row = [p["dask"]["us_per_row"] for p in scaling["points"]]
        spread = max(per_row) / min(per_row) - 1
    targets.append(
        _target(
            "time per row flat (within 15%) with data size",
            spread,
            TARGET_FLAT_SPREAD,
            False,
            "(slowest / fastest time per row) - 1 over the sizes, Dask job processing, all workers",
        )
    )

    memory = sections.get("memory")
    ratio = None
    if memory:
        top = max(memory["points"], key=lambda p: (p["rows"], p["workers"]))
        ratio = top["peak_increase_over_outputs"]
    targets.append(
        _target(
            "driver peak memory <= 2x the outputs",
            ratio,
            TARGET_MEMORY_OVER_OUTPUTS,
            False,
            "driver peak RSS increase over the outputs' nbytes, largest size, all workers",
        )
    )
    return targets


# --------------------------------------------------------------------------- markdown


def _n(x: float, digits: int = 0) -> str:
    return f"{x:,.{digits}f}"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.0%}"


def _mib(b: float) -> str:
    return f"{b / 2**20:,.1f}"


def _machine_md(m: dict) -> list[str]:
    return [
        f"- CPU: {m['cpu']}; {m['cores']} cores ({m['usable_cores']} usable); "
        f"{m['memory_gib']} GiB; load average (1 min) {m['load_avg_1m_at_start']} at start, "
        f"{m.get('load_avg_1m_at_end', '-')} at the end (the machine is shared)",
        f"- {m['os']}; Python {m['python']}; numpy {m['numpy']}, pandas {m['pandas']}, "
        f"pyarrow {m['pyarrow']}, dask {m['dask']}, distributed {m['distributed']}",
        f"- date: {m['date']}",
    ]


def markdown(results: dict) -> str:
    """The results as markdown: machine, one table per section, the targets."""
    s = results["sections"]
    lines = ["# Benchmark results", "", f"Command: `{results['command']}`", ""]
    lines += _machine_md(results["machine"]) + [""]

    if "parse" in s or "per_file" in s:
        d = s.get("per_file") or s["parse"]
        lines += [
            f"## Parse and per-file step, one core ({d['dataset']}: {d['files']} files, "
            f"{_n(d['rows'])} rows; fastest of {d['repeat']} passes; CPU use "
            f"{_pct(d.get('cpu_use'))})",
            "",
            "| step | rows/s | us/row | vs bare parse |",
            "|---|---:|---:|---:|",
        ]
        best = d[d["bare_best"]]["rows_per_s"]
        names = {
            "bare_inferred": "bare pyarrow parse, types inferred",
            "bare_typed": "bare pyarrow parse, column types given",
            "plain_tokenizer": "the reader's numpy tokenizer alone (not a general CSV reader)",
            "per_file": "`process_single_file` (whole per-file step)",
            "plain_tokenizer_legacy": "the numpy tokenizer alone, same games, older dialect",
            "per_file_legacy": "`process_single_file`, same games, older dialect "
            f"({d.get('legacy_dataset')})",
        }
        for key, label in names.items():
            if key in d:
                r = d[key]["rows_per_s"]
                lines.append(f"| {label} | {_n(r)} | {_n(1e6 / r, 1)} | {r / best:.2f}x |")
        if "legacy_vs_current" in d:
            lines += [
                "",
                f"Per-file step on the older exporters' dialect: {d['legacy_vs_current']:.2f}x "
                "its rate on the current format (same games, same passes).",
            ]
        lines.append("")

    if "parallel" in s:
        p = s["parallel"]
        lines += [
            f"## The job on a pool of processes ({p['dataset']}: {p['files']} files, "
            f"{_n(p['rows'])} rows; fastest of {p.get('rounds', 1)} interleaved rounds)",
            "",
            "| runner | workers | start-up s | processing s | rows/s | vs 1 worker in-process "
            "| driver CPU s | CPU use |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        base = p["dask"]["1"]["rows_per_s"] if "1" in p["dask"] else None
        labels = {
            "dask": "Dask `run_job` (local cluster)",
            "multiprocessing": "`multiprocessing.Pool`",
            "futures": "`ProcessPoolExecutor`",
        }
        for key, name in labels.items():
            for w in p["workers"]:
                label = name
                r = p[key].get(str(w))
                if r is None:
                    continue
                start = r.get("cluster_start_s", r.get("pool_start_s", 0.0))
                if r.get("mode") == "in-process":
                    label = "Dask `run_job`, 1 worker: runs in-process, no cluster"
                rel = f"{r['rows_per_s'] / base:.2f}x" if base else "-"
                lines.append(
                    f"| {label} | {w} | {start:.2f} | {r['processing_s']:.2f} | "
                    f"{_n(r['rows_per_s'])} | {rel} | {r.get('driver_cpu_s', float('nan')):.2f} | "
                    f"{_pct(r.get('cpu_use'))} |"
                )
        lines.append("")

    if "scaling" in s:
        sc = s["scaling"]
        lines += [
            "## Scaling with data size (Dask job processing time)",
            "",
            f"| games | files | rows | {sc['workers']} workers s | rows/s | us/row | CPU use "
            "| 1 worker (in-process) s | rows/s | us/row | CPU use |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for pt in sc["points"]:
            r, one = pt["dask"], pt["in_process"]
            lines.append(
                f"| {_n(pt['games'])} | {_n(pt['files'])} | {_n(pt['rows'])} | "
                f"{r['processing_s']:.2f} | {_n(r['rows_per_s'])} | {r['us_per_row']:.1f} | "
                f"{_pct(r.get('cpu_use'))} | {one['processing_s']:.2f} | "
                f"{_n(one['rows_per_s'])} | {one['us_per_row']:.1f} | {_pct(one.get('cpu_use'))} |"
            )
        lines.append("")

    if "memory" in s:
        mem = s["memory"]
        lines += [
            "## Driver peak memory (job in memory, fresh process per run)",
            "",
            "| games | rows | workers | outputs MiB | driver baseline MiB | "
            "driver peak increase MiB | increase / outputs |",
            "|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for pt in mem["points"]:
            lines.append(
                f"| {_n(pt['games'])} | {_n(pt['rows'])} | {pt['workers']} | "
                f"{_mib(pt['outputs_bytes'])} | "
                f"{_mib(pt['baseline_rss_bytes'])} | {_mib(pt['peak_increase_bytes'])} | "
                f"{pt['peak_increase_over_outputs']:.2f}x |"
            )
        lines.append("")

    if "selfplay" in s:
        lines += [
            "## Self-play generation (one process, `splendor.simulate.simulate`)",
            "",
            "| agent | games | rows | CPU s | games/s | rows/s |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for r in s["selfplay"]["agents"]:
            lines.append(
                f"| {r['agent']} | {r['games']} | {_n(r['rows'])} | {r['cpu_s']:.2f} | "
                f"{r['games_per_s']:.1f} | {_n(r['rows_per_s'])} |"
            )
        lines.append("")

    lines += ["## Targets", "", "| target | measured | met | how |", "|---|---:|---|---|"]
    for t in results["targets"]:
        value = "not measured" if t["value"] is None else f"{t['value']:.2f}"
        met = {True: "yes", False: "**no**", None: "-"}[t["met"]]
        lines.append(f"| {t['name']} | {value} | {met} | {t['how']} |")
    lines.append("")
    return "\n".join(lines)


# --------------------------------------------------------------------------- plot


def plot(results: dict, path: str | os.PathLike) -> bool:
    """Throughput against workers (left) and against data size (right); False if there is
    nothing to plot."""
    s = results["sections"]
    if "parallel" not in s and "scaling" not in s:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 5.6))
    if "parallel" in s:
        p = s["parallel"]
        styles = {
            "dask": ("Dask run_job (1 worker: in-process)", "o-"),
            "multiprocessing": ("multiprocessing.Pool", "s-"),
            "futures": ("ProcessPoolExecutor", "^-"),
        }
        for key, (label, style) in styles.items():
            ws = [w for w in p["workers"] if str(w) in p[key]]
            left.plot(ws, [p[key][str(w)]["rows_per_s"] for w in ws], style, label=label)
        pf = s.get("per_file")
        if pf:
            left.axhline(
                pf[pf["bare_best"]]["rows_per_s"],
                color="grey",
                linestyle=":",
                label="bare pyarrow parse, 1 core",
            )
            left.axhline(
                pf["per_file"]["rows_per_s"],
                color="black",
                linestyle="-.",
                label="process_single_file, 1 core",
            )
        left.set_xticks(p["workers"])
        left.set_xlabel("worker processes")
        left.set_ylabel("rows/s (processing, start-up excluded)")
        left.set_title(f"Throughput against workers ({_n(p['rows'])} rows)")
        left.set_ylim(bottom=0)
        left.grid(alpha=0.3)
        left.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2)
    else:
        left.set_axis_off()
    if "scaling" in s:
        sc = s["scaling"]
        rows = [pt["rows"] for pt in sc["points"]]
        rates = [pt["dask"]["rows_per_s"] for pt in sc["points"]]
        right.plot(rows, rates, "o-", label=f"Dask run_job, {sc['workers']} workers")
        one = [pt["in_process"]["rows_per_s"] for pt in sc["points"]]
        right.plot(rows, one, "s--", label="run_job, 1 worker (in-process)")
        for pt, r in zip(sc["points"], rates, strict=True):
            right.annotate(
                f"{pt['games']:,} games",
                (pt["rows"], r),
                textcoords="offset points",
                xytext=(0, 8),
                ha="center",
                fontsize=8,
            )
        right.set_xscale("log")
        right.set_xlabel("rows (log scale)")
        right.set_ylabel("rows/s (processing)")
        right.set_title("Throughput against data size")
        right.set_ylim(0, max(rates + one) * 1.25)
        right.grid(alpha=0.3)
        right.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.14))
    else:
        right.set_axis_off()
    m = results["machine"]
    fig.suptitle(f"{m['cpu']}, {m['cores']} cores; {m['date']}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


# --------------------------------------------------------------------------- files


def load_results(out_dir: str | os.PathLike) -> dict | None:
    path = Path(out_dir) / RESULTS_JSON
    if not path.is_file():
        return None
    return json.loads(path.read_text())


def write_results(results: dict, out_dir: str | os.PathLike) -> list[Path]:
    """Write the JSON, the markdown and (when there is something to plot) the PNG."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    results["targets"] = evaluate_targets(results["sections"])
    written = [out / RESULTS_JSON, out / RESULTS_MD]
    written[0].write_text(json.dumps(results, indent=2) + "\n")
    written[1].write_text(markdown(results))
    if plot(results, out / RESULTS_PNG):
        written.append(out / RESULTS_PNG)
    return written
