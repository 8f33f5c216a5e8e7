"""The figures of ``stats.json``: rows and games per split, labels, masks, provenance.

This module owns the statistics a dataset records about itself: rows and games per split
and player count with each split's game ids (:func:`split_stats`), label distributions and
mask statistics per head (:func:`head_stats`, :func:`dataset_stats`), the provenance
of a run (:func:`package_versions`, :func:`file_sizes` of the inputs), and the short
summary that training code reads (:func:`training_summary`, ``preprocessing_stats.json``).
"""

from __future__ import annotations

import os
import platform
from collections.abc import Iterable, Mapping
from importlib import metadata

import numpy as np

from imitation_learning.dataset.splits import SPLITS
from splendor import columns as C
from splendor.limits import PLAYER_COUNTS


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for pkg in ("numpy", "pandas", "dask", "distributed"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = "not installed"
    return versions


def file_sizes(paths: Iterable[str]) -> list[dict]:
    out = []
    for p in paths:
        try:
            size = os.path.getsize(p)
        except OSError:
            try:
                import fsspec

                fs, path = fsspec.core.url_to_fs(p)
                size = fs.size(path)
            except Exception:  # noqa: BLE001 - a size we cannot get is recorded as None
                size = None
        out.append({"path": str(p), "bytes": size})
    return out


def split_stats(
    game_split: np.ndarray, game_rows_by_players: np.ndarray, game_ids: np.ndarray
) -> dict[str, dict]:
    """Rows and games per split and player count, from per-game figures: ``game_split``
    (the split index of each game, in :data:`SPLITS` order), ``game_rows_by_players``
    ((games, 3) rows of each game with 2, 3 and 4 players) and ``game_ids``. A game counts
    in a split (and a player count) when it has rows there. Each split lists its games'
    sorted ids, so that ``splendor-il check`` can prove no game is in two splits."""
    game_split = np.asarray(game_split)
    game_ids = np.asarray(game_ids)
    rows = np.asarray(game_rows_by_players, dtype=np.int64).reshape(len(game_split), -1)
    splits: dict[str, dict] = {}
    for i, split in enumerate(SPLITS):
        sel = rows[game_split == i]
        present = sel.sum(axis=1) > 0
        splits[split] = {
            "rows": int(sel.sum()),
            "games": int(np.count_nonzero(present)),
            "by_num_players": {
                str(n): {"rows": int(sel[:, j].sum()), "games": int(np.count_nonzero(sel[:, j]))}
                for j, n in enumerate(PLAYER_COUNTS)
            },
            "game_ids": np.sort(game_ids[game_split == i][present]).tolist(),
        }
    return splits


def head_stats(
    labels: Mapping[str, np.ndarray], masks: Mapping[str, np.ndarray]
) -> tuple[dict, dict]:
    """Label distributions and mask statistics of one split's rows, head by head."""
    return head_stats_of_partials([head_partials(labels, masks)])


def head_partials(labels: Mapping[str, np.ndarray], masks: Mapping[str, np.ndarray]) -> dict:
    """Exact partial figures (integers) of some of a split's rows, head by head: summed over
    consecutive blocks of rows by :func:`head_stats_of_partials`, they give :func:`head_stats`
    of all the rows, the same figures however the rows were cut."""
    out = {}
    for head, n_classes in C.HEADS.items():
        lab = np.asarray(labels[head]).astype(np.int64)
        m = np.asarray(masks[head])
        legal = m.sum(axis=1, dtype=np.int64)
        out[head] = {
            "rows": len(legal),
            "labels": np.bincount(lab + 1, minlength=n_classes + 1),
            "legal": int(legal.sum()),
            "min": int(legal.min()) if len(legal) else None,
            "max": int(legal.max()) if len(legal) else None,
            "per_class": m.sum(axis=0, dtype=np.int64) if len(m) else np.zeros(n_classes, np.int64),
        }
    return out


def head_stats_of_partials(partials) -> tuple[dict, dict]:
    """:func:`head_stats` from the :func:`head_partials` of blocks of a split's rows."""
    partials = list(partials)
    label_counts: dict[str, dict] = {}
    mask_stats: dict[str, dict] = {}
    for head, n_classes in C.HEADS.items():
        parts = [p[head] for p in partials]
        rows = sum(p["rows"] for p in parts)
        width = max([n_classes + 1, *(len(p["labels"]) for p in parts)])
        counts = np.zeros(width, dtype=np.int64)
        per_class = np.zeros(n_classes, dtype=np.int64)
        for p in parts:
            counts[: len(p["labels"])] += p["labels"]
            per_class += p["per_class"]
        label_counts[head] = {"not_applicable": int(counts[0]), "classes": counts[1:].tolist()}
        lows = [p["min"] for p in parts if p["rows"]]
        highs = [p["max"] for p in parts if p["rows"]]
        # an integer total over a count: the bits of numpy's mean of the integers
        mask_stats[head] = {
            "mean_legal_classes": float(np.float64(sum(p["legal"] for p in parts)) / rows)
            if rows else 0.0,
            "min_legal_classes": min(lows) if lows else 0,
            "max_legal_classes": max(highs) if highs else 0,
            "legal_rate_per_class": (
                (per_class / rows).round(6).tolist() if rows else [0.0] * n_classes
            ),
        }
    return label_counts, mask_stats


def _rows_by_players(
    game_ids: np.ndarray, num_players: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(unique game ids, (games, 3) rows of each with 2, 3 and 4 players)."""
    unique, inverse = np.unique(np.asarray(game_ids), return_inverse=True)
    rows = np.zeros((len(unique), len(PLAYER_COUNTS)), dtype=np.int64)
    num_players = np.asarray(num_players).astype(np.int64)
    for j, n in enumerate(PLAYER_COUNTS):
        rows[:, j] = np.bincount(inverse[num_players == n], minlength=len(unique))
    return unique, rows


def dataset_stats(
    split_masks: Mapping[str, np.ndarray],
    game_ids: np.ndarray,
    num_players: np.ndarray,
    labels: Mapping[str, np.ndarray],
    masks: Mapping[str, np.ndarray],
) -> dict:
    """Counts and game ids per split, counts per player count, label distributions and mask
    statistics."""
    game_ids = np.asarray(game_ids)
    split_of_row = np.full(len(game_ids), -1, dtype=np.int64)
    for i, split in enumerate(SPLITS):
        split_of_row[np.asarray(split_masks[split], dtype=bool)] = i
    # a game lies in one split (split_by_game): per-game figures, then per split
    unique, rows = _rows_by_players(game_ids, num_players)
    game_split = np.full(len(unique), -1, dtype=np.int64)
    game_split[np.searchsorted(unique, game_ids)] = split_of_row
    label_counts: dict[str, dict] = {}
    mask_stats: dict[str, dict] = {}
    for split in SPLITS:
        sel = np.asarray(split_masks[split], dtype=bool)
        label_counts[split], mask_stats[split] = head_stats(
            {h: np.asarray(a)[sel] for h, a in labels.items()},
            {h: np.asarray(a)[sel] for h, a in masks.items()},
        )
    return {
        "splits": split_stats(game_split, rows, unique),
        "label_counts": label_counts,
        "mask_stats": mask_stats,
    }


#: The file of :func:`training_summary`, read by training code for X's width.
TRAINING_SUMMARY_FILE = "preprocessing_stats.json"


def training_summary(stats: Mapping, num_features: int) -> dict:
    """The content of ``preprocessing_stats.json``: X's width, the rows of each split, and
    per head the number of legal classes over the train rows (mean, min, max).

    Derived from the figures ``stats.json`` already holds (``stats["splits"]`` and
    ``stats["mask_stats"]["train"]``, as :func:`dataset_stats` or the job's phase 2 give
    them): no pass over the arrays. Nothing in it depends on the run (no timings, paths or
    versions), so the same games give the same bytes.
    """
    sizes = {s: int(stats["splits"][s]["rows"]) for s in SPLITS}
    train_masks = stats["mask_stats"]["train"]
    return {
        "input_dim": int(num_features),
        "num_features": int(num_features),
        "total_samples": sum(sizes.values()),
        **{f"{s}_size": sizes[s] for s in SPLITS},
        "mask_statistics": {
            head: {
                "avg_legal_actions": float(train_masks[head]["mean_legal_classes"]),
                "min_legal_actions": int(train_masks[head]["min_legal_classes"]),
                "max_legal_actions": int(train_masks[head]["max_legal_classes"]),
            }
            for head in C.HEADS
        },
    }
