"""The per-file result cache (``imitation_learning.result_cache``): a re-run processes only
the files whose key is not in the cache, and saves the same bytes as a run with an empty
cache (nothing changed, files added, edited or removed, a configuration change that must
invalidate and one that must not); entries are whole or absent, a damaged one is reported
and recomputed, a rejected file is cached with its rejections; the key's version follows
the sources of the per-file step's import graph; the command line's flags and ``cache``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from bad_corpus import CORPUS_ROOT, make_runtime_entries
from game_data import pipeline_config, simulated_root
from imitation_learning import result_cache as rc
from imitation_learning.config import _SCHEMA, validate_config
from imitation_learning.data_preprocessing import run_preprocessing
from imitation_learning.per_file.file_processing import StrictModeError
from imitation_learning.result_cache import entries, lookup
from splendor_il.cli import main
from splendor_il.preprocess_cli import format_summary


@pytest.fixture(scope="module")
def games(tmp_path_factory) -> Path:
    """18 self-play games (6 per player count)."""
    return simulated_root(tmp_path_factory, "cache-games", 18, seed=31)


@pytest.fixture()
def root(games, tmp_path) -> Path:
    """A copy of the games this test may change."""
    out = tmp_path / "games"
    shutil.copytree(games, out)
    return out


def run(root: Path, out: Path, cache: Path | None, **prep) -> dict:
    cfg = pipeline_config(root, out, **prep)
    return run_preprocessing(cfg, progress=False, cache_dir=cache)


def saved(folder: Path) -> dict[str, object]:
    """The saved files' bytes; ``stats.json`` without its timings (they differ run to run)."""
    out: dict[str, object] = {}
    for p in sorted(folder.iterdir()):
        if p.name == "stats.json":
            stats = json.loads(p.read_text())
            del stats["timings"]
            out[p.name] = stats
        else:
            out[p.name] = p.read_bytes()
    return out


def empty_cache_run(root: Path, out: Path, tmp_path: Path, **prep) -> dict[str, object]:
    """What a run with an empty cache saves at ``out`` (the output path is in stats.json)."""
    fresh = tmp_path / "fresh-cache"
    shutil.rmtree(fresh, ignore_errors=True)
    summary = run(root, out, fresh, **prep)
    assert summary["cache"]["files_cached"] == 0
    return saved(out)


def reassemble(out: Path) -> None:
    """Touch the output: the next run assembles it again instead of leaving it as it is."""
    (out / "stats.json").touch()


def counts(summary: dict) -> tuple[int, int]:
    return summary["cache"]["files_cached"], summary["cache"]["files_processed"]


# --------------------------------------------------------------------------- re-runs


def test_rerun_with_nothing_changed_takes_every_file_from_the_cache(root, tmp_path):
    out, cache = tmp_path / "processed", tmp_path / "cache"
    first = run(root, out, cache)
    assert counts(first) == (0, 18)
    assert first["cache"]["entries"] == 18 and first["cache"]["bytes"] > 0
    assert first["cache"]["output_unchanged"] is False
    want = saved(out)
    # the output holds this very run's dataset: left as it is
    inodes = {p.name: p.stat().st_ino for p in out.iterdir()}
    again = run(root, out, cache)
    assert again["cache"]["output_unchanged"] is True
    assert counts(again) == (18, 0)
    assert {p.name: p.stat().st_ino for p in out.iterdir()} == inodes
    assert again["rows_read"] == first["rows_read"]
    assert again["rows_per_split"] == first["rows_per_split"]
    assert saved(out) == want
    # a file of the output rewritten (even with its own bytes): assembled again, every
    # file from the cache
    x = out / "X_val.npy"
    x.write_bytes(x.read_bytes())
    again = run(root, out, cache)
    assert again["cache"]["output_unchanged"] is False
    assert counts(again) == (18, 0)
    assert saved(out) == want
    # and the same bytes as a run without any cache
    run(root, out, None)
    assert saved(out) == want
    # the output gone: assembled again
    shutil.rmtree(out)
    again = run(root, out, cache)
    assert again["cache"]["output_unchanged"] is False and saved(out) == want


