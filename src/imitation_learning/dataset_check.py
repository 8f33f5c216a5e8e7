"""Soundness of a saved dataset: the pass/fail checks of ``splendor-il check``.

:func:`check_soundness` opens a dataset folder (X memory-mapped), reads each split's X once
in blocks of rows, and returns one :class:`CheckResult` per check of :data:`CHECKS`:

``files``
    every file of the dataset is there and loads.
``x_finite``
    X holds no NaN or infinity.
``shapes``
    X has one column per name of ``feature_names.json``, a float32 2-D array; every head of
    ``label_classes.json`` has labels (1-D, integer) and masks (2-D, one column per class)
    with X's rows; the rows equal the counts in ``stats.json``; the column kinds and the
    scaler cover the same columns.
``labels_valid``
    every label is -1 or a class index of its head.
``labels_in_masks``
    every label (not -1) is legal in its own row's mask.
``x_in_step``
    X's rows are in step with the masks (hence the labels): the card-building legality the
    masks give (``card_selection``) equals X's ``player0_cardpos{j}_can_build`` columns, and
    the take-2 legality (``gem_take2``) equals X's ``bank_{colour}_take2_possible`` columns.
    Both are computed from the same state by different code (masks from the raw log row,
    features from the compacted row), so X shifted by one row against the labels and masks
    breaks most rows. Skipped when the dataset was saved without masks or features.
``games_disjoint``
    no game in two splits: the game ids of each split in ``stats.json`` are disjoint, and no
    row of X appears, bit for bit, in two splits (a game copied under another id).
``scaler``
    ``scaler.npz`` is the scaler fitted on the train rows and applied to X: it covers the
    continuous columns (others mean 0, scale 1); the mean and standard deviation of the train
    rows of X un-standardised (``X * scale + mean``) equal the saved mean and scale; and every
    un-standardised value is a whole number, as every column of X is before standardisation
    (log values are counts and indices, the strategic features whole numbers 0..62).
``column_groups``
    the one-hot groups are one-hot (``num_players_{2,3,4}``: exactly one; rotated seats:
    slot k holds one seat when k < num_players, none otherwise, and the seats of a row are
    0..num_players-1 once each); position columns hold their index or -1 (face-up cards
    compacted, reserved cards only for players in the game); binary columns are 0 or 1; rows
    per player count equal ``stats.json``.

Float32 rounding, the tolerance of the scaler check: X holds ``z = fl32((x - mean) / scale)``,
and float32 rounding to nearest errs by at most eps32/2 relative, so ``|z*scale + mean - x|
<= eps32/2 * |x - mean|``. Summed over the train rows this moves the mean of the
un-standardised values by at most eps32/2 * mean|x - mean| <= eps32/2 * std, and their
standard deviation by at most eps32/2 * std (the norm of a difference bounds the difference
of the centred norms). The check allows ``eps32 * scale`` (twice the bound; float64
accumulation adds ~n * 1e-16, far below). A scaler fitted on other rows misses by about
``scale / sqrt(rows)``, orders of magnitude more. The whole-number test allows, per block and
column, ``eps32 * scale * max|z| + 1e-9``: twice the largest rounding error of the block.

Rows with a non-finite value are reported by ``x_finite`` and left out of the other X checks;
the scaler statistics cannot be verified when a train row is non-finite (the check fails).
Each X file is read once, block by block; the pages read are released as the scan goes
(``MADV_DONTNEED``), so memory stays at a few blocks whatever the size of X.
"""

from __future__ import annotations

import mmap
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from imitation_learning.dataset.feature_matrix import (
    BINARY,
    CARD_POSITION_COLUMNS,
    CONTINUOUS,
    NUM_PLAYERS_ONEHOT,
    SEAT_ONEHOT,
)
from imitation_learning.dataset.splits import SPLITS
from imitation_learning.dataset.store import load_dataset
from splendor import columns as C
from splendor.limits import MAX_RESERVED, PLAYER_COUNTS

PASS, FAIL, SKIP = "pass", "fail", "skip"

