"""The cache of per-file results: a re-run processes only the game files it has not seen.

Each game file's share of the job's phase 1 (:class:`Piece`: the file's rows of X,
unscaled, their labels, masks and game groups, the float64 statistics of each of its games,
its game ids, row counts and rejections: what
:func:`imitation_learning.partition_rows.process_partition_rows` makes of the file's result
of the per-file step) is kept in a cache folder, one entry per file, under a key made of

- the **content** of the file: the SHA-256 of its bytes (never its name, size or mtime);
- the **configuration keys that change the result** (:data:`RESULT_CONFIG_KEYS`: the
  reader's settings, the masking and feature switches); every other key is listed in
  :data:`OTHER_CONFIG_KEYS`, and a test fails when a key of the schema is in neither, so a
  new key cannot be forgotten;
- the **version of the per-file step** (:func:`step_version`): the SHA-256 of the source
  of every module of the project imported by the step and by what turns its result into
  an entry (the import graph walked from :data:`VERSION_ROOTS`, module and function-level
  imports alike, every package ``__init__`` on the way), of the game data files
  (``splendor/data``), of this entry format and of the Python, numpy and pandas versions.
  Any edit of those sources gives a new version, hence new keys: nothing to remember.

A partition (:func:`~imitation_learning.partition_rows.process_partition_rows`) looks each
of its files up (:class:`Lookup`); the files not found go through the per-file step
together, as without a cache, and their shares are stored; the partition is then the
shares in path order. A file's rows of X and its games' statistics depend on its own rows
only, so the arrays are those of a run without a cache, bit for bit, and so are the saved
files (the tests compare them).

An entry (``<cache>/entries/<key[:2]>/<key>.entry``) is one file::

    MAGIC | header length (8 bytes, little-endian) | header (JSON) | arrays | CRC-32

The header holds the key, the row counts, the game ids, the file's rejections (without
the file's name: a renamed copy of a file hits the same entry, and its report names the
new path) and the arrays' layout; the arrays are raw, 64-byte aligned (masks as packed
bits), read back as views of the entry's bytes (no pickle). The last 4 bytes are the
CRC-32 of everything before them (damage, not tampering: the cache folder is trusted).

Safety: an entry is written under a unique temporary name in its folder, then renamed over
the final name (``os.replace``), so a reader (another run sharing the cache) sees either
no entry or a whole one. A damaged or truncated entry (wrong magic, length, checksum or
key) is reported, never used, and replaced by the result computed again. A file whose
bytes change while it is processed (hashed before and after) is not stored, nor one that
cannot be read. The cache is an optimisation only: an entry that cannot be written is
counted and the run goes on.

A whole run is also recorded (:func:`record_output`): when a run's inputs, configuration
and code (:func:`run_key`) are those of the run that saved its output folder, and the
folder's files are untouched since, the output is left as it is
(:func:`output_up_to_date`).
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib.util
import json
import mmap
import os
import sys
import time
import uuid
import zlib
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from splendor.errors import Rejection

#: The entry format (part of the step version).
FORMAT = 3
MAGIC = b"SPLENDOR-IL-RC\x00\x02"
_CHECK = 4  # bytes of the CRC-32 at the end of an entry
ENTRIES = "entries"
SUFFIX = ".entry"

#: The configuration keys that change a file's result (read by the per-file step).
RESULT_CONFIG_KEYS = (
    "reader.blind_reserve_base",
    "preprocessing.enable_masking",
    "preprocessing.enable_feature_engineering",
)
#: Every other key of the configuration: they change how files are found, split, scaled,
#: scheduled or reported, never one file's result. (``preprocessing.strict`` stops the run
#: on a rejection; the cached rejections are checked against it.)
OTHER_CONFIG_KEYS = (
    "seed",
    "data.data_root",
    "data.processed_dir",
    "data.train_ratio",
    "data.val_ratio",
    "data.test_ratio",
    "preprocessing.num_workers",
    "preprocessing.scheduler_address",
    "preprocessing.dashboard_address",
    "preprocessing.files_per_partition",
    "preprocessing.max_games",
    "preprocessing.report",
    "preprocessing.strict",
    "preprocessing.out_of_core",
    "preprocessing.no_workers_timeout_s",
    "preprocessing.durable",
)

#: The modules whose import graph makes the step version: the per-file step, what makes a
#: file's rows of X and its games' statistics from its result (``partition_rows``, which
#: brings in ``dataset``) and this module (the entry format).
VERSION_ROOTS = (
    "imitation_learning.per_file.file_processing",
    "imitation_learning.partition_rows",
    "imitation_learning.result_cache",
)
#: Only the project's own packages are followed (libraries count by their version).
PROJECT_PACKAGES = ("imitation_learning", "splendor")
#: Folders of data files read by the step (hashed with the sources).
DATA_FOLDERS = (("splendor", "data"),)


def default_cache_dir(output_dir: str | os.PathLike) -> Path:
    """The cache folder beside the output: ``data/processed`` -> ``data/processed.cache``."""
    out = Path(os.path.abspath(os.fspath(output_dir)))
    return out.with_name(out.name + ".cache")


# --------------------------------------------------------------------------- the key


def config_key(config: Mapping) -> str:
    """The part of the key taken from the configuration (:data:`RESULT_CONFIG_KEYS`)."""
    values = {}
    for dotted in RESULT_CONFIG_KEYS:
        node = config
        for part in dotted.split("."):
            node = node[part]
        values[dotted] = node
    return json.dumps(values, sort_keys=True)


def step_modules(roots: Sequence[str] = VERSION_ROOTS) -> dict[str, str]:
    """module name -> source path of every project module the ``roots`` import, directly
    or not (their packages' ``__init__`` included), found by reading their sources."""
    found: dict[str, str] = {}
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name in found or name.split(".")[0] not in PROJECT_PACKAGES:
            continue
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):  # ``from module import name``: not a module
            continue
        if spec is None or not spec.origin or not spec.origin.endswith(".py"):
            continue
        found[name] = spec.origin
        parts = name.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]  # the packages
        is_package = spec.submodule_search_locations is not None
        package = name if is_package else ".".join(parts[:-1])
        tree = ast.parse(Path(spec.origin).read_bytes(), spec.origin)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                todo += [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    module = ".".join(base + ([node.module] if node.module else []))
                else:
                    module = node.module or ""
                todo.append(module)
                # ``from package import module`` imports a module too
                todo += [f"{module}.{alias.name}" for alias in node.names if alias.name != "*"]
    return found


def version_of(sources: Mapping[str, str | os.PathLike], data_files: Iterable[Path] = ()) -> str:
    """SHA-256 of the sources (name and bytes, in name order), the data files, the entry
    format and the versions of the libraries the results are made of."""
    import pandas

    h = hashlib.sha256(f"format {FORMAT}\0".encode())
    libraries = f"python {sys.version_info[:2]} numpy {np.__version__} pandas {pandas.__version__}"
    h.update(libraries.encode() + b"\0")
    for name in sorted(sources):
        h.update(f"{name}\0".encode() + hashlib.sha256(Path(sources[name]).read_bytes()).digest())
    for path in sorted(Path(p) for p in data_files):
        h.update(f"{path.name}\0".encode() + hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()


def _data_files() -> list[Path]:
    out = []
    for package, folder in DATA_FOLDERS:
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            continue
        for location in spec.submodule_search_locations:
            out += [p for p in (Path(location) / folder).glob("*") if p.is_file()]
    return out


@functools.cache
def step_version() -> str:
    """The version of the per-file step in this process (see the module docstring)."""
    return version_of(step_modules(), _data_files())


def content_hash(path: str) -> str | None:
    """SHA-256 (hex) of the file's bytes; None when it cannot be read (not cached: the
    step reports it)."""
    h = hashlib.sha256()
    try:
        if "://" in path:
            import fsspec

            with fsspec.open(path, "rb") as f:
                data = f.read()
            h.update(data)
        else:
            with open(path, "rb", buffering=0) as f:
                while chunk := f.read(1 << 22):
                    h.update(chunk)
    except (OSError, ValueError):
        return None
    return h.hexdigest()


def entry_key(content: str, config_part: str, version: str) -> str:
    return hashlib.sha256(f"{content}\0{config_part}\0{version}".encode()).hexdigest()


def entry_path(folder: str | os.PathLike, key: str) -> Path:
    return Path(folder) / ENTRIES / key[:2] / f"{key}{SUFFIX}"


# --------------------------------------------------------------------------- the entries


class DamagedEntry(ValueError):
    """An entry that cannot be trusted (never used)."""


@dataclass(frozen=True)
class MappedRows:
    """A file's rows of X in its cache entry, mapped only while they are used: a partition
    waiting for its writes holds no file open (there may be thousands)."""

    entry: str
    offset: int  # of the rows in the entry, bytes
    shape: tuple[int, int]
    stat: tuple[int, int, int, int]  # device, inode, size, mtime (ns) of the entry verified
    dtype: str = "<f4"  # as stored: float32, or int8 when that holds every value exactly

    def __len__(self) -> int:
        return self.shape[0]

    def load(self) -> np.ndarray | None:
        """The rows (a read-only view of the mapped entry), or None when the entry is no
        longer the file whose checksum was verified (replaced or removed since)."""
        if not self.shape[0]:
            return np.empty(self.shape, dtype=np.float32)
        try:
            with open(self.entry, "rb") as f:
                st = os.fstat(f.fileno())
                if (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns) != self.stat:
                    return None
                data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except OSError:
            return None
        count = self.shape[0] * self.shape[1]
        rows = np.frombuffer(data, np.dtype(self.dtype), count, self.offset)
        return as_float32(rows.reshape(self.shape))


@dataclass
class Piece:
    """One file's share of a partition, as :func:`process_partition_rows` assembles it
    (what an entry holds). ``row_group`` and ``groups.file`` are local to the file (its
    game groups numbered from 0, file 0)."""

    rows_read: int
    game_ids: list[int]  # the file index's game ids, in order of appearance
    rejections: list[Rejection]
    file_ok: bool
    strategic_width: int
    X: np.ndarray | MappedRows  # float32 (n, F), unscaled
    row_group: np.ndarray  # int32 (n,)
    labels: dict[str, np.ndarray]
    masks: dict[str, np.ndarray]
    group_game_id: np.ndarray
    group_rows: np.ndarray
    group_mean: np.ndarray
    group_m2: np.ndarray

    @property
    def rows(self) -> int:
        return len(self.X)


_ALIGN = 64


def compact_rows(X: np.ndarray) -> np.ndarray:
    """X's rows as stored in an entry: int8 when every value converts to int8 and back to
    the very same float32 bits (X before scaling holds counts, flags, positions and small
    differences: a quarter of the bytes), else X itself."""
    with np.errstate(invalid="ignore"):  # nan, inf or out of range: caught by the check
        small = X.astype(np.int8)
    same = np.array_equal(small.astype(np.float32).view(np.uint32), X.view(np.uint32))
    return small if same else X


def as_float32(rows: np.ndarray) -> np.ndarray:
    """Stored rows back as the float32 rows they were made from (exact)."""
    return rows if rows.dtype == np.float32 else rows.astype(np.float32)


def encode(piece: Piece, key: str) -> list[bytes | memoryview]:
    """The entry of ``piece``, as the buffers to write one after the other."""
    arrays: dict[str, np.ndarray] = {
        "X": compact_rows(np.ascontiguousarray(piece.X, dtype=np.float32)),
        "row_group": piece.row_group,
        "group_game_id": piece.group_game_id,
        "group_rows": piece.group_rows,
        "group_mean": piece.group_mean,
        "group_m2": piece.group_m2,
    }
    classes = {}
    for h, a in piece.labels.items():
        arrays[f"label:{h}"] = a
    for h, m in piece.masks.items():
        arrays[f"mask:{h}"] = np.packbits(m, axis=1)
        classes[h] = int(m.shape[1])
    layout, offset = [], 0
    for name, a in arrays.items():
        layout.append([name, a.dtype.str, list(a.shape), offset])
        offset += -(-a.nbytes // _ALIGN) * _ALIGN
    header = json.dumps(
        {
            "key": key,
            "rows_read": int(piece.rows_read),
            "game_ids": [int(g) for g in piece.game_ids],
            "file_ok": bool(piece.file_ok),
            "strategic_width": int(piece.strategic_width),
            "rejections": [[r.line, r.column, r.reason, r.rows] for r in piece.rejections],
            "mask_classes": classes,
            "arrays": layout,
            "payload": offset,
        }
    ).encode()
    head = MAGIC + len(header).to_bytes(8, "little") + header
    head += bytes(-len(head) % _ALIGN)
    buffers: list[bytes | memoryview] = [head]
    for a in arrays.values():
        data = memoryview(np.ascontiguousarray(a).reshape(-1).view(np.uint8))
        buffers.append(data)
        if -len(data) % _ALIGN:
            buffers.append(bytes(-len(data) % _ALIGN))
    crc = 0
    for b in buffers:
        crc = zlib.crc32(b, crc)
    buffers.append(crc.to_bytes(_CHECK, "little"))
    return buffers


def decode(data, path: str, key: str, *, x_offset: list | None = None) -> Piece:
    """The piece stored in an entry, for the file ``path``; :class:`DamagedEntry` if the
    entry is not whole and sound. Its arrays are read-only views of ``data`` (a buffer);
    ``x_offset`` (a list) receives the offset of X's rows in the entry and their stored
    dtype, and X is then left as stored (the caller maps it later); without it, X is the
    float32 rows (a copy when they were stored as int8)."""
    view = memoryview(data)
    if len(data) < len(MAGIC) + 8 + _CHECK or bytes(view[: len(MAGIC)]) != MAGIC:
        raise DamagedEntry("not a cache entry (bad magic or truncated)")
    if zlib.crc32(view[:-_CHECK]) != int.from_bytes(view[-_CHECK:], "little"):
        raise DamagedEntry("checksum mismatch (damaged or truncated)")
    start = len(MAGIC) + 8
    size = int.from_bytes(view[len(MAGIC) : start], "little")
    try:
        header = json.loads(bytes(view[start : start + size]))
        if header["key"] != key:
            raise DamagedEntry("entry holds another key")
        base = start + size
        base += -base % _ALIGN
        if base + header["payload"] + _CHECK != len(data):
            raise DamagedEntry("entry's length does not match its header")
        arrays = {}
        for name, dtype, shape, offset in header["arrays"]:
            if name == "X" and x_offset is not None:
                x_offset += [base + offset, dtype]
            dt = np.dtype(dtype)
            count = int(np.prod(shape, dtype=np.int64))
            arrays[name] = np.frombuffer(data, dt, count, base + offset).reshape(shape)
        classes = header["mask_classes"]
        return Piece(
            rows_read=int(header["rows_read"]),
            game_ids=list(header["game_ids"]),
            rejections=[Rejection(path, *r) for r in header["rejections"]],
            file_ok=bool(header["file_ok"]),
            strategic_width=int(header["strategic_width"]),
            X=arrays["X"] if x_offset is not None else as_float32(arrays["X"]),
            row_group=arrays["row_group"],
            labels={n[6:]: a for n, a in arrays.items() if n.startswith("label:")},
            masks={
                n[5:]: np.unpackbits(a, axis=1, count=classes[n[5:]]).view(bool)
                for n, a in arrays.items()
                if n.startswith("mask:")
            },
            group_game_id=arrays["group_game_id"],
            group_rows=arrays["group_rows"],
            group_mean=arrays["group_mean"],
            group_m2=arrays["group_m2"],
        )
    except DamagedEntry:
        raise
    except Exception as exc:  # a sound checksum over a header that does not add up
        raise DamagedEntry(f"unreadable entry ({type(exc).__name__}: {exc})") from None


def storable(rejections: Sequence[Rejection], path: str) -> bool:
    """Whether a file's result can be kept under its content alone: none of its
    rejections names the path in its text (it would be wrong for a renamed copy)."""
    return all(r.file == path and path not in r.reason for r in rejections)


def read_entry(folder: str | os.PathLike, key: str, path: str) -> Piece | None:
    """The stored piece (None if absent); :class:`DamagedEntry` if it is damaged.

    The entry is mapped, not read: its arrays are views of the file's pages in the system's
    file cache. Entries are only ever replaced by a rename, never written in place, so a
    mapped entry keeps its bytes even when another run replaces or prunes it meanwhile."""
    entry = entry_path(folder, key)
    try:
        with open(entry, "rb") as f:
            st = os.fstat(f.fileno())
            if st.st_size < len(MAGIC) + 8 + _CHECK:
                raise DamagedEntry("not a cache entry (bad magic or truncated)")
            data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise DamagedEntry(f"cannot read the entry ({exc})") from None
    where: list[int] = []
    piece = decode(data, path, key, x_offset=where)
    # nothing keeps the mapping (and its file descriptor) once this returns: the small
    # arrays are copied, X's rows are mapped again when they are written
    piece.X = MappedRows(
        str(entry),
        where[0],
        tuple(piece.X.shape),
        (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns),
        where[1],
    )
    piece.row_group = piece.row_group.copy()
    piece.labels = {h: a.copy() for h, a in piece.labels.items()}
    for name in ("group_game_id", "group_rows", "group_mean", "group_m2"):
        setattr(piece, name, getattr(piece, name).copy())
    del data
    return piece


def write_entry(folder: str | os.PathLike, key: str, buffers: Sequence) -> None:
    """Write an entry atomically: a unique temporary file in the entry's folder, renamed
    over the final name (a concurrent reader sees no entry or a whole one)."""
    final = entry_path(folder, key)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f"{final.name}.tmp-{uuid.uuid4().hex}")
    try:
        with open(tmp, "xb") as f:
            for b in [buffers] if isinstance(buffers, (bytes, memoryview)) else buffers:
                f.write(b)
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


# --------------------------------------------------------------------------- the lookups


@dataclass(frozen=True)
class CacheSpec:
    """What a worker needs to use the cache: its folder (seen by every worker at this
    path) and the configuration's part of the key."""

    folder: str
    config_part: str


@dataclass
class CacheCounts:
    """What the cache did for a block of files."""

    cached: int = 0
    processed: int = 0
    not_stored: int = 0
    damaged: list[str] = field(default_factory=list)  # "<file>: <why>" per damaged entry

    def add(self, other: CacheCounts) -> None:
        self.cached += other.cached
        self.processed += other.processed
        self.not_stored += other.not_stored
        self.damaged += other.damaged


class Lookup:
    """A partition's use of the cache on a worker: :meth:`find` each file, :meth:`store`
    the pieces of those that were not found, the counts in :attr:`counts`."""

    def __init__(self, spec: CacheSpec):
        self.spec = spec
        self.version = step_version()
        self.counts = CacheCounts()

    def find(self, path: str) -> tuple[Piece | None, tuple[str, str] | None]:
        """(the stored piece or None, (key, content hash) or None if the file cannot be
        read: it is then processed and never stored)."""
        content = content_hash(path)
        if content is None:
            return None, None
        key = entry_key(content, self.spec.config_part, self.version)
        try:
            piece = read_entry(self.spec.folder, key, path)
        except DamagedEntry as exc:
            self.counts.damaged.append(f"{path}: {exc}")
            piece = None
        if piece is not None:
            self.counts.cached += 1
        return piece, (key, content)

    def store(self, path: str, found: tuple[str, str] | None, piece: Piece) -> Piece | None:
        """Keep a freshly computed piece, unless the file changed under the step (hashed
        again) or its report names its path; a write that fails is only counted. Returns
        the piece as read back from its entry (None if not stored)."""
        self.counts.processed += 1
        if found is None or not storable(piece.rejections, path) or content_hash(path) != found[1]:
            self.counts.not_stored += 1
            return None
        try:
            write_entry(self.spec.folder, found[0], encode(piece, found[0]))
            return read_entry(self.spec.folder, found[0], path)
        except (OSError, DamagedEntry):
            self.counts.not_stored += 1
            return None


# --------------------------------------------------------------------------- prune, size


def cache_size(folder: str | os.PathLike) -> tuple[int, int]:
    """(entries, bytes) in the cache folder."""
    n = size = 0
    for path in (Path(folder) / ENTRIES).glob(f"*/*{SUFFIX}"):
        try:
            size += path.stat().st_size
            n += 1
        except FileNotFoundError:
            pass
    return n, size


def current_keys(paths: Sequence[str], config: Mapping, threads: int | None = None) -> set[str]:
    """The keys of ``paths`` under ``config`` and this step version (the files hashed by a
    few threads: hashlib works outside the GIL)."""
    part, version = config_key(config), step_version()
    with ThreadPoolExecutor(threads or min(8, os.cpu_count() or 1)) as pool:
        contents = list(pool.map(content_hash, paths))
    return {entry_key(c, part, version) for c in contents if c is not None}


#: A temporary file older than this is a leftover of a stopped run (prune removes it).
STALE_TMP_S = 3600.0


def prune(folder: str | os.PathLike, keep: set[str]) -> dict[str, int]:
    """Remove every entry whose key is not in ``keep`` (and old temporary leftovers)."""
    out = {"kept": 0, "kept_bytes": 0, "removed": 0, "removed_bytes": 0}
    now = time.time()
    for path in sorted((Path(folder) / ENTRIES).glob("*/*")):
        try:
            st = path.stat()
        except FileNotFoundError:
            continue
        if path.name.endswith(SUFFIX):
            if path.name[: -len(SUFFIX)] in keep:
                out["kept"] += 1
                out["kept_bytes"] += st.st_size
                continue
        elif ".tmp-" not in path.name or now - st.st_mtime < STALE_TMP_S:
            continue  # not ours, or a write in progress
        path.unlink(missing_ok=True)
        out["removed"] += 1
        out["removed_bytes"] += st.st_size
    return out


# --------------------------------------------------------------------------- whole runs

#: The cache's records of the outputs it saw saved (one per output folder).
OUTPUTS = "outputs"
#: The modules whose import graph makes a saved dataset (the job's version).
JOB_ROOTS = (
    "imitation_learning.data_preprocessing",
    "imitation_learning.assembly",
    *VERSION_ROOTS,
)


@functools.cache
def job_version() -> str:
    """The version of the whole job in this process: the sources of its import graph and
    the versions of the libraries and interpreter that ``stats.json`` records."""
    import platform
    from importlib import metadata

    libraries = [platform.python_version()]
    for pkg in ("numpy", "pandas", "dask", "distributed"):
        try:
            libraries.append(f"{pkg} {metadata.version(pkg)}")
        except metadata.PackageNotFoundError:
            libraries.append(f"{pkg} -")
    return hashlib.sha256(
        (version_of(step_modules(JOB_ROOTS), _data_files()) + "\0".join(libraries)).encode()
    ).hexdigest()


def hash_files(paths: Sequence[str], threads: int | None = None) -> list[str | None]:
    """:func:`content_hash` of each path, by a few threads (hashlib runs outside the GIL)."""
    with ThreadPoolExecutor(threads or min(8, os.cpu_count() or 1)) as pool:
        return list(pool.map(content_hash, paths))


def run_key(paths: Sequence[str], contents: Sequence[str | None], config: Mapping) -> str | None:
    """The key of a whole run: the job's version, the full configuration (it is saved in
    ``stats.json``) and every input file's path and content, in order. None when a file
    could not be read (its report may hold the system's words: no shortcut)."""
    if any(c is None for c in contents):
        return None
    h = hashlib.sha256(job_version().encode() + b"\0")
    h.update(json.dumps(config, sort_keys=True, default=str).encode() + b"\0")
    for path, content in zip(paths, contents, strict=True):
        h.update(f"{path}\0{content}\n".encode())
    return h.hexdigest()


def _record_path(folder: str | os.PathLike, output: str | os.PathLike) -> Path:
    name = hashlib.sha256(os.path.abspath(os.fspath(output)).encode()).hexdigest()[:32]
    return Path(folder) / OUTPUTS / f"{name}.json"


def _output_state(output: str | os.PathLike) -> dict[str, list[int]]:
    """Every file of the output folder: device, inode, size, mtime and ctime (ns)."""
    state = {}
    for p in sorted(Path(output).iterdir()):
        st = p.stat()
        state[p.name] = [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]
    return state


def record_output(folder: str | os.PathLike, output: str | os.PathLike, key: str) -> None:
    """Note that ``output`` now holds the run ``key``'s dataset (its files as they are)."""
    record = {
        "output": os.path.abspath(os.fspath(output)),
        "run_key": key,
        "files": _output_state(output),
    }
    path = _record_path(folder, output)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp-{uuid.uuid4().hex}")
    try:
        tmp.write_text(json.dumps(record))
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def output_up_to_date(folder: str | os.PathLike, output: str | os.PathLike, key: str) -> bool:
    """Whether ``output`` holds, untouched, the dataset a run of ``key`` saved: the record
    of the run is there with the same key, and every file of the folder is the very file
    then saved (same inode, size, mtime and ctime; no file added or removed). The ctime of
    a file changes with any write to it and cannot be set back by a program, so a file
    edited, replaced or rewritten since is seen."""
    try:
        record = json.loads(_record_path(folder, output).read_text())
        return record.get("run_key") == key and record.get("files") == json.loads(
            json.dumps(_output_state(output))
        )
    except (OSError, ValueError):
        return False