def test_rerun_after_adding_files(games, tmp_path):
    root = tmp_path / "games"
    shutil.copytree(games, root)
    added = sorted(root.glob("*_games/*.csv"))[::3]  # 6 files, of every player count
    held = tmp_path / "held"
    for p in added:
        (held / p.parent.name).mkdir(parents=True, exist_ok=True)
        p.rename(held / p.parent.name / p.name)
    out, cache = tmp_path / "processed", tmp_path / "cache"
    assert counts(run(root, out, cache)) == (0, 12)
    for p in added:
        (held / p.parent.name / p.name).rename(p)
    assert counts(run(root, out, cache)) == (12, 6)
    got = saved(out)
    assert got == empty_cache_run(root, out, tmp_path)


def test_rerun_after_editing_a_file(root, tmp_path):
    out, cache = tmp_path / "processed", tmp_path / "cache"
    run(root, out, cache)
    edited = sorted(root.glob("3_games/*.csv"))[1]
    lines = edited.read_bytes().splitlines(keepends=True)
    edited.write_bytes(b"".join(lines[:-3]))  # the game's last three decisions gone
    summary = run(root, out, cache)
    assert counts(summary) == (17, 1)
    got = saved(out)
    assert got == empty_cache_run(root, out, tmp_path)


def test_rerun_after_removing_a_file(root, tmp_path):
    out, cache = tmp_path / "processed", tmp_path / "cache"
    run(root, out, cache)
    sorted(root.glob("4_games/*.csv"))[0].unlink()
    assert counts(run(root, out, cache)) == (17, 0)
    got = saved(out)
    assert got == empty_cache_run(root, out, tmp_path)


@pytest.mark.parametrize(
    "change",
    [{"enable_masking": False}, {"enable_feature_engineering": False}],
    ids=["masking-off", "features-off"],
)
def test_a_configuration_change_of_the_step_invalidates(root, tmp_path, change):
    out, cache = tmp_path / "processed", tmp_path / "cache"
    run(root, out, cache)
    assert counts(run(root, out, cache, **change)) == (0, 18)
    got = saved(out)
    assert got == empty_cache_run(root, out, tmp_path, **change)
    assert counts(run(root, out, cache)) == (18, 0)  # the first entries are still there


def test_reader_setting_is_part_of_the_key():
    base = validate_config({})
    other = validate_config({"reader": {"blind_reserve_base": 11}})
    assert rc.config_key(base) != rc.config_key(other)
    for change in ({"seed": 7}, {"preprocessing": {"strict": True, "num_workers": 3}},
                   {"data": {"train_ratio": 0.5, "val_ratio": 0.25, "test_ratio": 0.25}}):
        assert rc.config_key(validate_config(change)) == rc.config_key(base)


def test_a_configuration_change_after_the_step_does_not_invalidate(root, tmp_path):
    out, cache = tmp_path / "processed", tmp_path / "cache"
    run(root, out, cache)
    change = {"files_per_partition": 4}
    summary = run_preprocessing(
        {**pipeline_config(root, out, **change), "seed": 5,
         "data": {"data_root": str(root), "processed_dir": str(out), "train_ratio": 0.6,
                  "val_ratio": 0.2, "test_ratio": 0.2}},
        progress=False,
        cache_dir=cache,
    )
    assert counts(summary) == (18, 0)
    assert summary["cache"]["output_unchanged"] is False  # another dataset: assembled
    got = saved(out)
    fresh = tmp_path / "fresh"
    run_preprocessing(
        {**pipeline_config(root, out, **change), "seed": 5,
         "data": {"data_root": str(root), "processed_dir": str(out), "train_ratio": 0.6,
                  "val_ratio": 0.2, "test_ratio": 0.2}},
        progress=False,
        cache_dir=fresh,
    )
    assert got == saved(out)


