"""The C allocator of a worker process while the job's tasks run on it.

Dask's nannies start every worker with ``MALLOC_TRIM_THRESHOLD_=65536`` (its default
``distributed.nanny.pre-spawn-environ``). In glibc, a malloc threshold set from the
environment (or by ``mallopt``) turns off the adaptive thresholds: every allocation above
128 KiB becomes an ``mmap`` of its own, unmapped again when freed, and the heap is given
back to the system whenever 64 KiB of it are free at its top. The per-file step makes and
drops many arrays of a few hundred KiB a batch, each then page-faulted afresh: on such a
worker it ran at half speed (about 25 page faults a row against 1; figures in
``docs/benchmarks.md``, "Any cluster").

:func:`tuned` wraps the job's worker tasks. While one of them runs in a process whose
thresholds were fixed that way, the thresholds are those glibc's adaptive ones reach
(:data:`TASK_MMAP_THRESHOLD`, :data:`TASK_TRIM_THRESHOLD`): freed memory is handed to the
next batch, already mapped. Once no task of the job has run for :data:`IDLE_S`, the
process's own thresholds are put back and ``malloc_trim(0)`` gives the free memory back to
the system, as the setting wants. A process with glibc's adaptive thresholds (no such
variable: the job's own cluster, a plain process), or without glibc, is left alone.
"""

from __future__ import annotations

import ctypes
import functools
import os
import threading
from collections.abc import Callable, Mapping
from typing import TypeVar

#: ``mallopt`` parameters (glibc's malloc.h).
M_TRIM_THRESHOLD = -1
M_TOP_PAD = -2
M_MMAP_THRESHOLD = -3
M_MMAP_MAX = -4

#: glibc's defaults for the thresholds once they are fixed (its DEFAULT_TRIM_THRESHOLD and
#: DEFAULT_MMAP_THRESHOLD_MIN): what a process gets for a threshold it was not given.
GLIBC_DEFAULT_THRESHOLD = 128 * 1024

#: While the job's tasks run: allocations up to 32 MiB come from the heap (the most that
#: glibc's adaptive mmap threshold reaches on 64-bit systems), and the heap keeps up to
#: 64 MiB free at its top (twice that, as the adaptive trim threshold does).
TASK_MMAP_THRESHOLD = 32 * 1024 * 1024
TASK_TRIM_THRESHOLD = 2 * TASK_MMAP_THRESHOLD

#: Seconds without a task of the job before the process's thresholds are put back and its
#: free memory returned (partitions follow each other within milliseconds on a busy worker).
IDLE_S = 0.5

#: Environment variables by which glibc fixes its malloc thresholds ...
_ENV = {
    "MALLOC_TRIM_THRESHOLD_": M_TRIM_THRESHOLD,
    "MALLOC_MMAP_THRESHOLD_": M_MMAP_THRESHOLD,
    "MALLOC_TOP_PAD_": M_TOP_PAD,
    "MALLOC_MMAP_MAX_": M_MMAP_MAX,
}
#: ... and the same as tunables (``GLIBC_TUNABLES=glibc.malloc.trim_threshold=65536:...``).
_TUNABLES = {
    "glibc.malloc.trim_threshold": M_TRIM_THRESHOLD,
    "glibc.malloc.mmap_threshold": M_MMAP_THRESHOLD,
    "glibc.malloc.top_pad": M_TOP_PAD,
    "glibc.malloc.mmap_max": M_MMAP_MAX,
}


