"""Faults at named moments of a run, for the worker-loss tests: a Dask preload module.

Started with ``dask scheduler --preload tests/fault_hooks.py`` and ``dask worker --preload
tests/fault_hooks.py``, with ``SPLENDOR_FAULT_DIR`` naming a control folder in their
environment. A test arms a fault by writing ``<dir>/fault`` as ``MOMENT ACTION``; the first
process that reaches MOMENT claims it (creates ``<dir>/fired`` exclusively, so a fault fires
once even when Dask re-runs the work), writes its pid into ``fired`` and carries ACTION out.

Moments:

- ``connect``: on the scheduler, when a client connects (the job's, once armed);
- ``warm-up``: on a worker, when it is asked to run a function (``Client.run``);
- ``task:PREFIX``: on a worker, when a task whose key name starts with PREFIX starts;
- ``fetch``: on a worker, when it is asked for results (``get_data``).

Actions:

- ``kill``: SIGKILL a worker: the worker itself, or on the scheduler the first worker it
  knows (a worker started with a nanny is then restarted by it);
- ``hold``: write ``<dir>/reached`` and block the handler (the task or the request) for
  good, so that the test can do something at a known point (kill every worker, or the
  scheduler) while the job waits.

Unarmed (no ``fault`` file) the hooks do nothing.
"""

from __future__ import annotations

import functools
import inspect
import os
import signal
import time
from pathlib import Path

FAULT_DIR_ENV = "SPLENDOR_FAULT_DIR"


def _armed(moment: str) -> str | None:
    """The action armed for ``moment`` if this process is the first to reach it."""
    folder = os.environ.get(FAULT_DIR_ENV)
    if not folder:
        return None
    try:
        armed_moment, action = (Path(folder) / "fault").read_text().split()
    except (OSError, ValueError):
        return None
    if armed_moment.startswith("task:") and moment.startswith("task:"):
        if not moment[5:].startswith(armed_moment[5:]):
            return None
    elif armed_moment != moment:
        return None
    try:
        fd = os.open(Path(folder) / "fired", os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return None
    os.write(fd, str(os.getpid()).encode())
    os.close(fd)
    return action


def _hold(folder: str) -> None:
    (Path(folder) / "reached").write_text(str(os.getpid()))
    while True:  # until the test kills this process
        time.sleep(1)


def _carry_out(action: str, pid: int | None = None) -> None:
    if action == "kill":
        os.kill(pid or os.getpid(), signal.SIGKILL)
    elif action == "hold":
        _hold(os.environ[FAULT_DIR_ENV])


def _wrap_handler(worker, name: str, moment: str) -> None:
    original = worker.handlers[name]

    @functools.wraps(original)  # Dask passes ``comm`` when the signature asks for it
    async def handler(*args, **kwargs):
        action = _armed(moment)
        if action is not None:
            _carry_out(action)
        result = original(*args, **kwargs)
        return (await result) if inspect.isawaitable(result) else result

    worker.handlers[name] = handler


def _setup_worker(worker) -> None:
    from distributed.diagnostics.plugin import WorkerPlugin

    class TaskStart(WorkerPlugin):
        def transition(self, key, start, finish, **kwargs):
            if finish == "executing":
                name = key[0] if isinstance(key, tuple) else key
                action = _armed(f"task:{name}")
                if action is not None:
                    _carry_out(action)

    _wrap_handler(worker, "run", "warm-up")
    _wrap_handler(worker, "get_data", "fetch")
    worker.plugins["splendor-fault-hooks"] = TaskStart()


def _setup_scheduler(scheduler) -> None:
    from distributed.diagnostics.plugin import SchedulerPlugin

    class ClientConnect(SchedulerPlugin):
        def add_client(self, scheduler, client):
            if not str(client).startswith("Client-"):
                return
            action = _armed("connect")
            if action == "kill" and scheduler.workers:
                first = next(iter(scheduler.workers.values()))
                _carry_out("kill", first.pid)
            elif action is not None:
                _carry_out(action)

    scheduler.add_plugin(ClientConnect(), name="splendor-fault-hooks")


def dask_setup(server) -> None:
    """Dask's preload entry point: ``server`` is the Scheduler or the Worker."""
    if hasattr(server, "add_plugin") and hasattr(server, "workers"):
        _setup_scheduler(server)
    else:
        _setup_worker(server)