#: The checks, in report order: name -> what a pass proves.
CHECKS: dict[str, str] = {
    "files": "every file present and readable",
    "x_finite": "X is finite",
    "shapes": "shapes agree with feature_names.json, label_classes.json and stats.json",
    "labels_valid": "every label is -1 or a class index",
    "labels_in_masks": "every label inside its own mask",
    "x_in_step": "X rows in step with masks and labels",
    "games_disjoint": "no game in two splits",
    "scaler": "scaler = statistics of the train rows of X un-standardised",
    "column_groups": "one-hot groups, position and binary columns valid",
}

FLOAT32_EPS = float(np.finfo(np.float32).eps)
#: Allowed |mean(z)| and |std(z) - 1| over the train rows (see the module docstring).
STATS_TOLERANCE = FLOAT32_EPS
#: Rows of X per block: ~5 MB of float32 at ~1,300 columns, a few times that in float64.
BLOCK_ROWS = 1024
#: Examples kept per check.
MAX_EXAMPLES = 3
#: Candidate duplicate rows (equal fingerprints in two splits) compared bit for bit, at most.
MAX_DUPLICATE_CANDIDATES = 10_000

CAN_BUILD_COLUMNS = [f"player0_cardpos{j}_can_build" for j in range(C.HEADS["card_selection"])]
TAKE2_POSSIBLE_COLUMNS = [f"bank_{c}_take2_possible" for c in C.COLOURS]


class DatasetNotFoundError(FileNotFoundError):
    """The folder does not hold a dataset (no ``stats.json`` / ``feature_names.json``)."""


@dataclass
class CheckResult:
    """One check: ``status`` pass / fail / skip, a one-line ``summary``, figures per split
    and a few ``examples`` of what failed."""

    name: str
    status: str = PASS
    summary: str = ""
    per_split: dict = field(default_factory=dict)
    examples: list[str] = field(default_factory=list)

    @property
    def description(self) -> str:
        return CHECKS[self.name]

    def problem(self, text: str) -> None:
        """Record a failure (the first few texts are kept as examples)."""
        self.status = FAIL
        if len(self.examples) < MAX_EXAMPLES:
            self.examples.append(text)

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "description": self.description,
            "status": self.status,
            "summary": self.summary,
            "per_split": self.per_split,
            "examples": self.examples,
        }


@dataclass
class _Layout:
    """What the shape check found usable: X per split with its column names, and the
    (split, head) pairs whose labels and masks have X's rows and the head's classes."""

    rows: dict[str, int] = field(default_factory=dict)
    x_named: dict[str, bool] = field(default_factory=dict)  # X 2-D with one column per name
    heads: dict[tuple[str, str], bool] = field(default_factory=dict)
    kinds: list[str] | None = None
    scaler_ok: bool = False


def is_dataset_dir(path: str | os.PathLike) -> bool:
    path = Path(path)
    return (path / "stats.json").is_file() and (path / "feature_names.json").is_file()


def open_dataset(path: str | os.PathLike) -> dict:
    """:func:`load_dataset` with X memory-mapped; :class:`DatasetNotFoundError` when the
    folder holds no dataset (any other error: the dataset is there but broken)."""
    if not Path(path).is_dir():
        raise DatasetNotFoundError(f"{path}: no such folder")
    if not is_dataset_dir(path):
        raise DatasetNotFoundError(f"{path}: not a dataset (no stats.json / feature_names.json)")
    return load_dataset(path, mmap=True)


