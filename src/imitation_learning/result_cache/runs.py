"""Whole runs: the record of the dataset a run saved, so that a run whose inputs,
configuration and code are unchanged, its output untouched since, leaves the output as it is.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path

from imitation_learning.result_cache.keys import (
    VERSION_ROOTS,
    data_files,
    step_modules,
    version_of,
)

#: The cache's records of the outputs it saw saved (one per output folder).
OUTPUTS = "outputs"
#: The modules whose import graph makes a saved dataset (the job's version).
JOB_ROOTS = (
    "imitation_learning.data_preprocessing",
    "imitation_learning.job",
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
        (version_of(step_modules(JOB_ROOTS), data_files()) + "\0".join(libraries)).encode()
    ).hexdigest()



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


def prune_records(folder: str | os.PathLike) -> int:
    """Remove the records of outputs that no longer exist (their folder gone); how many."""
    removed = 0
    for path in sorted((Path(folder) / OUTPUTS).glob("*.json")):
        try:
            output = json.loads(path.read_text()).get("output")
        except (OSError, ValueError):
            output = None
        if not output or not Path(output).is_dir():
            path.unlink(missing_ok=True)
            removed += 1
    return removed
