"""The saved dataset: feature matrix, split by game, scaler, atomic save and load.

The pipeline (:mod:`imitation_learning.data_preprocessing`) turns the four outputs of the
Dask job into the files of ``outputs.md`` ("The saved dataset"):

- :func:`build_feature_matrix`: X (float32) from the compact ``df`` and the strategic
  features, with the kind of every column (continuous, binary, position, onehot);
- :func:`split_by_game`: train / val / test masks; a game never spans two splits;
- :class:`Scaler`: mean and scale fitted on the train rows, for the continuous columns;
- :func:`save_dataset`: every file written into a temporary sibling folder, then swapped in;
- :func:`load_dataset`: everything back, for training code.

Layout of the output folder::

    X_{train,val,test}.npy        float32 (rows, F), continuous columns standardised
    labels_{split}.npz            head -> int16 (rows,)       (-1 = not applicable)
    masks_{split}.npz             head -> bool (rows, classes)
    feature_names.json            the F column names of X, in order
    label_classes.json            splendor.columns.class_tables()
    scaler.npz                    mean, scale (float64, (F,)), columns (int64), continuous (bool, (F,))
    stats.json                    counts and game ids per split, label and mask statistics,
                                  inputs, rejections, config, package versions, timings,
                                  column kinds
    rejections.json               the run's rejection report (Rejection.to_dict() list)
"""

from __future__ import annotations

import io
import json
import os
import platform
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd

from imitation_learning.per_file import features
from imitation_learning.per_file.memory_pages import normal_pages
from splendor import columns as C
from splendor.limits import MAX_RESERVED

SPLITS = ("train", "val", "test")

# Column kinds of X. Only "continuous" columns are standardised.
CONTINUOUS = "continuous"
BINARY = "binary"  # 0/1 by construction (card bonus one-hots, feature flags)
POSITION = "position"  # card{i}_position, player{k}_reserved{r}_position (index or -1)
ONEHOT = "onehot"  # one-hot encodings added here (num_players, rotated seats)
KINDS = (CONTINUOUS, BINARY, POSITION, ONEHOT)

# Log columns left out of X: the id, the metadata, and the decisions (they are the labels).
METADATA_COLUMNS = ["num_players", "turn_number", "current_player"] + [
    f"player{k}_position" for k in range(C.NUM_PLAYER_SLOTS)
]
EXCLUDED_LOG_COLUMNS = frozenset(["game_id", *METADATA_COLUMNS, *C.DECISION_COLUMNS])
LOG_FEATURE_COLUMNS: list[str] = [c for c in C.STATE_COLUMNS if c not in EXCLUDED_LOG_COLUMNS]

CARD_POSITION_COLUMNS = [f"card{i}_position" for i in range(C.NUM_VISIBLE)]
RESERVED_POSITION_COLUMNS = [
    f"player{k}_reserved{r}_position"
    for k in range(C.NUM_PLAYER_SLOTS)
    for r in range(MAX_RESERVED)
]
POSITION_COLUMNS = CARD_POSITION_COLUMNS + RESERVED_POSITION_COLUMNS

PLAYER_COUNTS = (2, 3, 4)
NUM_PLAYERS_ONEHOT = [f"num_players_{n}" for n in PLAYER_COUNTS]
SEAT_ONEHOT = [
    f"player{k}_seat_{s}" for k in range(C.NUM_PLAYER_SLOTS) for s in range(C.NUM_PLAYER_SLOTS)
]

CHUNK_ROWS = 8_192  # rows per block when fitting, scaling and writing (~85 MB in float64)
TRANSFORM_BYTES = 1 << 20  # float64 temporaries of Scaler.transform, per step


def strategic_feature_kinds(names: Sequence[str]) -> list[str]:
    """Kind of each strategic feature: ``binary`` for the 0/1 flags
    (:func:`imitation_learning.per_file.features.get_binary_feature_names`), else ``continuous``."""
    binary = set(features.get_binary_feature_names())
    return [BINARY if n in binary else CONTINUOUS for n in names]


def _log_column_kind(name: str) -> str:
    return BINARY if "_bonus_" in name else CONTINUOUS


def _strategic_names(width: int, names: Sequence[str] | None) -> list[str]:
    if width == 0:
        return []
    if names is None:
        names = features.get_all_feature_names()
    names = list(names)
    if len(names) != width:
        raise ValueError(f"strategic features have {width} columns but {len(names)} names")
    return names


