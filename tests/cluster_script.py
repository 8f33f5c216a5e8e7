"""Running ``cluster/local-cluster.sh`` from the tests (shared by the scale-out tests)."""

from __future__ import annotations

import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "cluster" / "local-cluster.sh"


def run_script(*args, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """``bash cluster/local-cluster.sh ARGS...``, output captured, never raising on failure."""
    return subprocess.run(
        ["bash", str(SCRIPT), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
