"""The save as one transaction: a dataset folder is replaced whole or not at all.

This module owns :class:`AtomicDir` (everything written into a locked temporary sibling
folder, swapped in by two renames, a previous dataset restored after a crash between
them, leftovers of killed saves removed) and :func:`is_dataset_dir`, the test of what
counts as a saved dataset (its ``stats.json``, written last, and ``feature_names.json``).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from imitation_learning.dataset.files import fsync_path


def is_dataset_dir(path: str | os.PathLike) -> bool:
    """Whether ``path`` holds a saved dataset: its ``stats.json`` (written last) and
    ``feature_names.json`` are there, as files."""
    path = Path(path)
    return (path / "stats.json").is_file() and (path / "feature_names.json").is_file()


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
            self.target.is_dir() and (is_dataset_dir(self.target) or not any(self.target.iterdir()))
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
            lock = try_lock(stale)
            if lock is not None:  # no save holds it: left by a killed process
                try:
                    shutil.rmtree(stale, ignore_errors=True)
                finally:
                    os.close(lock)
        self.tmp = Path(tempfile.mkdtemp(prefix=self.prefix + "tmp-", dir=self.parent))
        self._lock = try_lock(self.tmp)
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


def try_lock(folder: Path) -> int | None:
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
