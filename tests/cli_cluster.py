"""A Dask cluster started with the ``dask`` command line, for tests that break it.

``cli_cluster(folder, n_workers)`` starts ``dask scheduler`` and ``n_workers`` ``dask worker``
processes (one thread each, loopback, ports chosen by the OS, the scheduler's address read
back from its scheduler file), each in its own process group, with the fault hooks of
:mod:`fault_hooks` preloaded and their control folder in ``folder / "faults"``. On exit
every process group is killed, whatever happened in the test.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from fault_hooks import FAULT_DIR_ENV

HOOKS = Path(__file__).resolve().parent / "fault_hooks.py"
DASK = Path(sys.executable).parent / "dask"


@dataclass
class CliCluster:
    address: str
    fault_dir: Path
    scheduler: subprocess.Popen
    workers: list[subprocess.Popen] = field(default_factory=list)

    def arm(self, moment: str, action: str = "kill") -> None:
        """Arm one fault (see :mod:`fault_hooks`); the previous one is forgotten."""
        for name in ("fault", "fired", "reached"):
            (self.fault_dir / name).unlink(missing_ok=True)
        (self.fault_dir / "fault").write_text(f"{moment} {action}")

    def disarm(self) -> None:
        (self.fault_dir / "fault").unlink(missing_ok=True)

    def fired(self) -> bool:
        return (self.fault_dir / "fired").exists()

    def wait_reached(self, timeout: float = 60) -> None:
        """Block until a ``hold`` fault has been reached."""
        deadline = time.monotonic() + timeout
        while not (self.fault_dir / "reached").exists():
            if time.monotonic() > deadline:
                raise TimeoutError("the armed moment was never reached")
            time.sleep(0.02)

    def worker_pids(self) -> list[int]:
        """The pids of the worker processes (the nannies' children when there are nannies)."""
        import psutil

        pids = []
        for proc in self.workers:
            try:
                parent = psutil.Process(proc.pid)
                children = parent.children(recursive=True)
            except psutil.NoSuchProcess:
                continue
            pids += [c.pid for c in children] or [proc.pid]
        return pids

    def wait_for_workers(self, n: int, timeout: float = 60) -> None:
        from distributed import Client

        with Client(self.address, timeout=10) as client:
            client.wait_for_workers(n, timeout=timeout)


def _start(args: list[str], env: dict, log: Path) -> subprocess.Popen:
    with open(log, "wb") as out:
        return subprocess.Popen(
            args, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=30)


@contextmanager
def cli_cluster(folder: Path, n_workers: int = 2, *, nanny: bool = True, config: dict | None = None):
    """A running cluster (see the module docstring); ``config``: Dask settings given to every
    process as ``DASK_*`` environment variables (e.g. ``{"distributed.scheduler.worker-ttl":
    "5s"}``)."""
    folder = Path(folder)
    fault_dir = folder / "faults"
    fault_dir.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DASK_")}
    env[FAULT_DIR_ENV] = str(fault_dir)
    for key, value in (config or {}).items():
        env["DASK_" + key.upper().replace(".", "__").replace("-", "_")] = str(value)
    scheduler_file = folder / "scheduler.json"
    scheduler_file.unlink(missing_ok=True)
    procs: list[subprocess.Popen] = []
    try:
        scheduler = _start(
            [str(DASK), "scheduler", "--host", "127.0.0.1", "--port", "0",
             "--dashboard-address", "127.0.0.1:0", "--scheduler-file", str(scheduler_file),
             "--preload", str(HOOKS)],
            env,
            folder / "scheduler.log",
        )
        procs.append(scheduler)
        deadline = time.monotonic() + 60
        while not scheduler_file.exists():
            if scheduler.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((folder / "scheduler.log").read_text())
            time.sleep(0.05)
        time.sleep(0.05)  # the file is written in one go; let it land
        address = json.loads(scheduler_file.read_text())["address"]
        cluster = CliCluster(address=address, fault_dir=fault_dir, scheduler=scheduler)
        for i in range(n_workers):
            args = [str(DASK), "worker", address, "--nthreads", "1", "--host", "127.0.0.1",
                    "--preload", str(HOOKS), "--local-directory", str(folder / f"w{i}")]
            if not nanny:
                args.append("--no-nanny")
            worker = _start(args, env, folder / f"worker{i}.log")
            procs.append(worker)
            cluster.workers.append(worker)
        cluster.wait_for_workers(n_workers)
        yield cluster
    finally:
        for proc in procs:
            _kill_group(proc)