def check_soundness(
    path: str | os.PathLike,
    *,
    dataset: dict | None = None,
    progress: bool = False,
    block_rows: int = BLOCK_ROWS,
) -> list[CheckResult]:
    """Run every check of :data:`CHECKS` on the dataset in ``path`` (or on ``dataset``, a
    :func:`open_dataset` result of it). Raises :class:`DatasetNotFoundError` when ``path``
    holds no dataset; a dataset that does not load fails the ``files`` check."""
    files = CheckResult("files")
    if dataset is None:
        try:
            dataset = open_dataset(path)
        except DatasetNotFoundError:
            raise
        except Exception as exc:  # noqa: BLE001 - any load error is this check's failure
            files.problem(f"{type(exc).__name__}: {exc}")
    if files.status == FAIL:
        files.summary = "the dataset does not load: " + files.examples[0]
        skipped = [
            CheckResult(name, SKIP, "not run: the dataset does not load")
            for name in CHECKS
            if name != "files"
        ]
        return [files, *skipped]
    files.summary = f"{len(SPLITS) * 3 + 5} files loaded"  # X, labels, masks; 5 others

    ds = dataset
    shapes, layout = _check_shapes(ds)
    labels_valid = _check_labels_valid(ds, layout)
    labels_in_masks = _check_labels_in_masks(ds, layout)

    scans = [
        _FiniteScan(),
        _InStepScan(ds, layout),
        _FingerprintScan(),
        _ScalerScan(ds, layout),
        _GroupScan(ds, layout),
    ]
    _scan_x(ds, layout, scans, progress=progress, block_rows=block_rows)
    finite, in_step, fingerprints, scaler, groups = (s.result() for s in scans)
    games = _check_games(ds, layout, fingerprints)
    by_name = {
        r.name: r
        for r in (files, finite, shapes, labels_valid, labels_in_masks, in_step, games)
        + (scaler, groups)
    }
    return [by_name[name] for name in CHECKS]


# --- checks that do not read X ---------------------------------------------------------------


def _check_shapes(ds: dict) -> tuple[CheckResult, _Layout]:
    res = CheckResult("shapes")
    layout = _Layout()
    names = ds["feature_names"]
    width = len(names)
    classes = {head: len(table) for head, table in ds["label_classes"].items()}
    stats = ds["stats"]

    if set(classes) != set(C.HEADS) or any(classes[h] != n for h, n in C.HEADS.items()):
        res.problem(
            f"label_classes.json has heads {classes}, this version's heads are {dict(C.HEADS)}"
        )
    kinds = stats.get("feature_kinds")
    if not isinstance(kinds, dict) or list(kinds) != list(names):
        res.problem("stats.json feature_kinds does not list the columns of feature_names.json")
    else:
        layout.kinds = list(kinds.values())
    scaler = ds["scaler"]
    if scaler.mean.shape != (width,) or scaler.scale.shape != (width,):
        res.problem(
            f"scaler.npz mean / scale of shapes {scaler.mean.shape} / {scaler.scale.shape} "
            f"for {width} columns"
        )
    elif scaler.columns.size and (scaler.columns.min() < 0 or scaler.columns.max() >= width):
        res.problem("scaler.npz columns outside X")
    else:
        layout.scaler_ok = True

    for split in SPLITS:
        X = ds[f"X_{split}"]
        fig: dict = {"X": list(X.shape), "dtype": str(X.dtype)}
        ok_x = X.ndim == 2 and X.dtype == np.float32
        if not ok_x:
            res.problem(f"X_{split} is {X.dtype} of shape {X.shape}, not 2-D float32")
        elif X.shape[1] != width:
            res.problem(f"X_{split} has {X.shape[1]} columns, feature_names.json {width} names")
        layout.x_named[split] = ok_x and X.shape[1] == width
        n = X.shape[0] if X.ndim >= 1 else 0
        layout.rows[split] = n
        saved_rows = stats.get("splits", {}).get(split, {}).get("rows")
        if saved_rows != n:
            res.problem(f"X_{split} has {n} rows, stats.json says {saved_rows}")
        for head, k in classes.items():
            ok = True
            lab = ds[f"labels_{split}"].get(head)
            msk = ds[f"masks_{split}"].get(head)
            if lab is None or msk is None:
                res.problem(f"{split}: no {'labels' if lab is None else 'masks'} for head {head}")
                ok = False
            else:
                if lab.ndim != 1 or lab.shape[0] != n or not np.issubdtype(lab.dtype, np.integer):
                    res.problem(f"{split} {head}: labels {lab.dtype} {lab.shape} for {n} rows")
                    ok = False
                if msk.ndim != 2 or msk.shape != (n, k) or not _is_boolean(msk):
                    res.problem(
                        f"{split} {head}: masks {msk.dtype} {msk.shape}, expected ({n}, {k}) 0/1"
                    )
                    ok = False
            layout.heads[(split, head)] = ok
        extra = set(ds[f"labels_{split}"]) - set(classes) | set(ds[f"masks_{split}"]) - set(classes)
        if extra:
            res.problem(f"{split}: heads {sorted(extra)} not in label_classes.json")
        res.per_split[split] = fig
    res.summary = (
        f"{width} columns, {len(classes)} heads, rows "
        + ", ".join(f"{s} {layout.rows[s]}" for s in SPLITS)
        if res.status == PASS
        else "shapes disagree"
    )
    return res, layout