NUM_ONEHOT = len(NUM_PLAYERS_ONEHOT) + len(SEAT_ONEHOT)
#: Columns of X that are not strategic features (log, position and one-hot columns).
NUM_FIXED_COLUMNS = len(LOG_FEATURE_COLUMNS) + len(POSITION_COLUMNS) + NUM_ONEHOT


def feature_columns(
    strategic_width: int, strategic_names: Sequence[str] | None = None
) -> tuple[list[str], list[str]]:
    """The names and kinds of the columns of X when the strategic features have
    ``strategic_width`` columns (see :func:`build_feature_matrix` for the order)."""
    s_names = _strategic_names(strategic_width, strategic_names)
    names = LOG_FEATURE_COLUMNS + POSITION_COLUMNS + s_names + NUM_PLAYERS_ONEHOT + SEAT_ONEHOT
    kinds = (
        [_log_column_kind(c) for c in LOG_FEATURE_COLUMNS]
        + [POSITION] * len(POSITION_COLUMNS)
        + strategic_feature_kinds(s_names)
        + [ONEHOT] * NUM_ONEHOT
    )
    return names, kinds


def build_feature_matrix(
    df: pd.DataFrame,
    strategic_features: np.ndarray,
    strategic_names: Sequence[str] | None = None,
) -> tuple[np.ndarray, list[str], list[str]]:
    """X (float32, (n, F)), its column names and the kind of each column.

    Columns, in this order: the numeric log state columns (``LOG_FEATURE_COLUMNS``: no
    game_id, metadata or decision column), the 24 position columns, the strategic features
    (names from ``get_all_feature_names()`` unless given), the one-hot of ``num_players``
    (2/3/4) and of the rotated seats (``player{k}_seat_{s}``: slot k sits at absolute seat
    s; all zeros for a slot beyond ``num_players``). Kinds are in :data:`KINDS`.
    """
    n = len(df)
    strategic_features = np.asarray(strategic_features)
    if strategic_features.ndim != 2 or strategic_features.shape[0] != n:
        raise ValueError(f"strategic features of shape {strategic_features.shape} for {n} rows")
    names, kinds = feature_columns(strategic_features.shape[1], strategic_names)
    s_names = names[len(LOG_FEATURE_COLUMNS) + len(POSITION_COLUMNS) : len(names) - NUM_ONEHOT]

    with normal_pages():  # written once, kept: see imitation_learning.per_file.memory_pages
        X = np.zeros((n, len(names)), dtype=np.float32)
    start = 0
    for block in (LOG_FEATURE_COLUMNS, POSITION_COLUMNS):
        stop = start + len(block)
        X[:, start:stop] = df[block].to_numpy()
        start = stop
    stop = start + len(s_names)
    X[:, start:stop] = strategic_features
    start = stop

    num_players = df["num_players"].to_numpy().astype(np.int64)
    rows = np.arange(n)
    for j, count in enumerate(PLAYER_COUNTS):
        X[:, start + j] = num_players == count
    start += len(PLAYER_COUNTS)
    for k in range(C.NUM_PLAYER_SLOTS):
        seat = df[f"player{k}_position"].to_numpy().astype(np.int64)
        present = (k < num_players) & (seat >= 0) & (seat < C.NUM_PLAYER_SLOTS)
        base = start + k * C.NUM_PLAYER_SLOTS
        X[rows[present], base + seat[present]] = 1.0
    assert start + len(SEAT_ONEHOT) == len(names)
    return X, names, kinds


# --- split -------------------------------------------------------------------------------


def _split_counts(num_games: int, ratios: Sequence[float]) -> np.ndarray:
    """Games per split: largest-remainder rounding, then every split with a non-zero ratio
    gets at least one game when there are enough games (taken from the largest split).
    With fewer games than such splits, they are served in order (train, then val, ...)."""
    ratios = np.asarray(ratios, dtype=np.float64)
    if ratios.ndim != 1 or (ratios < 0).any() or ratios.sum() <= 0:
        raise ValueError(f"bad split ratios {ratios.tolist()}")
    ratios = ratios / ratios.sum()
    exact = ratios * num_games
    counts = np.floor(exact).astype(np.int64)
    leftover = num_games - int(counts.sum())
    # Stable: ties in the remainder go to the earlier split.
    order = np.argsort(-(exact - counts), kind="stable")
    counts[order[:leftover]] += 1

    wanted = np.flatnonzero(ratios > 0)
    if num_games < len(wanted):
        counts[:] = 0
        counts[wanted[:num_games]] = 1
        return counts
    for i in wanted:
        if counts[i] == 0:
            counts[np.argmax(counts)] -= 1
            counts[i] = 1
    return counts