def test_every_configuration_key_is_classified():
    """A new key must be put in RESULT_CONFIG_KEYS (it changes a file's result: part of
    the key) or OTHER_CONFIG_KEYS; this fails until it is."""
    result, other = set(rc.RESULT_CONFIG_KEYS), set(rc.OTHER_CONFIG_KEYS)
    assert not result & other
    assert result | other == set(_SCHEMA)


def test_cache_shared_by_the_workers_of_a_cluster(root, tmp_path, dask_scheduler_address):
    out, cache = tmp_path / "processed", tmp_path / "cache"
    settings = {"scheduler_address": dask_scheduler_address, "files_per_partition": 4}
    assert counts(run(root, out, cache, **settings)) == (0, 18)
    want = saved(out)
    reassemble(out)
    again = run(root, out, cache, **settings)
    assert again["num_workers"] == 2
    assert counts(again) == (18, 0)
    assert saved(out) == want
    run(root, out, cache)  # in one process, from the same cache (its config differs)
    assert {k: v for k, v in saved(out).items() if k != "stats.json"} == {
        k: v for k, v in want.items() if k != "stats.json"
    }


def test_driver_that_cannot_see_the_output_gets_the_rows_from_the_workers(
    root, tmp_path, dask_scheduler_address, monkeypatch
):
    """Workers that do not see the output: the driver writes, with the rows of a cached
    partition read by the workers from their cache (the driver may not see it)."""
    from imitation_learning.job import phases
    from imitation_learning.result_cache import MappedRows

    out, cache = tmp_path / "processed", tmp_path / "cache"
    settings = {"scheduler_address": dask_scheduler_address, "files_per_partition": 5}
    run(root, out, cache, **settings)
    want = saved(out)
    reassemble(out)
    monkeypatch.setattr(phases.OnCluster, "workers_see", lambda self, folder: False)
    monkeypatch.setattr(MappedRows, "load", lambda self: pytest.fail("mapped on the driver"))
    again = run(root, out, cache, **settings)
    assert counts(again) == (18, 0)
    assert saved(out) == want


# --------------------------------------------------------------------------- safety


def _entries(cache: Path) -> list[Path]:
    return sorted((cache / rc.ENTRIES).glob(f"*/*{rc.SUFFIX}"))