def fixed_thresholds(environ: Mapping[str, str] = os.environ) -> dict[int, int] | None:
    """The trim and mmap thresholds of a process started with ``environ``, when a malloc
    setting there turned glibc's adaptive thresholds off (``{M_TRIM_THRESHOLD: ...,
    M_MMAP_THRESHOLD: ...}``, glibc's default for one not given); None when none did.

    >>> fixed_thresholds({"MALLOC_TRIM_THRESHOLD_": "65536"}) == {
    ...     M_TRIM_THRESHOLD: 65536, M_MMAP_THRESHOLD: GLIBC_DEFAULT_THRESHOLD}
    True
    >>> fixed_thresholds({"PATH": "/bin"}) is None
    True
    """
    given: dict[int, str] = {}
    for item in environ.get("GLIBC_TUNABLES", "").split(":"):
        name, _, value = item.partition("=")
        if name in _TUNABLES:
            given[_TUNABLES[name]] = value
    for name, param in _ENV.items():  # the variables win over the tunables
        if name in environ:
            given[param] = environ[name]
    if not given:
        return None
    out = {}
    for param in (M_TRIM_THRESHOLD, M_MMAP_THRESHOLD):
        try:
            value = int(given.get(param, ""), 0)
        except ValueError:
            value = GLIBC_DEFAULT_THRESHOLD
        out[param] = min(max(value, 0), 2**31 - 1)  # mallopt takes an int
    return out


def _glibc():
    """This process's C library when it is glibc (``mallopt`` and ``malloc_trim``), else
    None."""
    if not _is_glibc():
        return None
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
        return libc
    except (AttributeError, OSError, ValueError):
        return None


class _Allocator:
    """The process's allocator: tuned while tasks run, put back when idle."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.running = 0
        self.saved: dict[int, int] | None = None  # the thresholds to put back (tuned)
        self.timer: threading.Timer | None = None
        self.libc = None
        self.fixed: dict[int, int] | None = None
        self.checked = False
        self.enabled = True

    def enter(self) -> None:
        with self.lock:
            self.running += 1
            if self.timer is not None:
                self.timer.cancel()
                self.timer = None
            if self.saved is not None or not self.enabled:
                return
            if not self.checked:  # once per process: the environment it started with
                self.checked = True
                self.fixed = fixed_thresholds()
                self.libc = _glibc() if self.fixed else None
            if self.libc is None:
                return
            self.libc.mallopt(M_MMAP_THRESHOLD, TASK_MMAP_THRESHOLD)
            self.libc.mallopt(M_TRIM_THRESHOLD, TASK_TRIM_THRESHOLD)
            self.saved = self.fixed

    def leave(self) -> None:
        with self.lock:
            self.running -= 1
            if self.running == 0 and self.saved is not None:
                self.timer = threading.Timer(IDLE_S, self.idle)
                self.timer.daemon = True
                self.timer.start()

    def idle(self) -> None:
        """Put the process's own thresholds back and return its free memory."""
        with self.lock:
            if self.running or self.saved is None:
                return
            for param, value in self.saved.items():
                self.libc.mallopt(param, value)
            if self.timer is not None:
                self.timer.cancel()
            self.saved, self.timer = None, None
            self.libc.malloc_trim(0)

    @property
    def is_tuned(self) -> bool:
        return self.saved is not None


_allocator = _Allocator()

F = TypeVar("F", bound=Callable)


def tuned(func: F) -> F:
    """``func`` with this process's allocator tuned while it runs (see the module); calls
    may nest and run in several threads at once."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        _allocator.enter()
        try:
            return func(*args, **kwargs)
        finally:
            _allocator.leave()

    return wrapper  # type: ignore[return-value]


def set_tuning(on: bool) -> None:
    """Let :func:`tuned` tune this process's allocator (the default) or not (to measure
    what it saves: ``client.run(set_tuning, False)`` on a cluster's workers)."""
    _allocator.enabled = bool(on)
    if not on:  # no task running: the process's own thresholds back now, not once idle
        _allocator.idle()


def state() -> str:
    """How this process's allocator stands: ``adaptive`` (glibc's own thresholds, or
    another C library), ``tuned`` (a task of the job runs, or ran less than :data:`IDLE_S`
    ago), ``fixed`` (thresholds fixed by the environment, which the job's tasks tune), or
    ``fixed, cannot tune`` (glibc's ``mallopt`` cannot be reached)."""
    if _allocator.is_tuned:
        return "tuned"
    if fixed_thresholds() is None or not _is_glibc():
        return "adaptive"
    return "fixed" if _glibc() is not None else "fixed, cannot tune"


def _is_glibc() -> bool:
    try:
        return bool(os.confstr("CS_GNU_LIBC_VERSION"))
    except (ValueError, OSError):
        return False