def split_by_game(
    game_ids: np.ndarray,
    ratios: Sequence[float] | Mapping[str, float] = (0.8, 0.1, 0.1),
    seed: int = 42,
) -> dict[str, np.ndarray]:
    """Assign every game to train / val / test; returns split -> bool mask over the rows.

    The assignment depends only on the set of game ids and the seed: the unique ids are
    sorted, permuted with ``np.random.default_rng(seed)``, and cut into consecutive runs of
    ``_split_counts`` games (largest-remainder rounding of ratio x number of games). Every
    split with a non-zero ratio gets at least one game when there are at least as many games
    as such splits; with fewer games, train is served first, then val, then test. A game's
    rows all land in the same split.
    """
    if isinstance(ratios, Mapping):
        ratios = [ratios[s] for s in SPLITS]
    if len(ratios) != len(SPLITS):
        raise ValueError(f"need {len(SPLITS)} ratios (train, val, test), got {list(ratios)}")
    game_ids = np.asarray(game_ids)
    unique = np.unique(game_ids)  # sorted
    shuffled = np.random.default_rng(seed).permutation(unique)
    counts = _split_counts(len(unique), ratios)
    which = np.repeat(np.arange(len(SPLITS)), counts)  # split index per shuffled game
    split_of_unique = np.empty(len(unique), dtype=np.int64)
    split_of_unique[np.searchsorted(unique, shuffled)] = which
    split_of_row = split_of_unique[np.searchsorted(unique, game_ids)]
    return {s: split_of_row == i for i, s in enumerate(SPLITS)}


# --- scaler ------------------------------------------------------------------------------


@dataclass
class Moments:
    """Partial statistics of a block of rows, per column, in float64: the row count, the
    mean and M2 (the sum of squared deviations from the mean). Computed in two passes over
    the block (mean, then deviations); merged with Chan et al.'s pairwise formula."""

    count: int
    mean: np.ndarray
    m2: np.ndarray

    @classmethod
    def of_rows(cls, block: np.ndarray) -> Moments:
        values = np.asarray(block, dtype=np.float64)
        if not len(values):
            return cls.empty(values.shape[1])
        mean = values.mean(axis=0)
        squares = values - mean
        np.square(squares, out=squares)
        return cls(len(values), mean, squares.sum(axis=0))

    @classmethod
    def empty(cls, width: int) -> Moments:
        return cls(0, np.zeros(width), np.zeros(width))

    def merged(self, other: Moments) -> Moments:
        """The statistics of both blocks' rows together (Chan et al.)."""
        if not other.count:
            return self
        if not self.count:
            return other
        total = self.count + other.count
        delta = other.mean - self.mean
        mean = self.mean + delta * (other.count / total)
        m2 = self.m2 + other.m2 + delta**2 * (self.count * other.count / total)
        return Moments(total, mean, m2)

    @staticmethod
    def merge_all(moments: Iterable[Moments], width: int) -> Moments:
        """Left fold of :meth:`merged` in the order given."""
        total = Moments.empty(width)
        for m in moments:
            total = total.merged(m)
        return total