def test_damaged_and_truncated_entries_are_reported_and_recomputed(root, tmp_path):
    out, cache = tmp_path / "processed", tmp_path / "cache"
    run(root, out, cache)
    want = saved(out)
    flipped, cut, emptied = _entries(cache)[:3]
    data = bytearray(flipped.read_bytes())
    data[len(data) // 2] ^= 0x01
    flipped.write_bytes(bytes(data))
    cut.write_bytes(cut.read_bytes()[:-100])
    emptied.write_bytes(b"")
    reassemble(out)
    summary = run(root, out, cache)
    assert counts(summary) == (15, 3)
    damaged = summary["cache"]["damaged"]
    assert len(damaged) == 3
    assert any("checksum mismatch" in d for d in damaged)
    assert any("bad magic or truncated" in d for d in damaged)
    assert saved(out) == want
    reassemble(out)
    assert counts(run(root, out, cache)) == (18, 0)  # replaced by sound entries


def _piece(path: Path, cache: Path) -> rc.Piece:
    """``path``'s share of a partition, through the cache (stored on a miss)."""
    from imitation_learning.partition_rows import process_partition_rows

    cfg = validate_config({})
    process_partition_rows([str(path)], cfg, cache=rc.CacheSpec(str(cache), rc.config_key(cfg)))
    (entry,) = _entries(cache)
    return rc.read_entry(cache, entry.name[: -len(rc.SUFFIX)], str(path))


def test_entry_round_trip_is_exact_and_checked(games, tmp_path):
    from imitation_learning.partition_rows import process_partition_rows

    path = str(sorted(games.glob("4_games/*.csv"))[0])
    cfg = validate_config({})
    plain = process_partition_rows([path], cfg)
    piece = _piece(Path(path), tmp_path / "cache")
    assert isinstance(piece.X, rc.MappedRows)  # no file held open by a waiting partition
    piece.X = piece.X.load()
    assert piece.X.dtype == plain.X.dtype and piece.X.tobytes() == plain.X.tobytes()
    assert np.array_equal(piece.row_group, plain.row_group)
    for h in plain.labels:
        assert piece.labels[h].dtype == plain.labels[h].dtype
        assert np.array_equal(piece.labels[h], plain.labels[h])
        assert piece.masks[h].dtype == plain.masks[h].dtype
        assert np.array_equal(piece.masks[h], plain.masks[h])
    g = plain.summary.groups
    assert piece.group_mean.tobytes() == g.mean.tobytes()
    assert piece.group_m2.tobytes() == g.m2.tobytes()
    assert np.array_equal(piece.group_game_id, g.game_id)
    assert np.array_equal(piece.group_rows, g.rows)
    assert piece.rows_read == plain.summary.rows_read and piece.file_ok

    data = b"".join(bytes(b) for b in rc.encode(piece, "k" * 64))
    assert rc.decode(data, path, "k" * 64).X.tobytes() == piece.X.tobytes()
    (entry,) = _entries(tmp_path / "cache")
    real_key = entry.name[: -len(rc.SUFFIX)]
    assert b"".join(bytes(b) for b in rc.encode(piece, real_key)) == entry.read_bytes()
    assert rc.decode(data, path, "k" * 64).X.tobytes() == piece.X.tobytes()
    with pytest.raises(rc.DamagedEntry, match="another key"):
        rc.decode(data, path, "j" * 64)
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0x10
    for bad in (data[:-1], data[:10], b"", bytes(flipped), data[:-4] + bytes(4)):
        with pytest.raises(rc.DamagedEntry):
            rc.decode(bad, path, "k" * 64)


def test_writes_are_atomic_and_leave_nothing_when_they_fail(tmp_path, monkeypatch):
    rc.write_entry(tmp_path, "ab" * 32, b"first")
    final = rc.entry_path(tmp_path, "ab" * 32)
    assert final.read_bytes() == b"first"

    class Boom(OSError):
        pass

    def failing_replace(src, dst):
        raise Boom("disk full")

    monkeypatch.setattr(entries.os, "replace", failing_replace)
    with pytest.raises(Boom):
        rc.write_entry(tmp_path, "ab" * 32, b"second, never seen")
    assert final.read_bytes() == b"first"  # the old entry whole, no temporary left
    assert sorted(p.name for p in final.parent.iterdir()) == [final.name]


def test_a_failed_write_does_not_fail_the_run(root, tmp_path, monkeypatch):
    def no_space(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(lookup, "write_entry", no_space)  # as the lookup calls it
    summary = run(root, tmp_path / "processed", tmp_path / "cache")
    assert counts(summary) == (0, 18)
    assert summary["cache"]["not_stored"] == 18


def test_rejected_files_are_cached_with_their_rejections(tmp_path):
    root = tmp_path / "bad"
    shutil.copytree(CORPUS_ROOT, root)
    make_runtime_entries(root)
    out, cache = tmp_path / "processed", tmp_path / "cache"
    first = run(root, out, cache)
    assert first["files_rejected"] > 0 and first["rejections"]
    want = saved(out)
    again = run(root, out, cache)
    # every file but the directory named x.csv (it cannot be read, hence hashed)
    files = first["files"]
    assert counts(again) == (files - 1, 1)
    assert again["rejections"] == first["rejections"]
    assert saved(out) == want


def test_entries_replaced_or_removed_before_the_writes(games, tmp_path):
    """A partition from the cache maps its rows when they are written; an entry replaced
    (even by the same bytes) or removed meanwhile is not trusted: the partition's rows are
    made again from the files, the same bits."""
    from imitation_learning.partition_rows import process_partition_rows

    paths = [str(p) for p in sorted(games.glob("*_games/*.csv"))[:5]]
    cfg = validate_config({})
    spec = rc.CacheSpec(str(tmp_path / "cache"), rc.config_key(cfg))
    want = process_partition_rows(paths, cfg).X.tobytes()
    process_partition_rows(paths, cfg, cache=spec)  # stored
    rows = process_partition_rows(paths, cfg, cache=spec)
    assert rows.summary.cache.cached == 5 and rows.X is None
    assert rows.load_x().tobytes() == want
    entry = _entries(tmp_path / "cache")[2]
    data = entry.read_bytes()
    entry.unlink()
    entry.write_bytes(data)  # a new file: another inode
    assert rows.load_x().tobytes() == want
    shutil.rmtree(tmp_path / "cache")
    assert rows.load_x().tobytes() == want


def test_a_renamed_copy_hits_the_entry_and_its_report_names_the_new_path(tmp_path):
    from imitation_learning.partition_rows import process_partition_rows

    bad = next(p for p in sorted(CORPUS_ROOT.glob("*_games/*.csv")) if p.name == "910003.csv")
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    shutil.copy(bad, a)
    shutil.copy(bad, b)
    cfg = validate_config({})
    spec = rc.CacheSpec(str(tmp_path / "cache"), rc.config_key(cfg))
    first = process_partition_rows([str(a)], cfg, cache=spec).summary
    second = process_partition_rows([str(b)], cfg, cache=spec).summary
    assert (first.cache.processed, second.cache.cached) == (1, 1)
    assert first.rejections and [r.file for r in second.rejections] == [str(b)]
    assert [r.reason for r in second.rejections] == [r.reason for r in first.rejections]
    assert second.file_index[0][0] == str(b) and second.files_ok == [str(b)]
    strict = validate_config({"preprocessing": {"strict": True}})
    with pytest.raises(StrictModeError):  # a cached rejection stops a strict run too
        process_partition_rows([str(b)], strict, cache=spec)


# --------------------------------------------------------------------------- the version


def test_version_covers_the_import_graph_of_the_step():
    modules = rc.step_modules()
    for name in ("imitation_learning.per_file.file_processing",
                 "imitation_learning.per_file.masks", "imitation_learning.per_file.labels",
                 "imitation_learning.per_file.features", "imitation_learning.per_file.compaction",
                 "imitation_learning.per_file.results", "imitation_learning.result_cache",
                 "splendor.log_reader", "splendor.columns", "splendor.errors",
                 "imitation_learning", "imitation_learning.per_file", "splendor"):
        assert name in modules, name
    # every per-file module the step imports; nothing of the job around it
    assert not [m for m in modules if m.startswith("imitation_learning.job")]
    assert len(rc.step_version()) == 64


def test_version_changes_with_any_source_byte(tmp_path):
    modules = rc.step_modules()
    copies = {}
    for name, path in modules.items():
        copies[name] = tmp_path / f"{name}.py"
        shutil.copy(path, copies[name])
    before = rc.version_of(copies)
    assert rc.version_of(copies) == before
    edited = copies["splendor.log_reader"]
    edited.write_bytes(edited.read_bytes() + b"\n# a comment changes the version too\n")
    assert rc.version_of(copies) != before


# --------------------------------------------------------------------------- command line


def _argv(root: Path, out: Path, *extra: str) -> list[str]:
    return ["preprocess", "--config", "/dev/null", "--data-root", str(root), "--output",
            str(out), "--num-workers", "1", "--no-progress", *extra]


def test_cli_cache_beside_the_output_and_its_summary(root, tmp_path, capsys):
    out = tmp_path / "processed"
    assert main(_argv(root, out)) == 0
    assert "cache:          0 files from the cache, 18 processed" in capsys.readouterr().out
    assert (tmp_path / "processed.cache" / rc.ENTRIES).is_dir()
    assert main(_argv(root, out)) == 0
    printed = capsys.readouterr().out
    assert "18 files, configuration and code unchanged since the output was saved" in printed
    assert "workers:" not in printed  # none ran
    (out / "stats.json").touch()
    assert main(_argv(root, out)) == 0
    printed = capsys.readouterr().out
    assert "cache:          18 files from the cache, 0 processed; 18 entries" in printed
    assert main(_argv(root, out, "--no-cache")) == 0
    assert "cache:" not in capsys.readouterr().out

    other = tmp_path / "elsewhere"
    assert main(_argv(root, out, "--cache-dir", str(other))) == 0
    assert "0 files from the cache, 18 processed" in capsys.readouterr().out

    assert main(["cache", "info", "--config", "/dev/null", "--output", str(out)]) == 0
    assert "18 entries" in capsys.readouterr().out
    sorted(root.glob("2_games/*.csv"))[0].unlink()
    assert main(["cache", "prune", "--config", "/dev/null", "--data-root", str(root),
                 "--output", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "kept 17 entries" in printed and "removed 1 " in printed
    assert len(_entries(tmp_path / "processed.cache")) == 17
    assert main(_argv(root, out)) == 0
    assert "17 files from the cache, 0 processed" in capsys.readouterr().out

    # the record of an output folder that is gone goes with the next prune
    records = tmp_path / "processed.cache" / "outputs"
    assert len(list(records.glob("*.json"))) == 1
    shutil.rmtree(out)
    assert main(["cache", "prune", "--config", "/dev/null", "--data-root", str(root),
                 "--output", str(out)]) == 0
    assert "the records of 1 output folders that are gone" in capsys.readouterr().out
    assert not list(records.glob("*.json"))


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--no-cache", "--cache-dir", "x"], "not allowed with argument"),
        (["--cache-dir", "{out}/c"], "inside the output folder"),
        (["--cache-dir", "{file}"], "is a file"),
    ],
)
def test_cli_cache_usage_errors_exit_2(root, tmp_path, capsys, extra, message):
    out = tmp_path / "processed"
    (tmp_path / "a-file").write_text("")
    extra = [e.format(out=out, file=tmp_path / "a-file") for e in extra]
    with pytest.raises(SystemExit) if extra[0] == "--no-cache" else _no_exit() as done:
        code = main(_argv(root, out, *extra))
    if extra[0] == "--no-cache":
        assert done.value.code == 2
    else:
        assert code == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


class _no_exit:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


# --------------------------------------------------------------------------- benchmark


def test_cache_benchmark_runs_on_a_few_games(tmp_path, capsys):
    """``bench.cache_rerun`` end to end on 9 games, one worker: its four runs, their cache
    lines and the sizes (no figure asserted)."""
    import sys

    repo = Path(__file__).resolve().parents[1]
    if str(repo) not in sys.path:
        sys.path.insert(0, str(repo))
    from bench import cache_rerun

    out = tmp_path / "figures.json"
    cache_rerun.main(["--games", "9", "--workers", "1", "--added", "0.2", "--cache-dir",
                      str(tmp_path / "datasets"), "--work-dir", str(tmp_path / "work"),
                      "--json", str(out)])
    figures = json.loads(out.read_text())
    runs = {r["run"]: r for r in figures["runs"]}
    assert list(runs) == ["first (empty cache)", "unchanged", "unchanged, reassembled",
                          "+2 games (20%)"]
    assert "0 files from the cache, 9 processed" in runs["first (empty cache)"]["cache_line"]
    assert "left as it is" in runs["unchanged"]["cache_line"]
    assert "9 files from the cache, 0 processed" in runs["unchanged, reassembled"]["cache_line"]
    assert "9 files from the cache, 2 processed" in runs["+2 games (20%)"]["cache_line"]
    assert runs["+2 games (20%)"]["rows_read"] > runs["first (empty cache)"]["rows_read"]
    assert figures["cache_bytes"] > 0 and figures["dataset_bytes"] > 0
    assert "targets:" in capsys.readouterr().out


def test_rows_of_x_are_stored_as_int8_only_when_exact():
    """An entry keeps X's rows as int8 when every value survives the round trip bit for
    bit, else as float32; either way they read back as the same float32 bytes."""
    exact = np.array([[0, 1, -1, 127, -128, 3]], dtype=np.float32)
    assert rc.compact_rows(exact).dtype == np.int8
    for inexact in (0.5, 128.0, -129.0, -0.0, np.nan, np.inf):
        X = exact.copy()
        X[0, 2] = inexact
        assert rc.compact_rows(X).dtype == np.float32, inexact
        assert rc.as_float32(rc.compact_rows(X)).tobytes() == X.tobytes()
    assert rc.as_float32(rc.compact_rows(exact)).tobytes() == exact.tobytes()


def _run_in_child(root: str, out: str, cache: str) -> dict:
    """One run in its own process (what a second command sharing the cache is)."""
    summary = run(Path(root), Path(out), Path(cache))
    return summary["cache"]


def test_two_runs_sharing_a_cache_at_once_save_what_an_empty_cache_saves(root, tmp_path):
    """Two processes run on one cache at the same time, twice: first both find it empty
    and write the same entries over each other, then half the entries are gone and each
    reads some while the other writes them again. Every output is the bytes of a run
    without a cache, no temporary file is left and each file has one entry."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    outs = [tmp_path / "out-a", tmp_path / "out-b"]
    expected = []
    for out in outs:
        run(root, out, None)
        expected.append(saved(out))
        shutil.rmtree(out)
    cache = tmp_path / "shared-cache"
    files = len(list(root.glob("*_games/*.csv")))
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        for round_ in range(2):
            if round_:
                for entry in _entries(cache)[::2]:
                    entry.unlink()
            for out in outs:
                shutil.rmtree(out, ignore_errors=True)
            jobs = [pool.submit(_run_in_child, str(root), str(o), str(cache)) for o in outs]
            figures = [job.result(timeout=300) for job in jobs]
            for out, want, got in zip(outs, expected, figures, strict=True):
                assert saved(out) == want
                assert got["files_cached"] + got["files_processed"] == files
                assert not got["damaged"]
            assert len(_entries(cache)) == files
            assert not list(cache.rglob("*.tmp-*"))


def test_a_run_hashes_each_cached_file_once(root, tmp_path, monkeypatch):
    """The driver's hashes (for the run's key) serve the partitions' lookups too: a re-run
    from the cache reads each file's bytes once, not once more on the worker."""
    from imitation_learning.result_cache import keys

    out, cache = tmp_path / "processed", tmp_path / "cache"
    run(root, out, cache)
    reassemble(out)
    hashed: list[str] = []
    real = keys.content_hash

    def counting(path):
        hashed.append(path)
        return real(path)

    monkeypatch.setattr(keys, "content_hash", counting)  # the driver's (hash_files)
    monkeypatch.setattr(lookup, "content_hash", counting)  # the partitions'
    assert counts(run(root, out, cache)) == (18, 0)
    assert sorted(hashed) == sorted(str(p) for p in root.glob("*_games/*.csv"))


# --------------------------------------------------------------------------- small re-runs


def test_a_small_rerun_runs_in_this_process_and_saves_the_same_bytes(
    root, tmp_path, monkeypatch, capsys
):
    """With few files to process, a re-run asked for 2 workers starts no cluster: it runs
    in this process, phase 2 on 2 threads, and saves what an empty cache saves."""
    from imitation_learning.job import build, executors

    out, cache = tmp_path / "processed", tmp_path / "cache"
    run(root, out, cache)
    edited = sorted(root.glob("2_games/*.csv"))[2]
    edited.write_bytes(b"".join(edited.read_bytes().splitlines(keepends=True)[:-2]))

    def no_cluster(*args, **kwargs):
        raise AssertionError("a small re-run started a cluster")

    monkeypatch.setattr(executors, "pool_client", no_cluster)
    monkeypatch.setattr(build, "SMALL_RERUN_SHARE", 0.1)  # 1 file of 18 to process
    summary = run(root, out, cache, num_workers=2)
    assert counts(summary) == (17, 1)
    assert summary["num_workers"] == 2 and summary["dashboard_link"] is None
    assert summary["in_process"] is True
    assert "workers:        2 (in this process, no cluster)" in format_summary(summary)
    assert summary["timings"]["cluster_start_s"] == 0.0
    said = "17 of 18 files in the result cache, 1 to process: run in this process (2 threads)"
    assert said in capsys.readouterr().err
    got = saved(out)
    monkeypatch.undo()
    want = empty_cache_run(root, out, tmp_path)  # in process too: one worker
    for stats in (got["stats.json"], want["stats.json"]):
        stats["config"]["preprocessing"].pop("num_workers")
    assert got == want


def test_which_reruns_run_in_this_process(tmp_path):
    """In this process when the files to process are at most SMALL_RERUN_SHARE of them;
    never with a scheduler address, a performance report, no cache, or when the run is in
    this process anyway (one worker, one file)."""
    from imitation_learning.job.build import SMALL_RERUN_SHARE, threads_for_small_rerun

    class Spec:
        def __init__(self, fresh: int):
            self.fresh = fresh

        def missing(self, paths):
            return list(paths)[: self.fresh]

    paths = [f"g{i}.csv" for i in range(100)]
    small, large = int(SMALL_RERUN_SHARE * 100), int(SMALL_RERUN_SHARE * 100) + 1
    prep = None  # no performance report
    assert threads_for_small_rerun(paths, Spec(0), 2, None, prep) == 2
    assert threads_for_small_rerun(paths, Spec(small), 3, None, prep) == 3
    assert threads_for_small_rerun(paths, Spec(large), 2, None, prep) == 0
    assert threads_for_small_rerun(paths, None, 2, None, prep) == 0
    assert threads_for_small_rerun(paths, Spec(0), 2, "tcp://10.0.0.1:8786", prep) == 0
    assert threads_for_small_rerun(paths, Spec(0), 2, None, "r.html") == 0
    assert threads_for_small_rerun(paths, Spec(0), 1, None, prep) == 0
    assert threads_for_small_rerun(paths[:1], Spec(0), 2, None, prep) == 0


def test_floor_benchmark_runs_on_a_few_games(tmp_path, capsys):
    """``bench.rerun_floor`` end to end on 6 games, one worker, each part once: every part
    measured, the floor their sum (no figure asserted)."""
    import sys

    repo = Path(__file__).resolve().parents[1]
    if str(repo) not in sys.path:
        sys.path.insert(0, str(repo))
    from bench import rerun_floor

    out = tmp_path / "floor.json"
    rerun_floor.main(["--games", "6", "--workers", "1", "--repeat", "1", "--cache-dir",
                      str(tmp_path / "datasets"), "--json", str(out)])
    f = json.loads(out.read_text())
    parts = ("start_s", "hashing_s", "reading_s", "writing_1_threads_s", "writing_2_threads_s",
             "replacing_s", "first_run_s")
    assert all(f[p] > 0 for p in parts)
    assert f["files"] == 6 and f["x_bytes"] > 0
    assert f["floor_s"] == pytest.approx(f["start_s"] + f["hashing_s"] + f["reading_s"] / 2
                                         + f["writing_2_threads_s"] + f["replacing_s"])
    assert "floor on two cores" in capsys.readouterr().out


def test_a_small_rerun_that_fails_in_its_writes_leaves_the_output_as_it_was(
    root, tmp_path, monkeypatch
):
    """A write of phase 2 failing on its thread fails the run: the output saved before is
    left whole, and nothing of the failed save remains beside it."""
    from imitation_learning.job import executors, phases

    out, cache = tmp_path / "processed", tmp_path / "cache"
    run(root, out, cache)
    before = saved(out)
    reassemble(out)
    calls = []
    real = phases.write_x_rows

    def failing(rows, *args):
        calls.append(1)
        if len(calls) == 2:
            raise OSError("disk gone")
        return real(rows, *args)

    def no_cluster(*args, **kwargs):
        raise AssertionError("a small re-run started a cluster")

    monkeypatch.setattr(phases, "write_x_rows", failing)
    monkeypatch.setattr(executors, "pool_client", no_cluster)
    with pytest.raises(OSError, match="disk gone"):
        run(root, out, cache, num_workers=2, files_per_partition=2)
    assert len(calls) >= 2
    assert saved(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "games", "processed"]
