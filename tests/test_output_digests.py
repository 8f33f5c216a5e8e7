"""The job's output, byte for byte, against digests stored before the job was restructured.

``tests/data/output_digests.json`` holds the SHA-256 of every file ``splendor-il
preprocess`` saves (``stats.json`` aside: it carries timings) and of the four in-memory
outputs of ``process_files_parallel``, for the bundled games, the older exporter's games of
``tests/data/legacy-logs`` and 30 self-play games written in the legacy dialect. Any change
of the saved bytes, whatever the number of workers or the executor, fails here; a change
that is meant (a new format, the scaler's last bits) rewrites the stored digests in a commit
of its own that says why: ``uv run python tests/test_output_digests.py --write``.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from game_data import LEGACY_LOGS  # noqa: E402

DIGESTS = Path(__file__).resolve().parent / "data" / "output_digests.json"


def _legacy_dialect_games(folder: Path) -> Path:
    from splendor.simulate import simulate

    root = folder / "legacy-dialect"
    if not root.exists():
        simulate(30, players=(2, 3, 4), agent="greedy", seed=5, out=root, progress=False,
                 dialect="legacy")
    return root


def data_sets(folder: Path) -> dict[str, tuple[Path, int]]:
    """name -> (data root, blind_reserve_base of its dialect)."""
    return {
        "bundled": (REPO_ROOT / "data" / "games", 12),
        "legacy-fixtures": (LEGACY_LOGS, 11),
        "legacy-dialect-30": (_legacy_dialect_games(folder), 11),
    }


def saved_digests(folder: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.iterdir())
        if p.name != "stats.json"
    }


def _array_digest(arr: np.ndarray) -> str:
    h = hashlib.sha256(f"{arr.dtype.str}{arr.shape}".encode())
    if arr.dtype == object:  # strings (categories): their text, not their addresses
        h.update("\0".join(map(str, arr)).encode())
    else:
        h.update(memoryview(np.ascontiguousarray(arr)).cast("B"))
    return h.hexdigest()


def in_memory_digests(root: Path, base: int, num_workers: int, address: str | None) -> dict:
    from imitation_learning.parallel_processor import discover_csv_files, process_files_parallel

    config = {"reader": {"blind_reserve_base": base},
              "preprocessing": {"scheduler_address": address, "dashboard_address": None}}
    df, features, labels, masks = process_files_parallel(
        discover_csv_files(root), config, num_workers
    )
    out = {"features": _array_digest(np.asarray(features))}
    for column in df.columns:
        out[f"df.{column}"] = _array_digest(df[column].to_numpy())
    for head in sorted(labels):
        out[f"labels.{head}"] = _array_digest(np.asarray(labels[head]))
        out[f"masks.{head}"] = _array_digest(np.asarray(masks[head]))
    return out


def saved_run(root: Path, base: int, out: Path, argv_extra: list[str]) -> dict[str, str]:
    from splendor_il.cli import main

    config = out.parent / f"{out.name}.yaml"
    config.write_text(f"reader:\n  blind_reserve_base: {base}\n")
    argv = ["preprocess", "--config", str(config), "--data-root", str(root), "--output",
            str(out), "--no-cache", "--no-progress", "--dashboard-address", "127.0.0.1:0",
            *argv_extra]
    assert main(argv) == 0
    return saved_digests(out)


@pytest.fixture(scope="module")
def stored() -> dict:
    return json.loads(DIGESTS.read_text())


@pytest.mark.parametrize("name", ["bundled", "legacy-fixtures", "legacy-dialect-30"])
def test_saved_dataset_matches_stored_digests(name, stored, tmp_path_factory,
                                              dask_scheduler_address):
    root, base = data_sets(tmp_path_factory.getbasetemp())[name]
    tmp = tmp_path_factory.mktemp(f"digests-{name}")
    in_process = saved_run(root, base, tmp / "one", ["--num-workers", "1"])
    on_cluster = saved_run(root, base, tmp / "two",
                           ["--scheduler-address", dask_scheduler_address])
    assert in_process == stored[name]["saved"]
    assert on_cluster == stored[name]["saved"]


@pytest.mark.parametrize("name", ["bundled", "legacy-dialect-30"])
def test_in_memory_outputs_match_stored_digests(name, stored, tmp_path_factory,
                                                dask_scheduler_address):
    root, base = data_sets(tmp_path_factory.getbasetemp())[name]
    assert in_memory_digests(root, base, 1, None) == stored[name]["in_memory"]
    assert in_memory_digests(root, base, 2, dask_scheduler_address) == stored[name]["in_memory"]


if __name__ == "__main__" and "--write" in sys.argv:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        result = {}
        for name, (root, base) in data_sets(tmp).items():
            result[name] = {"saved": saved_run(root, base, tmp / f"{name}-out", ["--num-workers", "1"])}
            if name != "legacy-fixtures":
                result[name]["in_memory"] = in_memory_digests(root, base, 1, None)
        DIGESTS.write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
        print(f"wrote {DIGESTS}")