@dataclass
class Scaler:
    """Standardisation of some columns of X: ``(x - mean) / scale``.

    ``mean`` and ``scale`` are float64 of length F (all columns); columns not in ``columns``
    have mean 0 and scale 1, so ``(X - mean) / scale`` leaves them exactly as they are.
    """

    mean: np.ndarray
    scale: np.ndarray
    columns: np.ndarray  # int64 indices of the standardised (continuous) columns

    @classmethod
    def fit(cls, X: np.ndarray, rows: np.ndarray, columns: np.ndarray) -> Scaler:
        """Population mean and std of ``X[rows][:, columns]`` (float64, by blocks of
        :data:`CHUNK_ROWS` rows); scale = std, or 1 where std is 0. ``rows``: bool mask or
        indices (the train rows)."""
        idx = np.flatnonzero(rows) if np.asarray(rows).dtype == bool else np.asarray(rows)
        blocks = (X[idx[start : start + CHUNK_ROWS]] for start in range(0, len(idx), CHUNK_ROWS))
        return cls.fit_blocks(blocks, X.shape[1], columns)

    @classmethod
    def fit_blocks(cls, blocks: Iterable[np.ndarray], width: int, columns: np.ndarray) -> Scaler:
        """:meth:`fit` over the train rows given as consecutive blocks of whole rows (all
        ``width`` columns). The same blocks in the same order give the same bits, whether
        they come from X in memory or from a memory-mapped file."""
        columns = np.asarray(columns, dtype=np.int64)
        count, mean, m2 = 0, np.zeros(width), np.zeros(width)
        for rows_block in blocks:
            # whole rows (a contiguous gather), all columns; the others are dropped below
            block = np.asarray(rows_block).astype(np.float64)
            b_count = len(block)
            b_mean = block.mean(axis=0)
            block -= b_mean
            b_m2 = np.einsum("ij,ij->j", block, block)
            # Chan et al. merge of two (count, mean, M2) summaries.
            delta = b_mean - mean
            total = count + b_count
            mean += delta * (b_count / total)
            m2 += b_m2 + delta**2 * (count * b_count / total)
            count = total
            del block, rows_block  # not two float64 blocks at once
        std = np.sqrt(m2 / count) if count else np.zeros(width)
        full_mean = np.zeros(width)
        full_scale = np.ones(width)
        full_mean[columns] = mean[columns]
        full_scale[columns] = np.where(std[columns] > 0, std[columns], 1.0)
        return cls(full_mean, full_scale, columns)

    @classmethod
    def from_moments(cls, moments: Iterable[Moments], width: int, columns: np.ndarray) -> Scaler:
        """The scaler of the rows whose partial statistics are ``moments`` (each over the
        ``columns`` only, e.g. one per game), merged in the order given: the same summaries
        in the same order give the same bits, however the rows were partitioned."""
        columns = np.asarray(columns, dtype=np.int64)
        total = Moments.merge_all(moments, len(columns))
        std = np.sqrt(total.m2 / total.count) if total.count else np.zeros(len(columns))
        full_mean = np.zeros(width)
        full_scale = np.ones(width)
        full_mean[columns] = total.mean
        full_scale[columns] = np.where(std > 0, std, 1.0)
        return cls(full_mean, full_scale, columns)

    def transform(self, block: np.ndarray) -> np.ndarray:
        """A standardised float32 copy of ``block`` (rows of X), computed in float64.
        Other columns have mean 0 and scale 1: (x - 0) / 1 gives them back bit for bit.
        Elementwise, a few hundred rows at a time (float64 temporaries that stay in the
        processor's cache): the same bits as one pass over the whole block."""
        block = np.asarray(block)
        out = np.empty(block.shape, dtype=np.float32)
        step = max(1, TRANSFORM_BYTES // max(1, 8 * block.shape[-1]))
        work = np.empty((min(step, len(block)), *block.shape[1:]), dtype=np.float64)
        for start in range(0, len(block), step):
            rows = block[start : start + step]
            part = work[: len(rows)]
            np.subtract(rows, self.mean, out=part)  # the values made float64 exactly, first
            part /= self.scale
            out[start : start + step] = part
        return out

    def to_arrays(self) -> dict[str, np.ndarray]:
        continuous = np.zeros(len(self.mean), dtype=bool)
        continuous[self.columns] = True
        return {
            "mean": self.mean,
            "scale": self.scale,
            "columns": self.columns,
            "continuous": continuous,
        }

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray]) -> Scaler:
        return cls(
            np.asarray(arrays["mean"]),
            np.asarray(arrays["scale"]),
            np.asarray(arrays["columns"], dtype=np.int64),
        )


# --- writing -----------------------------------------------------------------------------


def fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_npy_rows(path: Path, X: np.ndarray, rows: np.ndarray, scaler: Scaler | None) -> None:
    """``X[rows]`` (scaled) as a .npy file, block by block: never a second copy of X.
    Same bytes as ``np.save`` of the whole array."""
    idx = np.flatnonzero(rows)
    header = {
        "descr": np.lib.format.dtype_to_descr(np.dtype(np.float32)),
        "fortran_order": False,
        "shape": (len(idx), X.shape[1]),
    }
    with open(path, "wb") as fh:
        np.lib.format.write_array_header_1_0(fh, header)
        for start in range(0, len(idx), CHUNK_ROWS):
            block = X[idx[start : start + CHUNK_ROWS]]
            block = scaler.transform(block) if scaler is not None else block.astype(np.float32)
            fh.write(memoryview(np.ascontiguousarray(block)).cast("B"))
        fh.flush()
        os.fsync(fh.fileno())


