"""Out-of-core mode: shards on the workers, memory-mapped assembly on the driver.

The saved files must be byte-identical to the in-memory mode's; shards are written
atomically under content-derived names; an interrupted run leaves nothing that changes the
next run's files, and the shard folder never outlives a run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from game_data import pipeline_config, simulated_root
from imitation_learning import out_of_core as ooc
from imitation_learning import parallel_processor as pp
from imitation_learning.config import ConfigError, validate_config
from imitation_learning.data_preprocessing import run_preprocessing
from imitation_learning.dataset import load_dataset
from splendor import columns as C


@pytest.fixture(scope="module")
def games(tmp_path_factory) -> Path:
    """24 self-play games (8 per player count)."""
    return simulated_root(tmp_path_factory, "ooc", 24, seed=23)


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def _comparable_stats(folder: Path) -> dict:
    stats = load_dataset(folder)["stats"]
    del stats["timings"]
    # the run's own settings; everything else in the config must match
    del stats["config"]["data"]["processed_dir"]
    for key in ("out_of_core", "files_per_partition", "num_workers", "scheduler_address"):
        del stats["config"]["preprocessing"][key]
    return stats


@pytest.fixture(scope="module")
def in_memory(games, tmp_path_factory) -> Path:
    """The reference: the in-memory mode, in this process."""
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
    """Anything beside the output folder: shards, temporary or old dataset folders."""
    return sorted(p.name for p in out.parent.iterdir() if p.name != out.name)


def test_config_key_and_flag():
    assert validate_config({})["preprocessing"]["out_of_core"] is False
    assert validate_config({"preprocessing": {"out_of_core": True}})["preprocessing"]["out_of_core"]
    with pytest.raises(ConfigError, match="'preprocessing.out_of_core' must be true or false"):
        validate_config({"preprocessing": {"out_of_core": "yes"}})

    import argparse

    from imitation_learning.cli import build_config, register_cli

    parser = argparse.ArgumentParser()
    register_cli(parser.add_subparsers())
    on = parser.parse_args(["preprocess", "--config", os.devnull, "--out-of-core"])
    off = parser.parse_args(["preprocess", "--config", os.devnull])
    assert build_config(on)["preprocessing"]["out_of_core"] is True
    assert build_config(off)["preprocessing"]["out_of_core"] is False


@pytest.mark.parametrize("files_per_partition", [1, 5, 100])
def test_same_bytes_as_in_memory(games, in_memory, tmp_path, files_per_partition):
    out = tmp_path / "processed"
    cfg = pipeline_config(games, out, out_of_core=True, files_per_partition=files_per_partition)
    summary = run_preprocessing(cfg, progress=False)
    assert summary["out_of_core"] is True
    assert summary["rows_read"] == load_dataset(in_memory)["stats"]["rows_read"] > 0
    assert_same_dataset(out, in_memory)
    assert leftovers(out) == []  # shard folder removed
    ds = load_dataset(out, mmap=True)
    assert ds["X_train"].dtype == np.float32 and ds["X_train"].shape[1] == summary["num_features"]


def test_same_bytes_without_features_or_masks(games, tmp_path):
    outs = {}
    for mode in (False, True):
        out = tmp_path / f"ooc-{mode}" / "processed"
        cfg = pipeline_config(games, out, out_of_core=mode, files_per_partition=4)
        cfg["preprocessing"].update(enable_feature_engineering=False, enable_masking=False)
        run_preprocessing(cfg, progress=False)
        outs[mode] = out
    assert_same_dataset(outs[True], outs[False])
    assert load_dataset(outs[True])["stats"]["num_features"] < 500


def test_shards_are_atomic_content_named_and_rewrite_identically(games, tmp_path):
    paths = pp.discover_csv_files(games)[:5]
    cfg = validate_config({})
    folder = tmp_path / "shards"
    folder.mkdir()
    first = ooc.process_partition_to_shard(paths, cfg, shard_dir=str(folder))
    (shard,) = first.shards
    assert Path(shard).parent == folder
    assert Path(shard).name == ooc.shard_name(paths, cfg)
    before = Path(shard).read_bytes()
    again = ooc.process_partition_to_shard(paths, cfg, shard_dir=str(folder))  # a re-run task
    assert again.shards == [shard]
    assert Path(shard).read_bytes() == before
    assert sorted(p.name for p in folder.iterdir()) == [Path(shard).name]  # no temp file left

    # What comes back: the accounting only; X, labels and masks are in the shard.
    assert list(first.df.columns) == ["game_id", "num_players"]
    assert first.features.shape == (len(first.df), 0)
    assert first.labels == {} and first.masks == {}
    assert first.rows_read == len(first.df) > 0 and first.files_ok == paths
    whole = pp.process_partition(paths, cfg)
    stored = ooc.read_shard(shard)
    assert stored["X"].shape == (len(whole.df), ooc.NUM_FIXED_COLUMNS + whole.features.shape[1])
    for head in C.HEADS:
        np.testing.assert_array_equal(stored["labels"][head], whole.labels[head])
        np.testing.assert_array_equal(stored["masks"][head], whole.masks[head])

    # Names follow the content: other paths or another configuration, another name.
    assert ooc.shard_name(paths[1:], cfg) != ooc.shard_name(paths, cfg)
    other = validate_config({"preprocessing": {"enable_masking": False}})
    assert ooc.shard_name(paths, other) != ooc.shard_name(paths, cfg)


def test_workers_never_create_the_shard_folder(games, tmp_path):
    """A task still running after its run was stopped must not leave a shard behind."""
    paths = pp.discover_csv_files(games)[:2]
    gone = tmp_path / "gone"
    with pytest.raises(FileNotFoundError):
        ooc.process_partition_to_shard(paths, validate_config({}), shard_dir=str(gone))
    assert not gone.exists()


def test_shard_folder_is_emptied_first_and_removed_on_error(tmp_path):
    out = tmp_path / "processed"
    folder = ooc.shard_dir_for(out)
    assert folder == tmp_path / ".processed.shards"
    folder.mkdir()
    (folder / "shard-stale.npz").write_bytes(b"from a killed run")
    with pytest.raises(RuntimeError), ooc.shard_folder(out) as got:
        assert got == folder and list(folder.iterdir()) == []
        raise RuntimeError("boom")
    assert not folder.exists()


def test_failed_save_leaves_no_partial_output(games, tmp_path, monkeypatch):
    out = tmp_path / "processed"

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(ooc, "_fit_and_scale", broken)
    with pytest.raises(OSError, match="disk full"):
        run_preprocessing(pipeline_config(games, out, out_of_core=True), progress=False)
    assert not out.exists()
    assert leftovers(out) == []


_KILLED_RUN = """
import json, sys, time
from imitation_learning import parallel_processor as pp
from imitation_learning.data_preprocessing import run_preprocessing

