"""The job's tasks on a worker started with Dask's ``MALLOC_TRIM_THRESHOLD_`` (allocator.py).

Counted in page faults, not time: a fresh process per case, with and without the setting.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from imitation_learning.allocator import (
    GLIBC_DEFAULT_THRESHOLD,
    M_MMAP_THRESHOLD,
    M_TRIM_THRESHOLD,
    fixed_thresholds,
)

glibc_only = pytest.mark.skipif(
    not (hasattr(os, "confstr") and os.confstr("CS_GNU_LIBC_VERSION")), reason="needs glibc"
)


def test_fixed_thresholds_come_from_the_variables_and_the_tunables() -> None:
    assert fixed_thresholds({}) is None
    assert fixed_thresholds({"GLIBC_TUNABLES": "glibc.pthread.rseq=0"}) is None
    assert fixed_thresholds({"MALLOC_TRIM_THRESHOLD_": "65536"}) == {
        M_TRIM_THRESHOLD: 65536,
        M_MMAP_THRESHOLD: GLIBC_DEFAULT_THRESHOLD,
    }
    tunables = {"GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=0x40000:glibc.malloc.top_pad=1"}
    assert fixed_thresholds(tunables) == {
        M_TRIM_THRESHOLD: GLIBC_DEFAULT_THRESHOLD,
        M_MMAP_THRESHOLD: 0x40000,
    }
    both = {**tunables, "MALLOC_MMAP_THRESHOLD_": "1048576", "MALLOC_TOP_PAD_": "0"}
    assert fixed_thresholds(both)[M_MMAP_THRESHOLD] == 1048576  # the variable wins
    # a value glibc would not read as a number: its default is what is put back
    assert fixed_thresholds({"MALLOC_TRIM_THRESHOLD_": "lots"})[M_TRIM_THRESHOLD] == (
        GLIBC_DEFAULT_THRESHOLD
    )


#: A task that makes and drops a 1 MiB array 200 times, in a thread (as on a Dask worker);
#: prints the page faults of the loop and the allocator's state during and after it.
_PROBE = """
import json, resource, threading, time
import numpy as np
from imitation_learning import allocator

def loop():
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(200):
        a = np.ones(1 << 17)  # 1 MiB, written
        del a
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults, allocator.state()

out = {}
def work():
    out["plain"] = loop()
    out["tuned"] = allocator.tuned(loop)()
    out["nested"] = allocator.tuned(allocator.tuned(loop))()
t = threading.Thread(target=work); t.start(); t.join()
out["right_after"] = allocator.state()
time.sleep(allocator.IDLE_S + 0.5)
out["idle"] = allocator.state()
allocator.tuned(loop)()
allocator.set_tuning(False)  # at once, not once idle
out["off_at_once"] = allocator.state()
out["off"] = allocator.tuned(loop)()
print(json.dumps(out))
"""


def _probe(**env: str) -> dict:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    clean.pop("GLIBC_TUNABLES", None)
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(proc.stdout)


@glibc_only
def test_a_task_on_a_worker_with_dasks_setting_reuses_freed_memory() -> None:
    out = _probe(MALLOC_TRIM_THRESHOLD_="65536")
    (plain, state), (tuned, during), (nested, _) = out["plain"], out["tuned"], out["nested"]
    assert state == "fixed" and during == "tuned"
    assert plain > 200 * 200  # every array mapped afresh: 256 pages each
    assert tuned < plain / 10 and nested < plain / 10  # the memory of the last one, reused
    assert out["right_after"] == "tuned"  # partitions follow each other: kept a moment
    assert out["idle"] == "fixed"  # then the process's own setting is back
    assert out["off_at_once"] == "fixed"
    faults_off, state_off = out["off"]
    assert state_off == "fixed" and faults_off > plain / 2  # set_tuning(False): left alone


@glibc_only
def test_a_process_with_glibcs_own_thresholds_is_left_alone() -> None:
    out = _probe()
    assert {out["plain"][1], out["tuned"][1], out["idle"]} == {"adaptive"}