def _write_npz(path: Path, arrays: Mapping[str, np.ndarray], compress: bool = True) -> None:
    """A .npz that ``np.load`` reads, with fixed timestamps so equal arrays give equal bytes
    (``np.savez`` stamps each member with the current time)."""
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with open(path, "wb") as fh:
        with zipfile.ZipFile(fh, "w", compression=method, allowZip64=True) as zf:
            for name, arr in arrays.items():
                buf = io.BytesIO()
                np.lib.format.write_array(buf, np.ascontiguousarray(arr), allow_pickle=False)
                info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
                info.compress_type = method
                info.external_attr = 0o644 << 16
                # level 1: fast, and labels / masks still shrink several-fold
                zf.writestr(info, buf.getbuffer(), compresslevel=1)
        fh.flush()
        os.fsync(fh.fileno())


def _write_json(path: Path, obj) -> None:
    text = json.dumps(obj, indent=2, sort_keys=False, default=_json_default, allow_nan=False)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def _json_default(obj):
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    return str(obj)


def is_dataset_dir(path: Path) -> bool:
    return (path / "stats.json").exists() and (path / "feature_names.json").exists()


class AtomicDir:
    """A temporary sibling folder that replaces ``target`` on success.

    Everything is written into ``.<name>.tmp-XXXX`` next to ``target``; on success the
    previous dataset is renamed to ``.<name>.old-XXXX``, the new folder renamed to
    ``target`` and the old one deleted. ``target`` is therefore always either the previous
    complete dataset or the new complete one. If the process dies between the two renames,
    ``target`` is absent and the previous dataset sits intact in ``.<name>.old-*``; the next
    save puts it back first. On an error the temporary folder is removed; one left by a
    killed process is never read (hidden name) and is removed by the next save. The
    folder is locked (``flock``) while its save runs, so that a save started meanwhile
    for the same target does not take it for a dead one's (the lock dies with the process).
    """

    def __init__(self, target: Path):
        self.target = Path(target)
        self.parent = self.target.parent
        self.prefix = f".{self.target.name}."
        self.tmp: Path | None = None
        self._lock: int | None = None

    def __enter__(self) -> Path:
        self.parent.mkdir(parents=True, exist_ok=True)
        if self.target.exists() and not (
            self.target.is_dir()
            and (is_dataset_dir(self.target) or not any(self.target.iterdir()))
        ):
            raise FileExistsError(
                f"{self.target} exists and does not hold a dataset; refusing to replace it"
            )
        if not self.target.exists():
            # a save killed between its two renames: restore the previous dataset
            for old in sorted(self.parent.glob(self.prefix + "old-*")):
                if is_dataset_dir(old):
                    os.rename(old, self.target)
                    break
        for stale in self.parent.glob(self.prefix + "tmp-*"):
            lock = _try_lock(stale)
            if lock is not None:  # no save holds it: left by a killed process
                try:
                    shutil.rmtree(stale, ignore_errors=True)
                finally:
                    os.close(lock)
        self.tmp = Path(tempfile.mkdtemp(prefix=self.prefix + "tmp-", dir=self.parent))
        self._lock = _try_lock(self.tmp)
        return self.tmp

    def __exit__(self, exc_type, exc, tb) -> bool:
        assert self.tmp is not None
        try:
            return self._finish(exc_type)
        finally:
            if self._lock is not None:
                os.close(self._lock)
                self._lock = None

    def _finish(self, exc_type) -> bool:
        assert self.tmp is not None
        if exc_type is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            return False
        try:
            os.chmod(self.tmp, 0o755)  # mkdtemp makes it 0700
            fsync_path(self.tmp)
            old: Path | None = None
            if self.target.exists():
                old = Path(tempfile.mkdtemp(prefix=self.prefix + "old-", dir=self.parent))
                os.rmdir(old)
                os.rename(self.target, old)
            try:
                os.rename(self.tmp, self.target)
            except BaseException:
                if old is not None:
                    os.rename(old, self.target)  # put the previous dataset back
                raise
            fsync_path(self.parent)
        except BaseException:
            shutil.rmtree(self.tmp, ignore_errors=True)
            raise
        for stale in self.parent.glob(self.prefix + "old-*"):
            shutil.rmtree(stale, ignore_errors=True)
        return False


