"""The job's Dask bag (one task a partition, keyed by the bag's name), the bag of per-file
results offered to Python users, and the plan between the phases (a pure function)."""

from __future__ import annotations

from pathlib import Path

import dask
import numpy as np
import pandas as pd
import pytest

from imitation_learning.dataset.splits import SPLITS
from imitation_learning.job import (
    discover_csv_files,
    file_results_bag,
    files_bag,
    partition_sizes,
    process_single_file,
    processed_bag,
)
from imitation_learning.job.bag import PROCESS_TASK, PROCESS_TOKEN, partition_tasks
from imitation_learning.job.plan import fit_scaler_here, plan_assembly
from imitation_learning.partition_rows import GameGroups, PartitionSummary

REPO_ROOT = Path(__file__).resolve().parents[1]
GAMES = REPO_ROOT / "data" / "games"


def lengths(paths):
    return [len(p) for p in paths]


# --------------------------------------------------------------------------- the bag


def test_files_bag_keeps_the_job_partitions():
    paths = [f"{i}.csv" for i in range(10)]
    bag = files_bag(paths, [4, 1, 5])
    assert bag.npartitions == 3
    assert [len(part) for part in dask.compute(*bag.to_delayed(), scheduler="sync")] == [4, 1, 5]
    assert bag.compute(scheduler="sync") == paths
    with pytest.raises(ValueError, match="cover 9 files"):
        files_bag(paths, [4, 5])


def test_one_task_per_partition_no_alias():
    """The optimised graph of the processed bag, as the job submits it: one task a
    partition, no dependency, its key carrying the bag's name."""
    paths = [f"{i}.csv" for i in range(7)]
    bag = processed_bag(files_bag(paths, [3, 1, 3]), lengths)
    graph, keys = partition_tasks(bag)
    assert len(graph) == len(keys) == 3
    assert all(k[0].endswith(bag.name) and PROCESS_TOKEN in k[0] for k in keys)
    assert {dask.utils.key_split(k) for k in keys} == {PROCESS_TASK}
    assert [k[1] for k in keys] == [0, 1, 2]
    results = dask.get(graph, keys)
    assert [list(r) for r in results] == [[[5, 5, 5]], [[5]], [[5, 5, 5]]]  # len("0.csv")


def test_file_results_bag_is_one_element_per_file(dask_scheduler_address):
    """One element a file, in path order, each the file's own outputs (those of
    ``process_single_file``), whatever the partitioning; ``persist`` on a cluster, then
    ``filter``, ``pluck`` and ``to_dataframe``."""
    from distributed import Client

    paths = discover_csv_files(GAMES, max_games=12)
    bag = file_results_bag(paths, npartitions=2)
    assert bag.npartitions == len(partition_sizes(len(paths), 2))
    with Client(dask_scheduler_address) as client:  # the default scheduler in the block
        kept = client.persist(bag)
        elements = client.compute(kept).result()
        rows_read = client.compute(kept.pluck("rows_read").sum()).result()
        clean = kept.filter(lambda r: not r["rejections"]).pluck("path")
        clean_paths = client.compute(clean).result()
        frame = client.compute(
            kept.map(lambda r: {"file": r["path"], "rows": len(r["df"])}).to_dataframe()
        ).result()
    assert [e["path"] for e in elements] == paths
    assert isinstance(frame, pd.DataFrame) and frame["file"].tolist() == paths
    assert rows_read == sum(e["rows_read"] for e in elements)
    assert clean_paths == [e["path"] for e in elements if not e["rejections"]]
    for element in elements[:4]:
        df, features, labels, masks = process_single_file(element["path"], {})
        pd.testing.assert_frame_equal(element["df"], df.reset_index(drop=True), check_like=False)
        np.testing.assert_array_equal(element["features"], features)
        for head in labels:
            np.testing.assert_array_equal(element["labels"][head], labels[head])
            np.testing.assert_array_equal(element["masks"][head], masks[head])
        assert [r.to_dict() for r in element["rejections"]] == df.attrs["rejections"]
        assert element["rows_read"] == df.attrs["rows_read"]


# --------------------------------------------------------------------------- the plan