class StopAtTheFourthFile:  # the job's progress bar, told of each file processed here
    files = 0
    def __init__(self, *args, **kwargs):
        pass
    def __enter__(self):
        return self
    def __exit__(self, *exc):
        return False
    def update(self, n=1):
        StopAtTheFourthFile.files += n
        if StopAtTheFourthFile.files == 4:  # one file a partition: 3 shards written
            print("3 shards written", file=sys.stderr, flush=True)
            time.sleep(600)  # the SIGKILL arrives here

pp.tqdm = StopAtTheFourthFile
run_preprocessing(json.loads(sys.argv[1]), progress=False)
"""


@pytest.mark.slow
def test_killed_run_then_rerun_gives_the_same_files(games, in_memory, tmp_path):
    """SIGKILL an out-of-core run once shards exist; the next run gives the same files."""
    many = tmp_path / "many"
    from splendor.simulate import simulate

    simulate(15, players=(2, 3, 4), agent="greedy", seed=23, out=many, progress=False)
    out = tmp_path / "processed"
    config = pipeline_config(many, out, out_of_core=True, files_per_partition=1)
    proc = subprocess.Popen(
        [sys.executable, "-c", _KILLED_RUN, json.dumps(config)], stderr=subprocess.PIPE, text=True
    )
    folder = ooc.shard_dir_for(out)
    try:
        said = []
        for line in proc.stderr:  # blocks until the run is stopped there (or ends)
            said.append(line)
            if line == "3 shards written\n":
                break
        assert said and said[-1] == "3 shards written\n", "".join(said)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert not out.exists()
    assert len(list(folder.glob("shard-*.npz"))) == 3  # what the killed run left

    reference = tmp_path / "reference"
    run_preprocessing(pipeline_config(many, reference), progress=False)
    run_preprocessing(
        pipeline_config(many, out, out_of_core=True, files_per_partition=7), progress=False
    )
    assert_same_dataset(out, reference)
    assert leftovers(out) == ["many", "reference"]  # no shard or temporary folder
    assert not folder.exists()


@pytest.mark.parametrize("files_per_partition", [1, 3])
def test_duplicate_games_left_out_the_same_way(games, tmp_path, files_per_partition):
    """A game in two files: the driver drops the later file's rows, which its shard still
    holds; the saved files are still those of the in-memory mode."""
    import shutil

    root = tmp_path / "games"
    shutil.copytree(games, root)
    first = sorted((root / "3_games").glob("*.csv"))[0]
    shutil.copy(first, root / "4_games" / "zz_copy.csv")  # later in path order
    outs = {}
    for mode in (False, True):
        out = tmp_path / f"mode-{mode}" / "processed"
        cfg = pipeline_config(root, out, out_of_core=mode, files_per_partition=files_per_partition)
        summary = run_preprocessing(cfg, progress=False)
        assert summary["files_rejected"] == 1
        assert "zz_copy.csv" in summary["rejections"][-1]["file"]
        outs[mode] = out
    assert_same_dataset(outs[True], outs[False])
    assert leftovers(outs[True]) == []