def _is_boolean(arr: np.ndarray) -> bool:
    if arr.dtype == bool:
        return True
    return bool(np.isin(np.unique(arr), (0, 1)).all())


def _count_per_head(ds: dict, layout: _Layout, res: CheckResult, key: str, count) -> tuple:
    """Run ``count(split, head, classes, labels as int64) -> (bad, checked)`` on every head
    whose arrays passed the shape check; ``res.per_split[split][key]`` gets each head's
    ``bad``. Returns the totals ``(bad, checked)``."""
    total = checked = 0
    for split in SPLITS:
        per_head = {}
        for head, k in C.HEADS.items():
            if layout.heads.get((split, head)):
                lab = np.asarray(ds[f"labels_{split}"][head]).astype(np.int64)
                bad, seen = count(split, head, k, lab)
                per_head[head] = bad
                total += bad
                checked += seen
        res.per_split[split] = {key: per_head}
    return total, checked


def _check_labels_valid(ds: dict, layout: _Layout) -> CheckResult:
    res = CheckResult("labels_valid")

    def count(split: str, head: str, k: int, lab: np.ndarray) -> tuple[int, int]:
        bad = np.flatnonzero((lab < -1) | (lab >= k))
        if len(bad):
            res.problem(f"{split} row {bad[0]}, {head}: label {lab[bad[0]]} (classes 0..{k - 1})")
        return int(len(bad)), len(lab)

    total, checked = _count_per_head(ds, layout, res, "invalid_labels", count)
    res.summary = (
        f"{checked} labels" if res.status == PASS else f"{total} of {checked} labels out of range"
    )
    return _note_unchecked(res, layout)


def _check_labels_in_masks(ds: dict, layout: _Layout) -> CheckResult:
    res = CheckResult("labels_in_masks")

    def count(split: str, head: str, k: int, lab: np.ndarray) -> tuple[int, int]:
        msk = np.asarray(ds[f"masks_{split}"][head]).astype(bool)
        rows = np.flatnonzero((lab >= 0) & (lab < k))  # out-of-range: labels_valid's
        illegal = rows[~msk[rows, lab[rows]]]
        if len(illegal):
            r = illegal[0]
            legal = np.flatnonzero(msk[r]).tolist()
            res.problem(f"{split} row {r}, {head}: label {lab[r]} not in legal {legal}")
        return int(len(illegal)), len(rows)

    total, checked = _count_per_head(ds, layout, res, "labels_outside_mask", count)
    res.summary = (
        f"{checked} labels other than -1"
        if res.status == PASS
        else f"{total} of {checked} labels outside their mask"
    )
    return _note_unchecked(res, layout)


def _note_unchecked(res: CheckResult, layout: _Layout) -> CheckResult:
    missing = [f"{s} {h}" for (s, h), ok in layout.heads.items() if not ok]
    if missing:
        res.summary += f" (not checked, see shapes: {', '.join(missing)})"
    return res


# --- the scan of X -------------------------------------------------------------------------


def _scan_x(ds: dict, layout: _Layout, scans: list, *, progress: bool, block_rows: int) -> None:
    """Read each split's X once, in blocks of rows, and hand every block to every scan
    (with its finite rows); release the pages read as the scan goes."""
    from tqdm.auto import tqdm

    total = sum(layout.rows[s] for s in SPLITS if ds[f"X_{s}"].ndim == 2)
    with tqdm(
        total=total, desc="check: reading X", unit="rows", disable=not progress, leave=False
    ) as bar:
        for split in SPLITS:
            X = ds[f"X_{split}"]
            if X.ndim != 2:
                continue
            for scan in scans:
                scan.begin(split, X, layout.x_named[split])
            buf = np.empty((min(block_rows, len(X)), X.shape[1]), dtype=X.dtype)
            for start in range(0, len(X), block_rows):
                stop = min(start + block_rows, len(X))
                block = buf[: stop - start]
                np.copyto(block, X[start:stop])
                release_pages(X, stop)
                finite = np.isfinite(block).all(axis=1)
                for scan in scans:
                    scan.update(split, start, block, finite)
                bar.update(stop - start)
            release_pages(X, len(X))
            for scan in scans:
                scan.end(split, X)


