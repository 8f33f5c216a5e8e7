"""Running ``cluster/local-cluster.sh`` from the tests (shared by the scale-out tests), and
loading the Python files of ``cluster/`` (a folder of scripts, not a package)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import types
from pathlib import Path

CLUSTER = Path(__file__).resolve().parents[1] / "cluster"
SCRIPT = CLUSTER / "local-cluster.sh"


def load_cluster_module(name: str) -> types.ModuleType:
    """``cluster/<name>.py`` as the module ``cluster_<name>`` (loaded once)."""
    module_name = f"cluster_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, CLUSTER / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # before running it: its dataclasses look it up
    spec.loader.exec_module(module)
    return module


def run_script(*args, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """``bash cluster/local-cluster.sh ARGS...``, output captured, never raising on failure."""
    return subprocess.run(
        ["bash", str(SCRIPT), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