def summary(files: list[tuple[str, list[tuple[int, int, float]]]], width: int = 2):
    """A partition's summary: per file, its games as (game id, rows, value) where every
    row of the game holds ``value`` in both continuous columns (2 players)."""
    index, ids, rows, means, file_of = [], [], [], [], []
    for position, (path, games) in enumerate(files):
        kept = sum(n for _, n, _ in games)
        index.append((path, kept, kept, [g for g, _, _ in games]))
        for game_id, n, value in games:
            file_of.append(position)
            ids.append(game_id)
            rows.append([n, 0, 0])
            means.append([value] * width)
    groups = GameGroups(
        file=np.asarray(file_of, dtype=np.int64),
        game_id=np.asarray(ids, dtype=np.int64),
        rows=np.asarray(rows, dtype=np.int64).reshape(-1, 3),
        mean=np.asarray(means, dtype=np.float64).reshape(-1, width),
        m2=np.zeros((len(ids), width)),
    )
    total = sum(entry[2] for entry in index)
    return PartitionSummary(index, [], total, [f for f, _ in files], total, width, 0, groups)


def test_plan_assembly_is_pure_and_independent_of_the_partitioning():
    files = [(f"{g}.csv", [(g, 3 + g % 4, float(g))]) for g in range(1, 21)]
    paths = [f for f, _ in files]
    copy = ("zz.csv", [(5, 9, 99.0)])  # game 5 again, in a later file: left out whole
    ratios, seed, cont = (0.6, 0.2, 0.2), 7, np.arange(2)

    def plan(cuts):
        parts = [files[a:b] for a, b in zip([0, *cuts], [*cuts, len(files)], strict=True)]
        parts[-1] = parts[-1] + [copy]
        summaries = [summary(p) for p in parts]
        done = plan_assembly(summaries, [*paths, copy[0]], ratios, seed, 2, cont)
        assert done.scaler is None  # fitted where the statistics are, by the tree
        done.scaler = fit_scaler_here(
            done, lambda p, groups, positions: summaries[p].groups.leaves(groups, positions)
        )
        return done

    one, three = plan([]), plan([7, 13])
    again = plan([7, 13])
    assert again.split_rows == three.split_rows and again.first_row == three.first_row

    (dup,) = one.rejections
    assert dup.file == "zz.csv" and dup.file_level and "same game_id 5" in dup.reason
    assert one.rows_read == three.rows_read == sum(3 + g % 4 for g in range(1, 21)) + 9
    assert one.rows_kept == one.rows_read - 9
    assert one.split_rows == three.split_rows and sum(one.split_rows.values()) == one.rows_kept
    assert one.splits == three.splits
    np.testing.assert_array_equal(one.scaler.mean, three.scaler.mean)
    np.testing.assert_array_equal(one.scaler.scale, three.scaler.scale)

    # offsets: each partition's rows of a split follow the previous partitions' rows
    for i, split in enumerate(SPLITS):
        expect = 0
        for p, groups in enumerate(three.group_split):
            assert three.first_row[p][split] == expect
            s = [summary(x) for x in ([files[:7], files[7:13], files[13:] + [copy]])][p]
            expect += int(s.groups.rows.sum(axis=1)[groups == i].sum())
        assert expect == three.split_rows[split]
    assert (three.group_split[-1][-1]) == -1  # the duplicate's game: in no split

    # the scaler: the train games' rows, whatever the partitioning
    train_ids = {int(g) for p, s in enumerate([summary(x) for x in (files[:7], files[7:13],
                                                                  files[13:] + [copy])])
                 for g, k in zip(s.groups.game_id, three.group_split[p], strict=True) if k == 0}
    values = np.concatenate([np.full(3 + g % 4, float(g)) for g in sorted(train_ids)])
    np.testing.assert_allclose(three.scaler.mean, [values.mean()] * 2, rtol=1e-12)
    np.testing.assert_allclose(three.scaler.scale, [values.std()] * 2, rtol=1e-12)


def test_plan_assembly_checks_the_accounting():
    files = [("a.csv", [(1, 4, 1.0)])]
    with pytest.raises(AssertionError, match="file accounting"):
        plan_assembly([summary(files)], ["a.csv", "b.csv"], (0.8, 0.1, 0.1), 1, 2, np.arange(2))
