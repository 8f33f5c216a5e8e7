"""The keys of the cache: what makes a file's entry valid for a run.

A key is the SHA-256 of the file's content (:func:`content_hash`), the configuration keys
that change a file's result (:func:`config_key`) and the version of the per-file step
(:func:`step_version`, derived from the sources of its import graph: nothing to bump by
hand).
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib.util
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from imitation_learning.per_file.settings import StepSettings
from imitation_learning.result_cache.entries import FORMAT

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
#: brings in ``dataset``) and the cache package itself (the entry format, these keys).
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


def config_key(config) -> str:
    """The part of the key taken from the configuration (:data:`RESULT_CONFIG_KEYS`): the
    per-file step's settings (:class:`~imitation_learning.per_file.settings.StepSettings`,
    of a run's settings or a configuration dict)."""
    return StepSettings.of(config).cache_key()


def step_modules(roots: Sequence[str] = VERSION_ROOTS) -> dict[str, str]:
    """module name -> source path of every project module the ``roots`` import, directly
    or not (their packages' ``__init__`` included), found by reading their sources."""
    found: dict[str, str] = {}
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name in found or name.split(".")[0] not in PROJECT_PACKAGES:
            continue
        origin, named = _module_imports(name)
        if origin is not None:
            found[name] = origin
            todo += named
    return found


@functools.cache
def _module_imports(name: str) -> tuple[str | None, tuple[str, ...]]:
    """(source path, the names it may import: its packages and every module named by its
    import statements) of the module ``name``; (None, ()) when it is no module with a
    source (``from module import name``). Parsed once a process: the step's and the job's
    versions walk the same modules."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None, ()
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return None, ()
    parts = name.split(".")
    named = [".".join(parts[:i]) for i in range(1, len(parts))]  # the packages
    is_package = spec.submodule_search_locations is not None
    package = name if is_package else ".".join(parts[:-1])
    tree = ast.parse(Path(spec.origin).read_bytes(), spec.origin)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            named += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            named.append(module)
            # ``from package import module`` imports a module too
            named += [f"{module}.{alias.name}" for alias in node.names if alias.name != "*"]
    return spec.origin, tuple(named)


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


def data_files() -> list[Path]:
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
    return version_of(step_modules(), data_files())


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



def hash_files(paths: Sequence[str], threads: int | None = None) -> list[str | None]:
    """:func:`content_hash` of each path, by a few threads (hashlib runs outside the GIL)."""
    with ThreadPoolExecutor(threads or min(8, os.cpu_count() or 1)) as pool:
        return list(pool.map(content_hash, paths))
