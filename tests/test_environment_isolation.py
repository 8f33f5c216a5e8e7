"""The caller's Dask environment does not reach the tests (``conftest.py``'s autouse fixture).

A probe test file runs in a separate pytest session, beside a copy of this suite's
``conftest.py``, with ``DASK_SCHEDULER_ADDRESS`` pointing at a port nobody serves and a
Dask setting in the environment. The probe sees neither: not in ``os.environ``, not in
Dask's configuration, not in a subprocess, not in a module-scoped fixture, and the job
resolves no scheduler address. The same probe beside an empty ``conftest.py`` fails, so
it does see the variables when nothing removes them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent

PROBE = '''
import os
import subprocess
import sys

import dask
import distributed  # its defaults are part of Dask's configuration
import pytest


@pytest.fixture(scope="module")
def module_environ():
    return dict(os.environ)


def dask_names(environ):
    return sorted(n for n in environ if n.startswith("DASK_"))


def test_no_dask_variable_anywhere(module_environ):
    assert dask_names(os.environ) == []
    assert dask_names(module_environ) == []
    assert dask.config.get("scheduler-address", None) is None
    assert dask.config.get("distributed.scheduler.worker-saturation") != 7.5
    code = "import os; print([n for n in os.environ if n.startswith('DASK_')])"
    child = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert child.stdout.strip() == "[]"


def test_the_job_starts_its_own_cluster():
    from imitation_learning.config import validate_config
    from imitation_learning.parallel_processor import resolve_scheduler_address

    assert resolve_scheduler_address(validate_config({})) is None


def test_a_test_can_still_set_one(monkeypatch):
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", "tcp://127.0.0.1:8786")
    from imitation_learning.config import validate_config
    from imitation_learning.parallel_processor import resolve_scheduler_address

    assert resolve_scheduler_address(validate_config({})) == "tcp://127.0.0.1:8786"
'''

CALLER_ENV = {
    "DASK_SCHEDULER_ADDRESS": "tcp://127.0.0.1:9",
    "DASK_DISTRIBUTED__SCHEDULER__WORKER_SATURATION": "7.5",
}


def test_callers_dask_environment_does_not_reach_the_tests(tmp_path):
    isolated, exposed = tmp_path / "isolated", tmp_path / "exposed"
    for folder in (isolated, exposed):
        folder.mkdir()
        (folder / f"test_probe_{folder.name}.py").write_text(PROBE)
    for name in ("conftest.py", "game_data.py"):
        shutil.copy(TESTS / name, isolated / name)
    (exposed / "conftest.py").write_text("")
    # one session, the exposed probe first (the isolation fixture then is not set up yet)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rfE"]
        + ["exposed", "isolated"],
        cwd=tmp_path,
        env={**os.environ, **CALLER_ENV},
        capture_output=True,
        text=True,
        timeout=240,
    )
    summary = done.stdout.splitlines()
    assert "2 failed, 4 passed" in summary[-1], done.stdout + done.stderr
    failed = sorted(line.split(" - ")[0] for line in summary if line.startswith("FAILED"))
    assert failed == [
        "FAILED exposed/test_probe_exposed.py::test_no_dask_variable_anywhere",
        "FAILED exposed/test_probe_exposed.py::test_the_job_starts_its_own_cluster",
    ]
