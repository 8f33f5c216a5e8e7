"""Step 1 of the job: the game logs of a data root, sorted by path."""

from __future__ import annotations

import os

import fsspec
from fsspec.implementations.local import LocalFileSystem

GAME_FOLDERS = ("2_games", "3_games", "4_games")


def discover_csv_files(data_root: str | os.PathLike, max_games: int | None = None) -> list[str]:
    """The game logs ``<data_root>/{2,3,4}_games/*.csv``, sorted by path.

    ``data_root`` is a local folder or an fsspec URL (``file://``, ``memory://``,
    ``s3://``...); local roots give plain local paths (a relative root gives relative
    paths), other file systems give URLs. Other files under the root are ignored.
    ``max_games`` keeps the first ones in sorted order. Every entry of a game folder named
    ``*.csv`` is listed, even one that is not a regular file (a directory ``x.csv``): the
    per-file step then rejects it by name instead of it being skipped silently.

    Raises ``FileNotFoundError`` if the root does not exist and ``ValueError`` if it holds
    no game file.
    """
    if max_games is not None and (isinstance(max_games, bool) or max_games < 1):
        raise ValueError(f"max_games must be at least 1 (or None), got {max_games!r}")
    root_text = os.fspath(data_root)
    fs, root = fsspec.core.url_to_fs(root_text)
    root = root.rstrip("/") or "/"
    if not fs.isdir(root):
        raise FileNotFoundError(f"data root {root_text!r} not found (or not a folder)")

    found: list[str] = []
    for folder in GAME_FOLDERS:
        found += fs.glob(f"{root}/{folder}/*.csv")
    if not found:
        raise ValueError(
            f"no game file under data root {root_text!r}: expected "
            f"{root_text.rstrip('/')}/{{2,3,4}}_games/<game_id>.csv"
        )
    found.sort()
    if max_games is not None:
        found = found[:max_games]

    if isinstance(fs, LocalFileSystem):
        # Keep the root as the user wrote it (relative stays relative), not for file:// URLs.
        base = root_text if "://" not in root_text else root
        return [os.path.join(base, os.path.relpath(p, root)) for p in found]
    return [fs.unstrip_protocol(p) for p in found]
