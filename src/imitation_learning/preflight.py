"""Checks of a run's settings that must pass before any file is processed.

A run that would fail at its end (an output folder that cannot be written or must not be
replaced) or at its start (a malformed scheduler address) fails here instead, at once, with
a :class:`UsageError` whose one-line message names the problem and the fix. The command line
prints it and exits with code 2. (The configuration itself is checked by
:func:`imitation_learning.config.validate_config`, the data root by
:func:`imitation_learning.job.discover_csv_files`.)
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from imitation_learning.dataset.atomic_dir import is_dataset_dir


class UsageError(ValueError):
    """A setting that cannot work; the message says which and what to do."""


def check_output_dir(path: str | os.PathLike, *, parents: bool = False) -> None:
    """The dataset can be saved at ``path``: it is absent, an empty folder or a dataset
    written earlier (replaced at the end of the run), and its parent folder exists and can
    be written (the save writes a temporary sibling folder, then renames it).

    ``parents=True`` (the Python API): a missing parent is created by the save, so the
    nearest existing ancestor must be a folder that can be written. The command line
    leaves it False: a missing parent is more often a mistyped path than a wish.
    """
    target = Path(os.fspath(path))
    where = f"(--output / data.processed_dir {os.fspath(path)!r})"
    if target.exists():
        if not target.is_dir():
            raise UsageError(f"the output {target} is a file, not a folder: choose another {where}")
        if not is_dataset_dir(target) and any(target.iterdir()):
            raise UsageError(
                f"the output folder {target} holds files that are not a saved dataset, which "
                f"would be replaced: empty it or choose another {where}"
            )
    parent = target.parent
    if parents:
        while not parent.exists() and parent != parent.parent:
            parent = parent.parent
    if parent.exists() and not parent.is_dir():
        raise UsageError(f"{parent} is a file, not a folder: choose another {where}")
    if not parent.is_dir():
        raise UsageError(
            f"the output's parent folder {parent} does not exist: create it "
            f"(mkdir -p {parent}) or choose another {where}"
        )
    try:
        probe = tempfile.mkdtemp(prefix=f".{target.name}.probe-", dir=parent)
        os.rmdir(probe)
    except OSError as exc:
        raise UsageError(
            f"cannot write in the output's parent folder {parent} ({exc.strerror or exc}): "
            f"choose another {where}"
        ) from None


def check_scheduler_address(address: str | None) -> None:
    """A scheduler address has the form ``protocol://host:port`` (or ``host:port``)."""
    if address is None:
        return
    from distributed.comm.addressing import parse_address, parse_host_port

    try:
        protocol, location = parse_address(address)
        if protocol in ("tcp", "tls"):
            host, port = parse_host_port(location)
            if not host or not port:
                raise ValueError("no host or port")
    except (ValueError, TypeError) as exc:
        raise UsageError(
            f"scheduler address {address!r} is not of the form tcp://host:port ({exc}): fix "
            "--scheduler-address / preprocessing.scheduler_address / DASK_SCHEDULER_ADDRESS"
        ) from None


def check_cache_dir(path: str | os.PathLike, output: str | os.PathLike) -> None:
    """The result cache's folder can be used: not a file, not the output folder or inside
    it (the save replaces that folder), and it exists or can be created."""
    target = Path(os.path.abspath(os.fspath(path)))
    out = Path(os.path.abspath(os.fspath(output)))
    where = f"(--cache-dir {os.fspath(path)!r})"
    if target == out or out in target.parents:
        raise UsageError(
            f"the cache folder {target} is inside the output folder {out}, which each run "
            f"replaces: choose another {where}"
        )
    if target.exists() and not target.is_dir():
        raise UsageError(f"the cache folder {target} is a file: choose another {where}")
    existing = target
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"cannot create or write the cache folder {target}: choose another {where}")