def release_pages(X: np.ndarray, stop_row: int) -> None:
    """Let the kernel drop the pages of a memory-mapped ``X`` up to row ``stop_row`` from
    this process (they stay in the page cache); no-op for an array in memory."""
    mm = getattr(X, "_mmap", None)
    if mm is None or not hasattr(mmap, "MADV_DONTNEED") or X.ndim != 2:
        return
    # np.memmap maps from the file offset rounded down to the allocation granularity
    start_in_map = X.offset % mmap.ALLOCATIONGRANULARITY
    end = start_in_map + stop_row * X.shape[1] * X.itemsize
    end -= end % mmap.PAGESIZE
    if end > 0:
        try:
            mm.madvise(mmap.MADV_DONTNEED, 0, end)
        except (OSError, ValueError):
            pass


class _Scan:
    """A check fed the blocks of X: ``begin`` / ``update`` / ``end`` per split, then
    ``result``."""

    def begin(self, split: str, X: np.ndarray, named: bool) -> None:
        pass

    def update(self, split: str, start: int, block: np.ndarray, finite: np.ndarray) -> None:
        pass

    def end(self, split: str, X: np.ndarray) -> None:
        pass


class _FiniteScan(_Scan):
    def __init__(self):
        self.res = CheckResult("x_finite")
        self.counts: dict[str, int] = {}

    def begin(self, split, X, named):
        self.counts[split] = 0

    def update(self, split, start, block, finite):
        if finite.all():
            return
        bad_rows = np.flatnonzero(~finite)
        self.counts[split] += int((~np.isfinite(block[bad_rows])).sum())
        r = bad_rows[0]
        c = int(np.flatnonzero(~np.isfinite(block[r]))[0])
        self.res.problem(f"X_{split}[{start + r}, {c}] = {block[r, c]}")

    def result(self):
        self.res.per_split = {s: {"non_finite_values": n} for s, n in self.counts.items()}
        total = sum(self.counts.values())
        self.res.summary = (
            "no NaN or infinity" if self.res.status == PASS else f"{total} non-finite values"
        )
        return self.res


class _InStepScan(_Scan):
    """Masks of card_selection / gem_take2 against X's can-build / take-2-possible columns."""

    def __init__(self, ds: dict, layout: _Layout):
        self.res = CheckResult("x_in_step")
        self.ds, self.layout = ds, layout
        index = {name: i for i, name in enumerate(ds["feature_names"])}
        config = ds["stats"].get("config") or {}
        masking = (config.get("preprocessing") or {}).get("enable_masking", True)
        self.skip_reason = None
        if not masking:
            self.skip_reason = "the dataset was saved without masks (enable_masking: false)"
        elif not all(n in index for n in CAN_BUILD_COLUMNS + TAKE2_POSSIBLE_COLUMNS):
            self.skip_reason = "X has no can-build / take-2 features (feature engineering off)"
        else:
            self.cols = np.array([index[n] for n in CAN_BUILD_COLUMNS + TAKE2_POSSIBLE_COLUMNS])
        self.counts: dict[str, dict] = {}
        self.active = False

    def begin(self, split, X, named):
        heads_ok = all(self.layout.heads.get((split, h)) for h in ("card_selection", "gem_take2"))
        self.active = self.skip_reason is None and named and heads_ok
        if self.active:
            self.legal = np.concatenate(
                [
                    np.asarray(self.ds[f"masks_{split}"]["card_selection"], dtype=bool),
                    np.asarray(self.ds[f"masks_{split}"]["gem_take2"], dtype=bool),
                ],
                axis=1,
            )
            self.counts[split] = {"rows_checked": 0, "rows_out_of_step": 0}

    def update(self, split, start, block, finite):
        if not self.active:
            return
        from_x = block[:, self.cols] != 0
        differ = (from_x != self.legal[start : start + len(block)]).any(axis=1) & finite
        c = self.counts[split]
        c["rows_checked"] += int(finite.sum())
        if differ.any():
            c["rows_out_of_step"] += int(differ.sum())
            r = int(np.flatnonzero(differ)[0])
            self.res.problem(
                f"{split} row {start + r}: X's can-build / take-2 columns disagree with the masks"
            )

    def result(self):
        res = self.res
        if self.skip_reason:
            res.status, res.summary = SKIP, f"not checked: {self.skip_reason}"
            return res
        res.per_split = self.counts
        checked = sum(c["rows_checked"] for c in self.counts.values())
        bad = sum(c["rows_out_of_step"] for c in self.counts.values())
        if res.status == PASS:
            res.summary = (
                f"{checked} rows: card_selection and gem_take2 masks = X's can-build and "
                "take-2 columns"
            )
        else:
            res.summary = (
                f"{bad} of {checked} rows: card_selection / gem_take2 masks differ from X's "
                "can-build / take-2 columns"
            )
        unchecked = [s for s in SPLITS if s not in self.counts]
        if unchecked:
            res.summary += f" (not checked, see shapes: {', '.join(unchecked)})"
        if checked == 0 and res.status == PASS:
            res.status = SKIP
        return res


