"""Memory that does not grow with the data: the parts of issue 26 below the job.

- arrays parked in a file (``spill_arrays``) read back the same, X's spilled blocks int8
  when exact;
- the label and mask statistics summed from partials of any cut of the rows equal those of
  all the rows at once;
- the driver gets no per-game statistics; the scaler merged in buckets on the workers gives
  the same bytes whatever the bucket size and the partitioning (one bucket a game or all in
  one), the labels and masks written in pieces load as arrays equal to the in-memory ones.
"""

from __future__ import annotations

import hashlib
import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from game_data import pipeline_config, simulated_root
from imitation_learning import dataset as D
from imitation_learning import parallel_processor as pp
from imitation_learning import partition_rows as PR
from imitation_learning import spill_arrays as SA
from imitation_learning.config import validate_config
from imitation_learning.data_preprocessing import run_preprocessing
from imitation_learning.dataset import moments_tree as mt
from imitation_learning.dataset.stats import head_partials, head_stats, head_stats_of_partials
from splendor import columns as C


@pytest.fixture(scope="module")
def games(tmp_path_factory) -> Path:
    return simulated_root(tmp_path_factory, "bounded", 18, seed=31)


def test_parked_arrays_read_back(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {"a": rng.random((7, 3)), "b": rng.random(0) < 0.5, "c": np.arange(5, dtype=np.int16)}
    parked = SA.park(tmp_path / "p", arrays)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p"]  # the temporary renamed
    for k, a in arrays.items():
        got = np.asarray(parked[k])
        assert got.dtype == a.dtype and got.shape == a.shape and got.tobytes() == a.tobytes()
    np.testing.assert_array_equal(parked["a"][[2, 0]], arrays["a"][[2, 0]])
    again = pickle.loads(pickle.dumps(parked["c"]))  # its place in the file, not its data
    np.testing.assert_array_equal(np.asarray(again), arrays["c"])
    os.unlink(tmp_path / "p")
    with pytest.raises(FileNotFoundError):
        np.asarray(parked["a"])
    with pytest.raises(FileNotFoundError):
        SA.park(tmp_path / "gone" / "p", arrays)


def test_spilled_blocks_int8_when_exact(tmp_path):
    small = np.array([[1, -3, 0], [127, -128, 5]], dtype=np.float32)
    frac = np.array([[0.5, 1, 2]], dtype=np.float32)
    big = np.array([[300, 1, 2]], dtype=np.float32)
    nan = np.array([[np.nan, 1, 2]], dtype=np.float32)
    neg0 = np.array([[-0.0, 1, 2]], dtype=np.float32)  # -0.0 is not int8's 0: kept float32
    blocks = [small, frac, big, nan, neg0, np.empty((0, 3), np.float32)]
    fd = os.open(tmp_path / "x", os.O_WRONLY | os.O_CREAT)
    stored = [SA.append_block(fd, b) for b in blocks]
    os.close(fd)
    assert [d for _, d in stored] == ["|i1", "<f4", "<f4", "<f4", "<f4", "|i1"]
    got = list(SA.read_blocks(tmp_path / "x", stored, 3))
    assert [first for first, _ in got] == [0, 2, 3, 4, 5, 6]
    for (_, g), b in zip(got, blocks, strict=True):
        assert g.dtype == np.float32 and g.tobytes() == b.tobytes()
    as_stored = [g for _, g in SA.read_blocks(tmp_path / "x", stored, 3, as_stored=True)]
    assert as_stored[0].dtype == np.int8


def test_head_stats_from_partials_of_any_cut():
    rng = np.random.default_rng(2)
    n = 500
    labels = {h: rng.integers(-1, k, n).astype(np.int16) for h, k in C.HEADS.items()}
    masks = {h: rng.random((n, k)) < 0.3 for h, k in C.HEADS.items()}
    whole = head_stats(labels, masks)
    for cuts in ([], [0, 0, 1], [17, 250, 251, 499], [500]):
        bounds = [0, *cuts, n]
        partials = [
            head_partials({h: a[x:y] for h, a in labels.items()},
                          {h: a[x:y] for h, a in masks.items()})
            for x, y in zip(bounds[:-1], bounds[1:], strict=True)
        ]
        assert head_stats_of_partials(partials) == whole
    empty = head_stats({h: a[:0] for h, a in labels.items()}, {h: a[:0] for h, a in masks.items()})
    assert head_stats_of_partials([]) == empty


def test_summary_for_the_driver_has_no_game_statistics(games):
    rows = PR.process_partition_rows(pp.discover_csv_files(games)[:4], validate_config({}))
    summary = PR.summarise_partition(rows)
    assert summary.groups.mean.shape == (len(summary.groups), 0)
    assert summary.groups.m2.shape == (len(summary.groups), 0)
    assert rows.summary.groups.mean.shape[1] > 100  # still on the worker


def _digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.iterdir()) if p.name != "stats.json"}


def test_same_bytes_whatever_the_bucket_size(games, tmp_path, monkeypatch):
    """Buckets are subtrees of one fixed tree: one game a bucket, four, or all in one give
    the same scaler bits, with any partitioning."""
    runs = {}
    for bucket, fpp in [(1024, 100), (1, 1), (4, 5), (2, 4)]:
        monkeypatch.setattr(mt, "BUCKET_GAMES", bucket)
        out = tmp_path / f"out-{bucket}-{fpp}"
        run_preprocessing(pipeline_config(games, out, files_per_partition=fpp), progress=False)
        runs[(bucket, fpp)] = _digests(out)
    first = next(iter(runs.values()))
    assert all(r == first for r in runs.values())

    ds = D.load_dataset(out)
    df, _, labels, masks = pp.process_files_parallel(pp.discover_csv_files(games), {}, 1)
    splits = D.split_by_game(df["game_id"].to_numpy(), (0.8, 0.1, 0.1), seed=42)
    for split in D.SPLITS:
        sel = splits[split]
        for head in C.HEADS:
            got_l, got_m = ds[f"labels_{split}"][head], ds[f"masks_{split}"][head]
            assert got_l.dtype == np.int16 and got_m.dtype == bool
            np.testing.assert_array_equal(got_l, labels[head][sel])
            np.testing.assert_array_equal(got_m, masks[head][sel])
