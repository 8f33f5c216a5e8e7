"""A partition's use of the cache on a worker (:class:`Lookup`), and the cache folder's
size and pruning.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from imitation_learning.result_cache.entries import (
    ENTRIES,
    SUFFIX,
    DamagedEntry,
    Piece,
    encode,
    entry_file,
    entry_path,
    mapped_piece,
    read_entry,
    storable,
    write_entry,
)
from imitation_learning.result_cache.keys import (
    config_key,
    content_hash,
    entry_key,
    hash_files,
    step_version,
)


@dataclass(frozen=True)
class CacheSpec:
    """What a worker needs to use the cache: its folder (seen by every worker at this
    path), the configuration's part of the key and the content hashes the driver has
    already taken (path -> SHA-256; a path not there is hashed by the worker)."""

    folder: str
    config_part: str
    contents: Mapping[str, str | None] = field(default_factory=dict, repr=False)

    def of(self, paths: Sequence[str]) -> CacheSpec:
        """This spec with the content hashes of ``paths`` only (what one partition needs)."""
        return replace(self, contents={p: self.contents[p] for p in paths if p in self.contents})

    def missing(self, paths: Sequence[str]) -> list[str]:
        """The paths with no entry in the cache (by their content hashes taken already; a
        path without one counts as missing): the files a run would process. An entry found
        here may still turn out damaged, or be pruned, when the run reads it."""
        version = step_version()
        out = []
        for path in paths:
            content = self.contents.get(path)
            key = None if content is None else entry_key(content, self.config_part, version)
            if key is None or not os.path.exists(entry_file(self.folder, key)):
                out.append(path)
        return out


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
        content = self.spec.contents.get(path) or content_hash(path)
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
        the piece with its rows of X mapped from the entry just written (None if not
        stored)."""
        self.counts.processed += 1
        if found is None or not storable(piece.rejections, path) or content_hash(path) != found[1]:
            self.counts.not_stored += 1
            return None
        try:
            x_stored: list = []
            buffers = encode(piece, found[0], x_stored=x_stored)
            st = write_entry(self.spec.folder, found[0], buffers)
            return mapped_piece(piece, entry_path(self.spec.folder, found[0]), x_stored, st)
        except OSError:
            self.counts.not_stored += 1
            return None



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
    """The keys of ``paths`` under ``config`` and this step version."""
    part, version = config_key(config), step_version()
    contents = hash_files(paths, threads)
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
