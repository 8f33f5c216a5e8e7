"""A job stopped at a known point, for the Ctrl-C tests: the driver's progress bar is
replaced by one that says ``first partition back`` on stderr at its first update and then
waits there, so that a test can signal the process mid-run without guessing when."""

from __future__ import annotations

SAID = "first partition back"

_STOP_AT_FIRST_PARTITION = f"""
import sys, time

class StopAtFirstPartition:  # the job's progress bar: the driver waits here, mid-run
    def __init__(self, *args, **kwargs):
        pass
    def __enter__(self):
        return self
    def __exit__(self, *exc):
        return False
    def update(self, n=1):
        print({SAID!r}, file=sys.stderr, flush=True)
        time.sleep(600)  # the signal arrives while the job is here
"""


def stopped_run_script(module: str, body: str) -> str:
    """Python source for ``python -c``: ``module``'s ``tqdm`` replaced by the stopping bar
    (``module`` is imported as ``job``), then ``body``."""
    return (
        _STOP_AT_FIRST_PARTITION
        + f"import {module} as job\njob.tqdm = StopAtFirstPartition\n"
        + body
    )