class _FingerprintScan(_Scan):
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


def _check_games(ds: dict, layout: _Layout, fingerprints: dict[str, np.ndarray]) -> CheckResult:
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
    ds: dict, layout: _Layout, fingerprints: dict[str, np.ndarray]
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


class _ScalerScan(_Scan):
    """Train statistics of z = X's continuous columns, and whole-number test of
    ``z * scale + mean`` on every split."""

    def __init__(self, ds: dict, layout: _Layout):
        self.res = CheckResult("scaler")
        self.layout = layout
        self.skip_reason = None
        if layout.kinds is None or not layout.scaler_ok:
            self.skip_reason = "column kinds or scaler arrays unusable (see shapes)"
            return
        scaler = ds["scaler"]
        kinds = np.asarray(layout.kinds)
        self.cont = np.flatnonzero(kinds == CONTINUOUS)
        names = ds["feature_names"]
        self.cont_names = [names[i] for i in self.cont]
        if not np.array_equal(np.sort(scaler.columns), self.cont):
            self.res.problem(
                f"scaler.npz standardises {len(scaler.columns)} columns, stats.json has "
                f"{len(self.cont)} continuous ones"
            )
        other = np.setdiff1d(np.arange(len(kinds)), self.cont)
        if (scaler.mean[other] != 0).any() or (scaler.scale[other] != 1).any():
            self.res.problem("scaler.npz changes columns that are not continuous")
        if not (np.isfinite(scaler.mean).all() and (scaler.scale > 0).all()):
            self.res.problem("scaler.npz has a non-finite mean or a scale <= 0")
            self.skip_reason = "the scaler cannot be inverted"
            return
        self.mean = scaler.mean[self.cont]
        self.scale = scaler.scale[self.cont]
        n = len(self.cont)
        self.count, self.sum, self.sumsq = 0, np.zeros(n), np.zeros(n)
        self.train_non_finite = 0
        self.fraction: dict[str, dict] = {}

    def begin(self, split, X, named):
        self.active = self.skip_reason is None and named
        if self.active:
            self.fraction[split] = {"values_not_whole": 0}

    def update(self, split, start, block, finite):
        if not self.active:
            return
        if split == "train":
            self.train_non_finite += int((~finite).sum())
        rows = block if finite.all() else block[finite]
        if not len(rows):
            return
        z = rows[:, self.cont].astype(np.float64)
        if split == "train":
            self.count += len(z)
            self.sum += z.sum(axis=0)
            self.sumsq += np.einsum("ij,ij->j", z, z)
        tol = FLOAT32_EPS * self.scale * np.maximum(z.max(axis=0), -z.min(axis=0)) + 1e-9
        z *= self.scale
        z += self.mean
        off = np.abs(z - np.rint(z)) > tol
        if off.any():
            bad = int(off.sum())
            self.fraction[split]["values_not_whole"] += bad
            r, c = (int(v[0]) for v in np.nonzero(off))
            self.res.problem(
                f"{split}: {self.cont_names[c]} un-standardised is {z[r, c]:.6g}, not a whole "
                "number (X was standardised with another scaler)"
            )

    def result(self):
        res = self.res
        if self.skip_reason:
            res.status = SKIP if res.status == PASS else res.status
            res.summary = f"not checked: {self.skip_reason}"
            return res
        res.per_split = dict(self.fraction)
        deviation = {}
        if self.train_non_finite:
            res.problem(
                f"{self.train_non_finite} train rows are not finite: their statistics "
                "cannot be verified"
            )
        elif self.count:
            mz = self.sum / self.count
            sz = np.sqrt(np.maximum(self.sumsq / self.count - mz**2, 0.0))
            constant = (self.scale == 1.0) & (sz <= STATS_TOLERANCE)
            std_err = np.where(constant, 0.0, np.abs(sz - 1.0))
            mean_err = np.abs(mz)
            deviation = {
                "max_mean_deviation_over_scale": float(mean_err.max(initial=0.0)),
                "max_std_deviation_over_scale": float(std_err.max(initial=0.0)),
                "tolerance": STATS_TOLERANCE,
                "train_rows": int(self.count),
            }
            for what, err in (("mean", mean_err), ("std", std_err)):
                bad = np.flatnonzero(err > STATS_TOLERANCE)
                if len(bad):
                    c = bad[np.argmax(err[bad])]
                    res.problem(
                        f"{len(bad)} columns' train {what} differs from the saved one; worst "
                        f"{self.cont_names[c]}: off by {err[c]:.3g} x scale (tolerance "
                        f"{STATS_TOLERANCE:.3g})"
                    )
        elif (self.mean != 0).any() or (self.scale != 1).any():
            res.problem("no train rows, yet the scaler is not the identity")
        res.per_split["train"] = {**res.per_split.get("train", {}), **deviation}
        if res.status == PASS:
            res.summary = (
                f"{len(self.cont)} continuous columns; train mean, std within "
                f"{deviation.get('max_mean_deviation_over_scale', 0):.2g}, "
                f"{deviation.get('max_std_deviation_over_scale', 0):.2g} x scale of the saved "
                f"(tolerance {STATS_TOLERANCE:.2g}); all values whole numbers"
            )
        else:
            res.summary = "the scaler does not match the train rows of X"
        return res