def _try_lock(folder: Path) -> int | None:
    """An exclusive ``flock`` on ``folder`` (its open descriptor), or None if another
    process holds one (or the folder is gone). Where ``flock`` is missing, always granted."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return None
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock, as before
        return fd
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def _package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for pkg in ("numpy", "pandas", "dask", "distributed"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = "not installed"
    return versions


def _file_sizes(paths: Iterable[str]) -> list[dict]:
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
    label_counts: dict[str, dict] = {}
    mask_stats: dict[str, dict] = {}
    for head, n_classes in C.HEADS.items():
        lab = np.asarray(labels[head]).astype(np.int64)
        counts = np.bincount(lab + 1, minlength=n_classes + 1)
        label_counts[head] = {"not_applicable": int(counts[0]), "classes": counts[1:].tolist()}
        m = np.asarray(masks[head])
        legal = m.sum(axis=1, dtype=np.int64)
        mask_stats[head] = {
            "mean_legal_classes": float(legal.mean()) if len(legal) else 0.0,
            "min_legal_classes": int(legal.min()) if len(legal) else 0,
            "max_legal_classes": int(legal.max()) if len(legal) else 0,
            "legal_rate_per_class": (
                m.mean(axis=0, dtype=np.float64).round(6).tolist() if len(m) else [0.0] * n_classes
            ),
        }
    return label_counts, mask_stats


def _rows_by_players(game_ids: np.ndarray, num_players: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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


def save_dataset(
    out_dir: str | os.PathLike,
    *,
    X: np.ndarray,
    scaler: Scaler,
    **fields,
) -> Path:
    """Write the dataset atomically to ``out_dir`` (see the module docstring for the files).

    ``X`` is the UNSCALED feature matrix of all rows; ``scaler`` is applied while each
    split is written. ``fields`` are the keyword arguments of :func:`write_dataset` other
    than ``write_features`` (``feature_names``, ``column_kinds``, ``split_masks``: split ->
    bool mask over the rows of X, ``labels`` / ``masks``: head -> arrays over the same rows,
    ``game_ids``, ``num_players``, and optionally ``input_files``, ``rejections``
    (``Rejection.to_dict()`` records), ``rows_read``, ``config``, ``timings``). Writing
    the same inputs twice gives the same bytes. Returns ``out_dir``.
    """
    if X.shape[1] != len(fields["feature_names"]):
        raise ValueError(f"X has {X.shape[1]} columns, {len(fields['feature_names'])} names")

    def write_features(tmp: Path) -> Scaler:
        for split in SPLITS:
            sel = np.asarray(fields["split_masks"][split], dtype=bool)
            _write_npy_rows(tmp / f"X_{split}.npy", X, sel, scaler)
        return scaler

    return write_dataset(out_dir, write_features=write_features, **fields)


def write_dataset(
    out_dir: str | os.PathLike,
    *,
    write_features: Callable[[Path], Scaler],
    feature_names: Sequence[str],
    column_kinds: Sequence[str],
    split_masks: Mapping[str, np.ndarray],
    labels: Mapping[str, np.ndarray],
    masks: Mapping[str, np.ndarray],
    game_ids: np.ndarray,
    num_players: np.ndarray,
    input_files: Sequence[str] = (),
    rejections: Sequence[Mapping] = (),
    rows_read: int | None = None,
    config: Mapping | None = None,
    timings: Mapping[str, float] | None = None,
) -> Path:
    """The save of a dataset held in memory (labels, masks and X's writer).

    Everything goes into a temporary sibling folder swapped in at the end (``AtomicDir``).
    ``write_features(tmp)`` writes ``tmp/X_{split}.npy`` (standardised float32, rows in
    global order) and returns the scaler it applied; then the labels, masks, names, scaler,
    rejections and stats are written. ``game_ids`` / ``num_players`` / ``labels`` /
    ``masks`` / ``split_masks`` are over all the rows kept.
    """
    stats = dataset_stats(split_masks, game_ids, num_players, labels, masks)
    with AtomicDir(Path(out_dir)) as tmp:
        scaler = write_features(tmp)
        for split in SPLITS:
            sel = np.asarray(split_masks[split], dtype=bool)
            write_labels_and_masks(
                tmp,
                split,
                {h: np.asarray(labels[h])[sel] for h in C.HEADS},
                {h: np.asarray(masks[h])[sel] for h in C.HEADS},
            )
        write_metadata(
            tmp,
            stats=stats,
            feature_names=feature_names,
            column_kinds=column_kinds,
            scaler=scaler,
            rows_kept=len(game_ids),
            input_files=input_files,
            rejections=rejections,
            rows_read=rows_read,
            config=config,
            timings=timings,
        )
    return Path(out_dir)


def write_labels_and_masks(
    folder: Path, split: str, labels: Mapping[str, np.ndarray], masks: Mapping[str, np.ndarray]
) -> None:
    """``labels_{split}.npz`` (int16) and ``masks_{split}.npz`` (bool) of one split's rows."""
    _write_npz(folder / f"labels_{split}.npz", {h: labels[h].astype(np.int16) for h in C.HEADS})
    _write_npz(folder / f"masks_{split}.npz", {h: masks[h].astype(bool) for h in C.HEADS})


def write_metadata(
    folder: Path,
    *,
    stats: Mapping,
    feature_names: Sequence[str],
    column_kinds: Sequence[str],
    scaler: Scaler,
    rows_kept: int,
    input_files: Sequence[str] = (),
    rejections: Sequence[Mapping] = (),
    rows_read: int | None = None,
    config: Mapping | None = None,
    timings: Mapping[str, float] | None = None,
) -> None:
    """The small files of a dataset: names, classes, scaler, rejections and ``stats.json``
    (``stats``: splits, label counts and mask statistics, as :func:`dataset_stats` gives
    them; the rest is added here). ``stats.json`` is written last: it marks a dataset."""
    feature_names = list(feature_names)
    column_kinds = list(column_kinds)
    if len(column_kinds) != len(feature_names):
        raise ValueError(f"{len(feature_names)} feature names but {len(column_kinds)} kinds")
    rejections = [dict(r) for r in rejections]
    stats = dict(stats)
    stats["num_features"] = len(feature_names)
    stats["column_kinds"] = {k: int(column_kinds.count(k)) for k in KINDS}
    stats["feature_kinds"] = dict(zip(feature_names, column_kinds, strict=True))
    stats["rows_kept"] = int(rows_kept)
    stats["rows_read"] = int(rows_read) if rows_read is not None else None
    stats["rows_rejected"] = int(sum(r.get("rows", 1) for r in rejections))
    stats["input_files"] = _file_sizes(input_files)
    stats["rejected_files"] = [r for r in rejections if r.get("line") is None]
    stats["rejected_rows"] = [r for r in rejections if r.get("line") is not None]
    stats["config"] = config
    stats["versions"] = _package_versions()
    stats["timings"] = dict(timings or {})

    _write_json(folder / "feature_names.json", feature_names)
    _write_json(folder / "label_classes.json", C.class_tables())
    _write_npz(folder / "scaler.npz", scaler.to_arrays(), compress=False)
    _write_json(folder / "rejections.json", rejections)
    _write_json(folder / "stats.json", stats)  # last: its presence marks a dataset


def load_dataset(path: str | os.PathLike, *, mmap: bool = False) -> dict:
    """Read a saved dataset; the keys follow the file names.

    ``X_{train,val,test}`` (float32, standardised), ``labels_{split}`` and ``masks_{split}``
    (head -> array dicts), ``feature_names``, ``label_classes``, ``scaler``
    (:class:`Scaler`), ``stats``, ``rejections``. ``mmap=True`` memory-maps the X arrays.
    """
    path = Path(path)
    if not is_dataset_dir(path):
        raise FileNotFoundError(f"no dataset in {path}")
    out: dict = {}
    for split in SPLITS:
        out[f"X_{split}"] = np.load(
            path / f"X_{split}.npy", mmap_mode="r" if mmap else None, allow_pickle=False
        )
        for part in ("labels", "masks"):
            with np.load(path / f"{part}_{split}.npz", allow_pickle=False) as z:
                out[f"{part}_{split}"] = {h: z[h] for h in z.files}
    with np.load(path / "scaler.npz", allow_pickle=False) as z:
        out["scaler"] = Scaler.from_arrays({k: z[k] for k in z.files})
    for name in ("feature_names", "label_classes", "stats", "rejections"):
        out[name] = json.loads((path / f"{name}.json").read_text(encoding="utf-8"))
    return out
