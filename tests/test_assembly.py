"""The command line's job (``imitation_learning.job.build``): X built, scaled and written by
the workers, the driver planning from small summaries.

- the saved files are the same bytes whatever the number of workers, the cluster (the job's
  own, an existing one), the partitioning and the mode flag (``out_of_core`` is accepted
  and takes the same path);
- they hold what the in-memory job (``process_files_parallel``) gives, split by game and
  standardised, and the scaler equals a float64 two-pass computation within 1e-9;
- the driver never holds X: it gets summaries only (no array of the rows' size) and its
  traced allocations stay far below X's size; phase-1 results stay on the workers until
  the writes (the dashboard's Progress panel fills) and the tasks have their own names;
- writes are idempotent and never create files; an interrupted or failed run leaves
  nothing, and the next run gives the same files.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from game_data import pipeline_config, simulated_root
from imitation_learning import dataset as D
from imitation_learning import parallel_processor as pp
from imitation_learning import partition_rows as PR
from imitation_learning import partition_writes as PW
from imitation_learning.config import ConfigError, validate_config
from imitation_learning.data_preprocessing import run_preprocessing
from imitation_learning.dataset import load_dataset
from imitation_learning.job import build, phases
from imitation_learning.job import plan as job_plan
from imitation_learning.job.bag import PROCESS_TASK, process_task_name
from imitation_learning.job.executors import task_seconds_key
from splendor import columns as C


@pytest.fixture(scope="module")
def games(tmp_path_factory) -> Path:
    """24 self-play games (8 per player count)."""
    return simulated_root(tmp_path_factory, "assembly", 24, seed=23)


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def _comparable_stats(folder: Path) -> dict:
    stats = load_dataset(folder)["stats"]
    del stats["timings"]
    # the run's own settings; everything else in the config must match
    del stats["config"]["data"]["processed_dir"]
    for key in ("out_of_core", "durable", "files_per_partition", "num_workers",
                "scheduler_address", "dashboard_address", "report"):
        del stats["config"]["preprocessing"][key]
    return stats


@pytest.fixture(scope="module")
def reference(games, tmp_path_factory) -> Path:
    """One worker, in this process, automatic partitions."""
    out = tmp_path_factory.mktemp("reference") / "processed"
    run_preprocessing(pipeline_config(games, out), progress=False)
    return out


def assert_same_dataset(folder: Path, reference: Path) -> None:
    got, want = _files(folder), _files(reference)
    assert sorted(got) == sorted(want)
    for name in want:
        if name != "stats.json":
            assert got[name] == want[name], f"{name} differs"
    assert _comparable_stats(folder) == _comparable_stats(reference)


def leftovers(out: Path) -> list[str]:
    """Anything beside the output folder: temporary or old dataset folders."""
    return sorted(p.name for p in out.parent.iterdir() if p.name != out.name)


def test_config_key_and_flags():
    assert validate_config({})["preprocessing"]["out_of_core"] is False
    assert validate_config({"preprocessing": {"out_of_core": True}})["preprocessing"]["out_of_core"]
    with pytest.raises(ConfigError, match="'preprocessing.out_of_core' must be true or false"):
        validate_config({"preprocessing": {"out_of_core": "yes"}})
    assert validate_config({})["preprocessing"]["durable"] is False

    import argparse

    from splendor_il.preprocess_cli import build_config, register_cli

    parser = argparse.ArgumentParser()
    register_cli(parser.add_subparsers())
    on = parser.parse_args(["preprocess", "--config", os.devnull, "--out-of-core", "--durable"])
    off = parser.parse_args(["preprocess", "--config", os.devnull])
    assert build_config(on).preprocessing.out_of_core is True
    assert build_config(on).preprocessing.durable is True
    assert build_config(off).preprocessing.out_of_core is False


# --------------------------------------------------------------------------- same bytes


@pytest.mark.parametrize(
    "settings",
    [
        {"files_per_partition": 1},
        {"files_per_partition": 5, "out_of_core": True},
        {"files_per_partition": 100, "durable": True},
        {"num_workers": 2, "dashboard_address": "127.0.0.1:0"},
        {"num_workers": 2, "dashboard_address": "127.0.0.1:0", "files_per_partition": 7,
         "out_of_core": True},
    ],
    ids=["1-worker-fpp1", "1-worker-fpp5-ooc", "1-worker-fpp100-durable", "2-workers",
         "2-workers-fpp7-ooc"],
)
def test_same_bytes_whatever_the_workers_partitions_and_mode(
    games, reference, tmp_path, settings
):
    out = tmp_path / "processed"
    summary = run_preprocessing(pipeline_config(games, out, **settings), progress=False)
    assert summary["rows_read"] == load_dataset(reference)["stats"]["rows_read"] > 0
    assert_same_dataset(out, reference)
    assert leftovers(out) == []


@pytest.mark.parametrize("files_per_partition", [2, 9])
def test_same_bytes_on_an_existing_cluster(games, reference, tmp_path, dask_scheduler_address,
                                           files_per_partition):
    out = tmp_path / "processed"
    cfg = pipeline_config(
        games, out, scheduler_address=dask_scheduler_address,
        files_per_partition=files_per_partition,
    )
    summary = run_preprocessing(cfg, progress=False)
    assert summary["num_workers"] == 2
    assert_same_dataset(out, reference)
    assert leftovers(out) == []
    # the compute seconds of the processing and write tasks, as the benchmarks read them
    timings = json.loads((out / "stats.json").read_text())["timings"]
    assert timings[task_seconds_key(process_task_name())] > 0
    assert timings[task_seconds_key("write-x-rows")] > 0


def test_same_bytes_without_features_or_masks(games, tmp_path):
    outs = {}
    for workers in (1, 2):
        out = tmp_path / f"w{workers}" / "processed"
        cfg = pipeline_config(games, out, num_workers=workers, files_per_partition=4,
                              dashboard_address="127.0.0.1:0")
        cfg["preprocessing"].update(enable_feature_engineering=False, enable_masking=False)
        run_preprocessing(cfg, progress=False)
        outs[workers] = out
    assert_same_dataset(outs[2], outs[1])
    assert load_dataset(outs[1])["stats"]["num_features"] < 500


# --------------------------------------------------------------------------- content


def test_dataset_is_the_in_memory_outputs_split_and_scaled(games, reference):
    """Against an independent computation: the in-memory job's outputs, X built whole,
    split by game, and the scaler as a float64 two-pass mean and std of the train rows."""
    cfg = validate_config({})
    df, features, labels, masks = pp.process_files_parallel(
        pp.discover_csv_files(games), cfg, num_workers=1
    )
    X, names, kinds = D.build_feature_matrix(df, features)
    splits = D.split_by_game(df["game_id"].to_numpy(), (0.8, 0.1, 0.1), seed=cfg["seed"])
    ds = load_dataset(reference)
    assert ds["feature_names"] == names

    continuous = np.flatnonzero(np.asarray(kinds) == D.CONTINUOUS)
    train = X[splits["train"]].astype(np.float64)
    mean = train.mean(axis=0)
    std = np.sqrt(((train - mean) ** 2).mean(axis=0))
    scaler = ds["scaler"]
    np.testing.assert_array_equal(scaler.columns, continuous)
    np.testing.assert_allclose(scaler.mean[continuous], mean[continuous], rtol=1e-9, atol=0)
    want_scale = np.where(std[continuous] > 0, std[continuous], 1.0)
    np.testing.assert_allclose(scaler.scale[continuous], want_scale, rtol=1e-9, atol=0)
    others = np.setdiff1d(np.arange(X.shape[1]), continuous)
    assert (scaler.mean[others] == 0).all() and (scaler.scale[others] == 1).all()
    assert (std[continuous] > 0).sum() > 100  # the comparison covers real spreads

    for split in D.SPLITS:
        sel = splits[split]
        assert ds[f"X_{split}"].tobytes() == scaler.transform(X[sel]).tobytes()
        for head in C.HEADS:
            np.testing.assert_array_equal(ds[f"labels_{split}"][head], labels[head][sel])
            np.testing.assert_array_equal(ds[f"masks_{split}"][head], masks[head][sel])
    expected_stats = D.dataset_stats(splits, df["game_id"], df["num_players"], labels, masks)
    for key, value in expected_stats.items():
        assert ds["stats"][key] == value, key


def test_scaler_merge_does_not_depend_on_the_order_of_partitions():
    """Per-game statistics merged in game-id order: the same bits from any grouping."""
    rng = np.random.default_rng(5)
    blocks = [rng.normal(rng.uniform(-50, 50), rng.uniform(0.1, 9), (rng.integers(1, 40), 6))
              for _ in range(50)]
    moments = [D.Moments.of_rows(b) for b in blocks]
    a = D.Scaler.from_moments(moments, 6, np.arange(6))
    b = D.Scaler.from_moments(list(moments), 6, np.arange(6))
    assert a.mean.tobytes() == b.mean.tobytes() and a.scale.tobytes() == b.scale.tobytes()
    rows = np.concatenate(blocks)
    np.testing.assert_allclose(a.mean, rows.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(a.scale, rows.std(axis=0), rtol=1e-12)
    empty = D.Scaler.from_moments([], 6, np.arange(3))
    assert (empty.mean == 0).all() and (empty.scale == 1).all()


# --------------------------------------------------------------------------- the driver


def test_driver_gets_summaries_only_and_never_builds_x(
    games, reference, tmp_path, dask_scheduler_address, monkeypatch
):
    """On a cluster the driver never builds X nor concatenates outputs, receives no array
    of the rows' length, and its traced allocations stay far below X's size. Phase-1
    results are all still on the workers when the writes start (the Progress panel of the
    dashboard fills), under their task names."""

    def forbidden(*args, **kwargs):
        raise AssertionError("the driver must not do this")

    monkeypatch.setattr(D, "build_feature_matrix", forbidden)
    monkeypatch.setattr(PR, "build_feature_matrix", forbidden)  # workers import their own
    monkeypatch.setattr(pp.FileResult, "concat", forbidden)
    received, states = [], {}
    process, write = phases.OnCluster.process, phases.OnCluster.write

    def recording_process(self, paths, sizes, cfg, bar):
        summaries = process(self, paths, sizes, cfg, bar)
        received.extend(summaries)
        return summaries

    def checking_write(self, plan, files):
        from dask.utils import key_split

        def task_states(dask_scheduler, keys):
            return [(key_split(k), ts.state) for k, ts in dask_scheduler.tasks.items()
                    if str(k) in keys]

        keys = {str(f.key) for f in self.rows}
        states["before"] = self.client.run_on_scheduler(task_states, keys=keys)
        return write(self, plan, files)

    monkeypatch.setattr(phases.OnCluster, "process", recording_process)
    monkeypatch.setattr(phases.OnCluster, "write", checking_write)
    out = tmp_path / "processed"
    cfg = pipeline_config(games, out, scheduler_address=dask_scheduler_address,
                          files_per_partition=3)
    tracemalloc.start()
    try:
        summary = run_preprocessing(cfg, progress=False)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert_same_dataset(out, reference)

    rows = sum(summary["rows_per_split"].values())
    x_bytes = rows * summary["num_features"] * 4
    # an older Dask (tuple graphs) submits the bag through Bag.to_delayed: a larger graph,
    # a fixed cost of about 0.5 MB here, which this small X (10 MB) makes visible
    from imitation_learning.job.bag import task_spec_graphs

    share = 4 if task_spec_graphs() else 3
    assert peak < x_bytes / share, f"driver peak {peak} for X of {x_bytes} bytes"
    assert len(received) == 8  # 24 files, 3 a partition
    for s in received:
        assert isinstance(s, PR.PartitionSummary) and not hasattr(s, "X")
        for array in (s.groups.file, s.groups.game_id, s.groups.rows, s.groups.mean):
            assert len(array) == len(s.file_index) < s.rows  # one entry a game, not a row
    # (an older Dask's partitions are the bag's alias keys, named after its last layer)
    names = {PROCESS_TASK} if task_spec_graphs() else {n for n, _ in states["before"]}
    phase1 = [state for name, state in states["before"] if name in names]
    assert phase1 == ["memory"] * 8


def test_task_names_in_the_performance_report(games, tmp_path):
    out = tmp_path / "processed"
    report = tmp_path / "report.html"
    cfg = pipeline_config(games, out, num_workers=2, files_per_partition=6, report=str(report),
                          dashboard_address="127.0.0.1:0")
    run_preprocessing(cfg, progress=False)
    html = report.read_text()
    from imitation_learning.job.bag import PROCESS_TASK, process_task_name

    for name in build.TASK_NAMES:
        name = process_task_name() if name == PROCESS_TASK else name
        assert name in html, name


def test_driver_writes_when_the_workers_cannot_see_the_output(
    games, reference, tmp_path, dask_scheduler_address, monkeypatch
):
    monkeypatch.setattr(phases.OnCluster, "workers_see", lambda self, folder: False)
    out = tmp_path / "processed"
    cfg = pipeline_config(games, out, scheduler_address=dask_scheduler_address,
                          files_per_partition=5)
    run_preprocessing(cfg, progress=False)
    assert_same_dataset(out, reference)


# --------------------------------------------------------------------------- writes


def test_writes_are_idempotent_and_never_create_files(games, tmp_path):
    paths = pp.discover_csv_files(games)[:5]
    cfg = validate_config({})
    rows = PR.process_partition_rows(paths, cfg)
    width = rows.X.shape[1]
    n_groups = len(rows.summary.groups)
    group_split = np.arange(n_groups) % 3  # some games in each split
    counts = {s: int(np.isin(rows.row_group, np.flatnonzero(group_split == i)).sum())
              for i, s in enumerate(D.SPLITS)}
    folder = tmp_path / "save"
    folder.mkdir()
    files = job_plan.preallocate(folder, {s: counts[s] + 3 for s in D.SPLITS}, width)
    targets = {s: PW.SplitFile(f.path, f.data_offset, 2) for s, f in files.items()}
    split_rows = {s: counts[s] + 3 for s in D.SPLITS}
    pieces = {s: PW.SplitPieces(str(folder), s, split_rows[s], 2) for s in D.SPLITS}
    scaler = D.Scaler(np.full(width, 1.5), np.full(width, 2.0), np.arange(width))
    first = PW.write_x_rows(rows, group_split, targets, scaler, pieces)
    before = _files(folder)
    again = PW.write_x_rows(rows, group_split, targets, scaler, pieces)  # a re-run task
    assert _files(folder) == before
    assert [again[s][n] for s in D.SPLITS for n in ("labels", "masks")] == [
        first[s][n] for s in D.SPLITS for n in ("labels", "masks")]
    for split in D.SPLITS:
        X = np.load(folder / f"X_{split}.npy")
        sel = group_split[rows.row_group] == D.SPLITS.index(split)
        assert X[2 : 2 + counts[split]].tobytes() == scaler.transform(rows.X[sel]).tobytes()
        assert not X[:2].any() and not X[2 + counts[split] :].any()  # nothing else touched
        with np.load(folder / f"labels_{split}.npz") as z:  # not sealed: read the rows raw
            layout = D.labels_masks_layouts(split_rows[split])["labels"]
            raw = np.memmap(folder / f"labels_{split}.npz", dtype=np.uint8, mode="r")
            for j, head in enumerate(C.HEADS):
                start = layout.data_offsets[j]
                got = raw[start : start + 2 * split_rows[split]].view(np.int16)
                np.testing.assert_array_equal(got[2 : 2 + counts[split]], rows.labels[head][sel])
                assert not got[:2].any() and not got[2 + counts[split] :].any()
            assert z.files == list(C.HEADS)

    # spilled: X as int8 when exact, labels, masks and statistics parked beside it; the
    # write deletes the spill files; run again without them, the partition is made again
    # from its files and the same bytes are written
    spilled = PR.process_partition_rows(paths, cfg, spill_dir=str(folder))
    assert Path(spilled.spill).parent == folder and spilled.X is None
    assert Path(spilled.spill).stat().st_size < rows.X.nbytes / 3  # int8 rows
    assert spilled.load_x().tobytes() == rows.X.tobytes()
    for head in C.HEADS:
        assert not isinstance(spilled.masks[head], np.ndarray)  # parked in a file
        np.testing.assert_array_equal(np.asarray(spilled.masks[head]), rows.masks[head])
    PW.write_x_rows(spilled, group_split, targets, scaler, pieces)
    assert not Path(spilled.spill).exists() and not Path(spilled.side).exists()
    assert _files(folder) == before
    PW.write_x_rows(spilled, group_split, targets, scaler, pieces)
    assert _files(folder) == before

    gone = tmp_path / "gone"
    gone_targets = {s: PW.SplitFile(str(gone / f"X_{s}.npy"), 128, 0) for s in D.SPLITS}
    gone_pieces = {s: PW.SplitPieces(str(gone), s, split_rows[s], 0) for s in D.SPLITS}
    with pytest.raises(FileNotFoundError):
        PW.write_x_rows(rows, group_split, gone_targets, scaler, gone_pieces)
    with pytest.raises(FileNotFoundError):
        PW.write_split_labels_masks(str(gone), "train", split_rows["train"], first)
    with pytest.raises(FileNotFoundError):
        PR.process_partition_rows(paths, cfg, spill_dir=str(gone))
    assert not gone.exists()


def test_failed_save_leaves_no_partial_output(games, tmp_path, monkeypatch):
    out = tmp_path / "processed"

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(phases, "write_split_labels_masks", broken)
    with pytest.raises(OSError, match="disk full"):
        run_preprocessing(pipeline_config(games, out), progress=False)
    assert not out.exists()
    assert leftovers(out) == []


@pytest.mark.slow
def test_killed_run_then_rerun_gives_the_same_files(tmp_path):
    """SIGKILL a run while it spills partitions; the next run gives the same files."""
    many = tmp_path / "many"
    from splendor.simulate import simulate

    simulate(150, players=(2, 3, 4), agent="greedy", seed=23, out=many, progress=False)
    out = tmp_path / "processed"
    code = (
        "from imitation_learning.data_preprocessing import run_preprocessing\n"
        f"run_preprocessing({pipeline_config(many, out, files_per_partition=1)!r},"
        " progress=False)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            if len(list(tmp_path.glob(".processed.tmp-*/.spill/.x-unscaled-*"))) >= 3:
                break
            time.sleep(0.02)
        assert proc.poll() is None, "the run finished before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not out.exists()
    assert list(tmp_path.glob(".processed.tmp-*"))  # what the killed run left

    reference = tmp_path / "reference"
    run_preprocessing(pipeline_config(many, reference), progress=False)
    run_preprocessing(pipeline_config(many, out, files_per_partition=7), progress=False)
    assert_same_dataset(out, reference)
    assert leftovers(out) == ["many", "reference"]  # no temporary folder


@pytest.mark.parametrize("workers", [1, 2])
def test_duplicate_games_left_out_as_the_in_memory_job_does(games, tmp_path, workers):
    """A game in two files: the later file is rejected whole, whatever the partitioning;
    the rows saved are those ``process_files_parallel`` keeps."""
    root = tmp_path / "games"
    shutil.copytree(games, root)
    first = sorted((root / "3_games").glob("*.csv"))[0]
    shutil.copy(first, root / "4_games" / "zz_copy.csv")  # later in path order
    df, _, labels, _ = pp.process_files_parallel(pp.discover_csv_files(root), {}, 1)
    outs = []
    for fpp in (1, 3):
        out = tmp_path / f"fpp-{fpp}" / "processed"
        cfg = pipeline_config(root, out, num_workers=workers, files_per_partition=fpp,
                              dashboard_address="127.0.0.1:0")
        summary = run_preprocessing(cfg, progress=False)
        assert summary["files_rejected"] == 1
        assert "zz_copy.csv" in summary["rejections"][-1]["file"]
        assert sum(summary["rows_per_split"].values()) == len(df)
        ds = load_dataset(out)
        saved = np.concatenate([ds[f"labels_{s}"]["action_type"] for s in D.SPLITS])
        assert np.sort(saved).tolist() == np.sort(labels["action_type"]).tolist()
        outs.append(out)
        assert leftovers(out) == []
    assert_same_dataset(outs[1], outs[0])
