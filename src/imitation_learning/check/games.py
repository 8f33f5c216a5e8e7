"""The ``games_disjoint`` check: no game in two splits.

This module owns :class:`FingerprintScan` (a 64-bit fingerprint of every row of X) and
:func:`check_games`: the game ids of the splits in ``stats.json`` are disjoint, and no row
of X appears, bit for bit, in two splits (a game copied under another id).
"""

from __future__ import annotations

import numpy as np

from imitation_learning.check.report import PASS, CheckResult
from imitation_learning.check.shapes import Layout
from imitation_learning.check.x_scan import Scan
from imitation_learning.dataset.splits import SPLITS

#: Candidate duplicate rows (equal fingerprints in two splits) compared bit for bit, at most.
MAX_DUPLICATE_CANDIDATES = 10_000


class FingerprintScan(Scan):
    """A 64-bit fingerprint of every row (its float32 bits, mixed by fixed random odd
    multipliers, summed modulo 2**64): equal rows have equal fingerprints."""

    def __init__(self):
        self.parts: dict[str, list[np.ndarray]] = {}
        self.mult: np.ndarray | None = None

    def begin(self, split, X, named):
        self.parts[split] = []
        if self.mult is None or len(self.mult) != X.shape[1]:
            rng = np.random.default_rng(0x5EED)
            self.mult = rng.integers(1, 2**63, size=X.shape[1], dtype=np.uint64) * 2 + 1
        self.width = X.shape[1]

    def update(self, split, start, block, finite):
        if block.shape[1] != len(self.mult):
            return
        bits = block.view(np.uint32).astype(np.uint64)
        bits *= self.mult
        self.parts[split].append(bits.sum(axis=1, dtype=np.uint64))

    def result(self) -> dict[str, np.ndarray]:
        return {
            s: (np.concatenate(p) if p else np.zeros(0, np.uint64)) for s, p in self.parts.items()
        }


def check_games(ds: dict, layout: Layout, fingerprints: dict[str, np.ndarray]) -> CheckResult:
    res = CheckResult("games_disjoint")
    splits_stats = ds["stats"].get("splits", {})
    ids: dict[str, set] = {}
    for split in SPLITS:
        saved = splits_stats.get(split, {}).get("game_ids")
        if saved is None:
            res.problem(
                f"stats.json has no game ids for {split} (a dataset saved before they were "
                "recorded): re-run preprocess to check it"
            )
            continue
        ids[split] = set(saved)
        res.per_split[split] = {"games": len(ids[split])}
        count = splits_stats[split].get("games")
        if count != len(ids[split]) or len(saved) != len(ids[split]):
            res.problem(f"{split}: {len(saved)} game ids listed, {count} games counted")
    shared_games = 0
    for i, a in enumerate(SPLITS):
        for b in SPLITS[i + 1 :]:
            if a in ids and b in ids:
                both = sorted(ids[a] & ids[b])
                shared_games += len(both)
                if both:
                    res.problem(f"games {both[:5]} are in {a} and in {b}")

    duplicates = _duplicate_rows(ds, layout, fingerprints)
    for (a, b), pairs in duplicates.items():
        if pairs:
            ra, rb = pairs[0]
            res.problem(
                f"{len(pairs)} rows of X_{a} are identical to rows of X_{b} "
                f"(e.g. {a} row {ra} = {b} row {rb}): a game copied into two splits?"
            )
    for split in SPLITS:
        res.per_split.setdefault(split, {})["rows_also_in_another_split"] = int(
            sum(len(p) for (a, b), p in duplicates.items() if split in (a, b))
        )
    if res.status == PASS:
        res.summary = (
            ", ".join(f"{s} {len(ids[s])}" for s in SPLITS)
            + " games in stats.json, disjoint; no row of X in two splits"
        )
    else:
        dup = sum(len(p) for p in duplicates.values())
        res.summary = f"{shared_games} game ids in two splits, {dup} rows of X in two splits"
    return res


def _duplicate_rows(
    ds: dict, layout: Layout, fingerprints: dict[str, np.ndarray]
) -> dict[tuple[str, str], list[tuple[int, int]]]:
    """Rows of X equal, bit for bit, in two splits: (row in a, row in b) per split pair.
    Candidates come from equal fingerprints and are compared row against row."""
    out: dict[tuple[str, str], list[tuple[int, int]]] = {}
    widths = {ds[f"X_{s}"].shape[1] for s in fingerprints if ds[f"X_{s}"].ndim == 2}
    if len(widths) != 1:
        return out
    for i, a in enumerate(SPLITS):
        for b in SPLITS[i + 1 :]:
            if a not in fingerprints or b not in fingerprints:
                continue
            fa, fb = fingerprints[a], fingerprints[b]
            common = np.intersect1d(fa, fb)[:MAX_DUPLICATE_CANDIDATES]
            pairs: list[tuple[int, int]] = []
            if len(common):
                rows_a = np.flatnonzero(np.isin(fa, common))
                rows_b = np.flatnonzero(np.isin(fb, common))
                Xa, Xb = ds[f"X_{a}"], ds[f"X_{b}"]
                by_print: dict[int, list[int]] = {}
                for r in rows_b[:MAX_DUPLICATE_CANDIDATES]:
                    by_print.setdefault(int(fb[r]), []).append(int(r))
                for r in rows_a[:MAX_DUPLICATE_CANDIDATES]:
                    row = np.asarray(Xa[r]).view(np.uint32)
                    for rb in by_print.get(int(fa[r]), ()):
                        if np.array_equal(row, np.asarray(Xb[rb]).view(np.uint32)):
                            pairs.append((int(r), rb))
                            break
            out[(a, b)] = pairs
    return out