class _GroupScan(_Scan):
    """One-hot groups, position columns, binary columns; rows per player count."""

    def __init__(self, ds: dict, layout: _Layout):
        self.res = CheckResult("column_groups")
        self.ds, self.layout = ds, layout
        index = {name: i for i, name in enumerate(ds["feature_names"])}
        self.skip_reason = None
        needed = NUM_PLAYERS_ONEHOT + SEAT_ONEHOT + CARD_POSITION_COLUMNS
        reserved = [
            f"player{k}_reserved{r}_position"
            for k in range(C.NUM_PLAYER_SLOTS)
            for r in range(MAX_RESERVED)
        ]
        if layout.kinds is None or not all(n in index for n in needed + reserved):
            self.skip_reason = "column names or kinds unusable (see shapes)"
            return
        self.players = np.array([index[n] for n in NUM_PLAYERS_ONEHOT])
        self.seats = np.array([index[n] for n in SEAT_ONEHOT])
        self.cards = np.array([index[n] for n in CARD_POSITION_COLUMNS])
        self.reserved = np.array([index[n] for n in reserved])
        self.binary = np.flatnonzero(np.asarray(layout.kinds) == BINARY)
        self.counts: dict[str, dict] = {}

    def begin(self, split, X, named):
        self.active = self.skip_reason is None and named
        if self.active:
            self.counts[split] = {
                "bad_rows": {
                    "num_players": 0,
                    "seats": 0,
                    "card_positions": 0,
                    "reserved_positions": 0,
                    "binary": 0,
                },
                "rows_by_num_players": dict.fromkeys(map(str, PLAYER_COUNTS), 0),
                "non_finite_rows": 0,
            }

    def _bad(self, split, start, what, bad_rows, text):
        if bad_rows.any():
            self.counts[split]["bad_rows"][what] += int(bad_rows.sum())
            r = int(np.flatnonzero(bad_rows)[0])
            self.res.problem(f"{split} row {start + r}: {text}")

    def update(self, split, start, block, finite):
        if not self.active:
            return
        counts = self.counts[split]
        counts["non_finite_rows"] += int((~finite).sum())
        n_slots = C.NUM_PLAYER_SLOTS
        onehot = block[:, np.concatenate([self.players, self.seats])]
        not01 = ((onehot != 0) & (onehot != 1)).any(axis=1)

        players = block[:, self.players]
        bad = ((players != 0) & (players != 1)).any(axis=1) | (players.sum(axis=1) != 1)
        self._bad(split, start, "num_players", bad & finite, "num_players one-hot not one-hot")
        n = np.asarray(PLAYER_COUNTS)[players.argmax(axis=1)]  # (rows,)
        good = finite & ~bad
        for count in PLAYER_COUNTS:
            counts["rows_by_num_players"][str(count)] += int((good & (n == count)).sum())

        seats = block[:, self.seats].reshape(-1, n_slots, n_slots)  # (rows, slot, seat)
        in_game = np.arange(n_slots)[None, :] < n[:, None]  # slot k < num_players; seat s < n
        bad_seats = (
            not01
            | (seats.sum(axis=2) != in_game).any(axis=1)
            | (seats.sum(axis=1) != in_game).any(axis=1)
        )
        self._bad(
            split,
            start,
            "seats",
            bad_seats & good,
            "rotated seats not one seat per player in the game, each seat once",
        )

        cards = block[:, self.cards]
        present = cards >= 0
        bad_cards = ((cards != np.arange(C.NUM_VISIBLE)) & (cards != -1)).any(axis=1) | (
            present[:, 1:] & ~present[:, :-1]
        ).any(axis=1)
        self._bad(
            split,
            start,
            "card_positions",
            bad_cards & finite,
            "card{i}_position not i or -1, or face-up cards not compacted",
        )

        res = block[:, self.reserved].reshape(-1, n_slots, MAX_RESERVED)
        index = C.NUM_VISIBLE + np.arange(MAX_RESERVED)
        bad_res = ((res != index) & (res != -1)).any(axis=(1, 2)) | (
            (res != -1) & ~in_game[:, :, None]
        ).any(axis=(1, 2))
        self._bad(
            split,
            start,
            "reserved_positions",
            bad_res & good,
            "reserved position not 12+r or -1, or a reserved card for a player not in the game",
        )

        if len(self.binary):
            b = block[:, self.binary]
            self._bad(
                split,
                start,
                "binary",
                ((b != 0) & (b != 1)).any(axis=1) & finite,
                "a binary column not 0 or 1",
            )

    def result(self):
        res = self.res
        if self.skip_reason:
            res.status, res.summary = SKIP, f"not checked: {self.skip_reason}"
            return res
        splits_stats = self.ds["stats"].get("splits", {})
        for split, counts in self.counts.items():
            by_players = splits_stats.get(split, {}).get("by_num_players", {})
            saved = {str(n): by_players.get(str(n), {}).get("rows") for n in PLAYER_COUNTS}
            if counts["non_finite_rows"] == 0 and not any(counts["bad_rows"].values()):
                if saved != counts["rows_by_num_players"]:
                    res.problem(
                        f"{split}: rows per player count {counts['rows_by_num_players']} in X, "
                        f"{saved} in stats.json"
                    )
        res.per_split = self.counts
        if res.status == PASS:
            res.summary = (
                f"num_players, seats, card and reserved positions, {len(self.binary)} binary "
                "columns; rows per player count as in stats.json"
            )
        else:
            total = sum(sum(c["bad_rows"].values()) for c in self.counts.values())
            res.summary = f"{total} rows with an invalid group"
        return res


def report_dict(results: list[CheckResult]) -> list[dict]:
    return [r.to_dict() for r in results]


def passed(results: list[CheckResult]) -> bool:
    """True when no check failed (a skipped check does not fail)."""
    return all(r.status != FAIL for r in results)
