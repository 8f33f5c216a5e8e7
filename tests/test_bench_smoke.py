"""Smoke run of the benchmark suite (``python -m bench.run``) on a few games.

Every measurement, the dataset cache and the report writers run for real, on tiny sizes and
one worker, so that the benchmark code cannot rot. No speed figure is asserted: only that
each measurement accounted for every row and that the report holds what it should.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # ``bench`` is a folder of the repository, not installed
    sys.path.insert(0, str(REPO_ROOT))

from bench import datasets, measure, report, run  # noqa: E402

TINY = run.Plan(main_games=6, scaling_games=(3, 6), repeat=1, selfplay_games=3, workers=(1,))


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("bench-cache")


def test_dataset_is_generated_once_and_cached(cache):
    calls: list[str] = []
    first = datasets.get_dataset(6, cache_dir=cache, log=calls.append)
    assert first.key == "greedy-p234-s2027-g6"
    assert first.root == cache / first.key
    assert len(first.paths) == 6 and first.rows > 0
    assert {Path(p).parent.name for p in first.paths} == {"2_games", "3_games", "4_games"}
    assert len(calls) == 1 and "simulate --games 6 --players 2 3 4" in calls[0]

    again = datasets.get_dataset(6, cache_dir=cache, log=calls.append)
    assert again == first and len(calls) == 1  # from the cache, not generated again
    assert datasets.dataset_key(6, seed=1) != first.key  # the seed is part of the key
    assert first.dialect == "current" and first.blind_reserve_base == 12
    assert not [p for p in cache.iterdir() if p.name.startswith(".")]  # no temporary left


def test_the_same_games_in_the_legacy_dialect_are_cached_apart(cache):
    current = datasets.get_dataset(6, cache_dir=cache, log=lambda _: None)
    calls: list[str] = []
    legacy = datasets.get_dataset(6, cache_dir=cache, log=calls.append, dialect="legacy")
    assert legacy.key == current.key + "-legacy" and legacy.root != current.root
    assert "--dialect legacy" in calls[0]
    assert legacy.rows == current.rows and legacy.blind_reserve_base == 11
    assert legacy.config() == {"reader": {"blind_reserve_base": 11}}
    assert (legacy.root / "manifest.csv").read_text() == (current.root / "manifest.csv").read_text()
    first = Path(legacy.paths[0]).read_bytes()
    assert b",nan," in first and b"\r\n" in first
    assert [Path(p).relative_to(legacy.root) for p in legacy.paths] == [
        Path(p).relative_to(current.root) for p in current.paths
    ]
    with pytest.raises(ValueError, match="unknown dialect"):
        datasets.dataset_key(6, dialect="older")


def test_all_suites_on_a_few_games(cache, tmp_path):
    results = run.run("all", quick=True, out_dir=tmp_path, cache_dir=cache, plan=TINY)
    s = results["sections"]
    main = datasets.get_dataset(6, cache_dir=cache)

    pf = s["per_file"]
    assert pf["rows"] == main.rows and pf["files"] == 6
    for key in ("bare_inferred", "bare_typed", "per_file", "per_file_legacy"):
        assert pf[key]["rows_per_s"] > 0
    assert pf["legacy_dataset"] == "greedy-p234-s2027-g6-legacy"
    assert (
        pf["legacy_vs_current"]
        == pf["per_file_legacy"]["rows_per_s"] / pf["per_file"]["rows_per_s"]
    )
    assert pf["bare_best"] in ("bare_inferred", "bare_typed")

    par = s["parallel"]
    assert par["rows"] == main.rows and par["workers"] == [1]
    assert par["dask"]["1"]["mode"] == "in-process"
    assert par["dask"]["1"]["cluster_start_s"] == 0.0 and par["dask"]["1"]["runs"] >= 1
    for kind in ("multiprocessing", "futures"):
        assert par[kind]["1"]["pool_start_s"] > 0 and par[kind]["1"]["processing_s"] > 0
        assert par[kind]["1"]["cpu_use"] > 0  # measured (its value is the machine's)

    assert [p["games"] for p in s["scaling"]["points"]] == [3, 6]
    assert s["scaling"]["points"][1]["rows"] == main.rows
    assert all(p["in_process"]["mode"] == "in-process" for p in s["scaling"]["points"])
    for point in s["memory"]["points"]:
        assert point["outputs_bytes"] > 0 and point["peak_rss_bytes"] >= point["baseline_rss_bytes"]
    assert [(p["games"], p["workers"]) for p in s["memory"]["points"]] == [(3, 1), (6, 1)]
    assert s["memory"]["points"][1]["rows"] == main.rows
    assert [a["agent"] for a in s["selfplay"]["agents"]] == ["random", "greedy"]
    assert all(a["games"] == 3 and a["rows"] > 0 for a in s["selfplay"]["agents"])

    targets = {t["name"]: t for t in results["targets"]}
    assert len(targets) == 6
    assert targets["2 workers >= 1.6x one worker"]["value"] is None  # one worker only here
    del targets["2 workers >= 1.6x one worker"]
    assert all(t["value"] is not None and t["met"] in (True, False) for t in targets.values())

    saved = json.loads((tmp_path / report.RESULTS_JSON).read_text())
    assert saved["sections"].keys() == s.keys()
    md = (tmp_path / report.RESULTS_MD).read_text()
    assert "## Targets" in md and results["machine"]["cpu"] in md
    assert (tmp_path / report.RESULTS_PNG).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_dask_job_on_its_own_cluster_reports_start_up_apart(cache):
    ds = datasets.get_dataset(6, cache_dir=cache)
    r = measure.measure_dask(ds.paths, ds.rows, 2, max_repeat=1)
    assert r["mode"] == "local cluster" and r["runs"] == 1
    assert r["cluster_start_s"] > 0 and r["processing_s"] > 0
    assert r["total_s"] >= r["cluster_start_s"] + r["processing_s"]
    assert r["cpu_use"] > 0  # measured, the workers' CPU included (its value is the machine's)


def test_cpu_use_is_cpu_time_over_the_cores_the_processes_could_use(monkeypatch):
    monkeypatch.setattr(measure.os, "cpu_count", lambda: 4)
    assert measure.cpu_use(3.0, 2.0, processes=2) == 0.75  # 2 processes, 2 of the 4 cores
    assert measure.cpu_use(6.0, 2.0, processes=8) == 0.75  # 8 processes share the 4 cores
    monkeypatch.setattr(measure.os, "cpu_count", lambda: None)
    assert measure.cpu_use(1.0, 2.0, processes=3) == 0.5  # unknown: one core


def test_one_suite_at_a_time_keeps_the_others(cache, tmp_path):
    run.run("selfplay", quick=True, out_dir=tmp_path, cache_dir=cache, plan=TINY)
    assert not (tmp_path / report.RESULTS_PNG).exists()  # nothing to plot without workers/sizes
    run.run("parse", quick=True, out_dir=tmp_path, cache_dir=cache, plan=TINY)
    saved = json.loads((tmp_path / report.RESULTS_JSON).read_text())
    assert saved["sections"].keys() == {"selfplay", "parse"}
    assert "per_file" not in saved["sections"]["parse"]  # parse alone: bare parsers only
    assert saved["command"] == "uv run python -m bench.run parse --quick"
    assert [t["value"] for t in saved["targets"]] == [None] * 6  # none of them measured


def test_entry_point_command_line(cache, tmp_path):
    argv = ["selfplay", "--quick", "--out", str(tmp_path), "--cache", str(cache)]
    assert run.main(argv) == 0
    saved = json.loads((tmp_path / report.RESULTS_JSON).read_text())
    assert saved["command"] == "uv run python -m bench.run " + " ".join(argv)
    assert saved["quick"] is True and saved["plan"]["scaling_games"] == [50, 200, 500]
    assert [a["games"] for a in saved["sections"]["selfplay"]["agents"]] == [30, 30]


def test_unknown_suite_is_refused():
    with pytest.raises(ValueError, match="unknown suite"):
        run.run("everything", quick=True)
    with pytest.raises(SystemExit):
        run.main(["everything"])


def test_fresh_interpreter_runs(cache):
    """``measure.fresh_runs``: each run of the job in its own interpreter."""
    ds = datasets.get_dataset(6, cache_dir=cache)
    times = measure.fresh_runs(ds.root, 2, rounds=1)
    assert times.keys() == {1, 2}
    assert all(len(t) == 1 and t[0] > 0 for t in times.values())


def test_fullsize_run_on_a_few_games(cache, tmp_path):
    """``bench.fullsize``: the command in a fresh process, its peak and stages read back."""
    from bench import fullsize

    ds = datasets.get_dataset(6, cache_dir=cache, dialect="legacy")
    r = fullsize.run_once(ds.root, "in-memory", 1, "legacy", work_dir=tmp_path)
    assert r["rows"] == ds.rows and r["workers"] == 1
    assert r["driver_peak_bytes"] > 0 and r["wall_s"] > r["timings"]["processing_s"] > 0
    assert "workers_idle_s" not in r  # in-process: no cluster
    fullsize.plot([r], tmp_path / "plot.png")
    assert (tmp_path / "plot.png").stat().st_size > 1000


# --- one command for every suite --------------------------------------------------------------

#: Files of bench/ allowed, for now, what the rule below forbids, and why.
KNOWN_EXCEPTIONS: dict[str, str] = {}


def test_every_registered_suite_has_a_main():
    import importlib
    import inspect

    from bench.suites import SUITES

    assert len(SUITES) >= 10
    for suite in SUITES.values():
        if suite.name == "multihost":  # importing it needs the tests folder (see above)
            continue
        main = importlib.import_module(suite.module).main
        assert "argv" in inspect.signature(main).parameters, suite.name


def test_bench_list_names_every_suite(capsys):
    from bench.__main__ import main
    from bench.suites import SUITES

    assert main(["list"]) == 0
    listed = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert listed == list(SUITES)
    with pytest.raises(SystemExit):
        main(["run", "no-such-suite"])


def test_bench_run_passes_the_arguments_after_the_separator(cache, tmp_path, capsys):
    from bench.__main__ import main

    argv = ["run", "selfplay", "--", "--quick", "--out", str(tmp_path), "--cache", str(cache)]
    assert main(argv) == 0
    assert "== selfplay: exit 0" in capsys.readouterr().out
    saved = json.loads((tmp_path / report.RESULTS_JSON).read_text())
    assert set(saved["sections"]) == {"selfplay"}


def test_nothing_in_bench_imports_the_tests_or_private_names():
    import ast

    found = []
    for path in sorted((REPO_ROOT / "bench").rglob("*.py")):
        name = str(path.relative_to(REPO_ROOT / "bench"))
        if name in KNOWN_EXCEPTIONS:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                module = node.module or ""
                private = [a.name for a in node.names if a.name.startswith("_")]
                if module.split(".")[0] == "tests" or private:
                    found.append(f"{name}:{node.lineno}: from {module} import {private}")
            elif isinstance(node, ast.Import):
                found += [f"{name}:{node.lineno}: import {a.name}" for a in node.names
                          if a.name.split(".")[0] == "tests"]
            elif (isinstance(node, ast.Attribute) and node.attr.startswith("_")
                  and not node.attr.startswith("__")
                  and isinstance(node.value, ast.Name) and node.value.id not in ("self", "cls")):
                found.append(f"{name}:{node.lineno}: {node.value.id}.{node.attr}")
            elif isinstance(node, ast.Constant) and node.value == "tests":
                found.append(f"{name}:{node.lineno}: names the tests folder (sys.path?)")
    assert not found, "\n".join(found)


def test_the_results_table_of_docs_benchmarks_is_the_one_the_figures_give():
    """``docs/benchmarks.md``'s table is rebuilt by ``python -m bench report``; a change of
    ``bench/results/`` without it fails here."""
    from bench.summary import main

    assert main(["--check"]) == 0
