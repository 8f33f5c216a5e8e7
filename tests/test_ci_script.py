"""``.ci/run``: the suite under every CPython 3.11-3.13 the machine has, each in its own
environment, with bytecode; checked without running it (CI runs it)."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / ".ci" / "run"


def test_ci_script_parses_and_runs_the_suite_per_version() -> None:
    text = SCRIPT.read_text()
    assert subprocess.run(["bash", "-n", str(SCRIPT)]).returncode == 0
    assert "set -euo pipefail" in text
    assert "for version in 3.11 3.12 3.13; do" in text
    loop = text[text.index("for version in 3.11 3.12 3.13; do") : text.index("\ndone\n")]
    assert 'export UV_PROJECT_ENVIRONMENT="$work/env-$version"' in loop
    assert re.search(r'uv sync --locked --compile-bytecode --python "\$python"', loop)
    assert "uv run --locked pytest" in loop and "ruff check" in loop
    assert "skipped" in loop  # a missing interpreter is said, not an error


def interpreter(version: str, path: str, pyenv_root: Path | None, tmp_path: Path) -> str:
    """The script's ``interpreter`` function, run with a fake pyenv (or none) and PATH."""
    text = SCRIPT.read_text()
    start = text.index("interpreter() {")
    function = text[start : text.index("\n}\n", start) + 3]
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    if pyenv_root is not None:
        fake = bin_dir / "pyenv"
        fake.write_text(f"#!/bin/sh\necho {pyenv_root}\n")
        fake.chmod(0o755)
    env = {"PATH": f"{bin_dir}:{path}", "HOME": str(tmp_path)}
    script = f"set -euo pipefail\n{function}\ninterpreter {version}\n"
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_ci_finds_pyenv_versions_and_says_when_one_is_missing(tmp_path: Path) -> None:
    root = tmp_path / "pyenv"
    for v in ("3.12.1", "3.12.10", "3.13.0"):
        exe = root / "versions" / v / "bin" / f"python{v.rsplit('.', 1)[0]}"
        exe.parent.mkdir(parents=True)
        exe.write_text("")
        exe.chmod(0o755)
    empty = tmp_path / "empty"
    empty.mkdir()
    system = f"{empty}:/usr/bin:/bin"
    # the newest patch release (by version, not by name)
    got = interpreter("3.12", system, root, tmp_path)
    assert got == str(root / "versions" / "3.12.10" / "bin" / "python3.12")
    assert interpreter("3.13", system, root, tmp_path).endswith("3.13.0/bin/python3.13")
    # none: empty (the loop then prints that it skips the version)
    if not any(os.access(Path(d) / "python3.11", os.X_OK) for d in ("/usr/bin", "/bin")):
        assert interpreter("3.11", system, root, tmp_path) == ""
    # without pyenv: python3.X on the PATH
    (empty / "python3.13").write_text("")
    (empty / "python3.13").chmod(0o755)
    no_pyenv = tmp_path / "no-pyenv"
    no_pyenv.mkdir()
    assert interpreter("3.13", system, None, no_pyenv) == str(empty / "python3.13")
