"""A Dask cluster on simulated hosts: Linux network namespaces joined by a bridge.

Used by the multi-host tests (``tests/test_multihost.py``) and benchmark
(``bench/multihost.py``); a file of this folder, not a package: load it by path
(``importlib.util.spec_from_file_location``), as they do. Needs root and Linux.

One namespace per host, each with its own network stack and addresses, all on this
machine's filesystem (as over a shared filesystem). The job's host is the root namespace.

- ``flat``: the scheduler host and both worker hosts sit on one bridge, with the job's host
  (the bridge's own address): the job reaches the scheduler and the workers.
- ``gated``: the job's host reaches the scheduler host only; the workers sit on a private
  network behind it (a second bridge inside the scheduler's namespace), as when the
  scheduler is the only published host. Their addresses go nowhere from the job's host
  (a blackhole route: packets dropped, connections time out).

The scheduler and the workers are started with the ``dask`` command line of this
interpreter's environment, as ``cluster/local-cluster.sh`` starts them (one single-threaded
worker process under a nanny per worker host), with the Dask settings of
``cluster/dask.env``.

Names carry this process's id (namespaces ``splil-<pid>-<n>-<host>``, links ``sb<pid>x<n>``
and ``sv<pid>x<n><k>``) so that concurrent runs cannot collide; what a dead process left
behind is removed by :func:`remove_stale`. Addresses are private: ``10.213.N.0/24`` (hosts
on the job's bridge), ``10.214.N.0/24`` (private worker network), N picked free.

Needs root (``ip netns add``); :func:`namespaces_unavailable` says why when it cannot.
"""

from __future__ import annotations

import fcntl
import importlib.util
import itertools
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from imitation_learning.job.bag import PROCESS_TASK

ROOT = Path(__file__).resolve().parents[1]

#: The ``dask`` command of the environment running this code (the project's venv).
DASK = str(Path(sys.executable).parent / "dask")

SCHEDULER_PORT = 8786
_NS_PREFIX = "splil-"
_LOCK = Path(tempfile.gettempdir()) / "splil-netns.lock"
_counter = itertools.count(1)


def _cluster_settings_module():
    """``cluster/slurm_jobqueue.py``, which owns reading ``cluster/dask.env`` (a script of
    this folder, not a package: loaded by path)."""
    spec = importlib.util.spec_from_file_location(
        "slurm_jobqueue", Path(__file__).resolve().parent / "slurm_jobqueue.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_settings = _cluster_settings_module()
#: ``DASK_*`` variables of ``cluster/dask.env`` -> {name: value}.
read_dask_env = _settings.dask_settings
#: ``{"DASK_X__Y": "12s"}`` -> ``{"x.y": "12s"}``, values read as Dask reads the environment.
dask_config_of = _settings.config_keys


def ip(*args: str, netns: str | None = None, check: bool = True) -> str:
    """Run ``ip ARGS`` (inside ``netns`` if given); its stdout."""
    cmd = ["ip", *args] if netns is None else ["ip", "netns", "exec", netns, "ip", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {proc.stderr.strip()}")
    return proc.stdout


def namespaces_unavailable() -> str | None:
    """Why network namespaces cannot be made here (no ``ip``, not allowed), else None."""
    name = f"{_NS_PREFIX}{os.getpid()}-probe"
    try:
        proc = subprocess.run(
            ["ip", "netns", "add", name], capture_output=True, text=True, timeout=30
        )
    except FileNotFoundError:
        return "the `ip` command (iproute2) is not installed"
    if proc.returncode != 0:
        return f"cannot create a network namespace (`ip netns add`: {proc.stderr.strip()})"
    ip("netns", "del", name)
    return None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _kill_namespace_processes(netns: str, grace_s: float = 5.0) -> None:
    """SIGTERM every process in ``netns``, SIGKILL what is left after ``grace_s``."""

    def pids() -> list[int]:
        return [int(p) for p in ip("netns", "pids", netns, check=False).split()]

    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids():
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + (grace_s if sig == signal.SIGTERM else 10.0)
        while pids() and time.monotonic() < deadline:
            time.sleep(0.05)
    left = pids()
    if left:
        raise RuntimeError(f"processes {left} of {netns} survived SIGKILL")


def remove_stale() -> list[str]:
    """Remove the namespaces and links of this naming whose process is gone (a crashed or
    killed earlier run); return what was removed."""
    removed = []
    for line in ip("netns", "list").splitlines():
        name = line.split()[0] if line.split() else ""
        m = re.fullmatch(rf"{_NS_PREFIX}(\d+)-.*", name)
        if m and not pid_alive(int(m.group(1))):
            _kill_namespace_processes(name, grace_s=1.0)
            ip("netns", "del", name, check=False)
            removed.append(name)
    for line in ip("-o", "link", "show").splitlines():
        m = re.match(r"\d+: (s[bv](\d+)x[0-9a-z]+)[@:]", line)
        if m and not pid_alive(int(m.group(2))):
            ip("link", "del", m.group(1), check=False)
            removed.append(m.group(1))
    for line in ip("-4", "-o", "route", "show", "type", "blackhole").splitlines():
        m = re.search(r"(10\.214\.\d+\.0/24)", line)
        if m and not _subnet_has_bridge(m.group(1).replace("10.214.", "10.213.")):
            ip("route", "del", "blackhole", m.group(1), check=False)
            removed.append(m.group(1))
    return removed


def _subnet_has_bridge(subnet: str) -> bool:
    return subnet in ip("-4", "-o", "route", "show", subnet)


def _free_subnet_index(start: int) -> int:
    """N such that neither 10.213.N.0/24 nor 10.214.N.0/24 is routed here."""
    routes = ip("-4", "-o", "route", "show", "table", "all")
    for k in range(250):
        n = (start + k) % 250 + 1
        if f"10.213.{n}." not in routes and f"10.214.{n}." not in routes:
            return n
    raise RuntimeError("no free 10.213.N.0/24 subnet")


@dataclass
class Host:
    """One simulated host: its namespace, its address, and the far end of its link (on the
    bridge side; set down to cut the host off)."""

    role: str
    netns: str
    address: str
    link: str  # the veth end outside the host (in the root or the scheduler namespace)
    link_netns: str | None  # namespace holding ``link`` (None: the root namespace)


@dataclass
class SimulatedCluster:
    """Scheduler host, worker hosts ``worker-a`` / ``worker-b``; the job runs here."""

    topology: str
    folder: Path
    hosts: dict[str, Host] = field(default_factory=dict)
    links: list[str] = field(default_factory=list)  # created in the root namespace
    routes: list[str] = field(default_factory=list)
    job_address: str = ""
    scheduler_address: str = ""  # as the job reaches it
    processes: list[subprocess.Popen] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    new_session: bool = True  # each process in a session of its own (see start_cluster)

    @property
    def workers(self) -> list[Host]:
        return [h for h in self.hosts.values() if h.role.startswith("worker")]

    def kill_host(self, role: str) -> None:
        """SIGKILL every process of the host (its machine dies: the kernel closes its
        sockets, peers see the connections reset)."""
        netns = self.hosts[role].netns
        for pid in ip("netns", "pids", netns).split():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass

    def cut_host(self, role: str) -> None:
        """Set the host's link down at the far end (the cable pulled: no FIN, no RST, the
        peers' packets vanish); its processes keep running."""
        host = self.hosts[role]
        ip("link", "set", host.link, "down", netns=host.link_netns)

    def log(self, role: str) -> str:
        path = self.folder / f"{role}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def close(self) -> None:
        """Stop every process, remove the namespaces, links and routes (errors collected and
        raised at the end, after everything was tried)."""
        errors = []
        # workers first, then the scheduler (as cluster/local-cluster.sh stops them)
        for host in sorted(self.hosts.values(), key=lambda h: h.role == "scheduler"):
            try:
                _kill_namespace_processes(host.netns)
            except RuntimeError as exc:
                errors.append(str(exc))
        for proc in self.processes:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                errors.append(f"{proc.args[3:6]} did not exit")
        for host in self.hosts.values():
            ip("netns", "del", host.netns, check=False)
        for link in self.links:
            ip("link", "del", link, check=False)
        for route in self.routes:
            ip("route", "del", *route.split(), check=False)
        leftovers = [h.netns for h in self.hosts.values() if h.netns in ip("netns", "list")]
        if leftovers or errors:
            raise RuntimeError(f"teardown incomplete: {errors} {leftovers}")


def _veth_into(cluster: SimulatedCluster, outer: str, outer_netns: str | None, netns: str):
    """A veth pair: ``outer`` stays in ``outer_netns`` (root if None), its peer becomes
    ``eth0`` of ``netns``."""
    inner = f"{outer}i"
    ip("link", "add", outer, "type", "veth", "peer", "name", inner)
    if outer_netns is None:
        cluster.links.append(outer)
    else:
        ip("link", "set", outer, "netns", outer_netns)
    ip("link", "set", inner, "netns", netns)
    ip("link", "set", inner, "name", "eth0", netns=netns)


def _build_network(cluster: SimulatedCluster, tag: str, n: int) -> None:
    public, private = f"10.213.{n}", f"10.214.{n}"
    bridge = f"sb{tag}"
    ip("link", "add", bridge, "type", "bridge")
    cluster.links.append(bridge)
    ip("addr", "add", f"{public}.1/24", "dev", bridge)
    ip("link", "set", bridge, "up")
    cluster.job_address = f"{public}.1"

    roles = ["scheduler", "worker-a", "worker-b"]
    for role in roles:
        netns = f"{_NS_PREFIX}{tag.replace('x', '-')}-{role}"
        ip("netns", "add", netns)
        cluster.hosts[role] = Host(role, netns, "", "", None)
        ip("link", "set", "lo", "up", netns=netns)

    sched = cluster.hosts["scheduler"]
    gated = cluster.topology == "gated"
    for k, role in enumerate(roles):
        host = cluster.hosts[role]
        outer = f"sv{tag}{'sab'[k]}"
        if role == "scheduler" or not gated:
            _veth_into(cluster, outer, None, host.netns)
            ip("link", "set", outer, "master", bridge)
            ip("link", "set", outer, "up")
            host.address, host.link = f"{public}.{k + 2}", outer
            ip("addr", "add", f"{host.address}/24", "dev", "eth0", netns=host.netns)
        else:
            # behind the scheduler host: a bridge of its own, inside its namespace
            inner_bridge = "wbr0"
            if k == 1:
                ip("link", "add", inner_bridge, "type", "bridge", netns=sched.netns)
                ip("addr", "add", f"{private}.1/24", "dev", inner_bridge, netns=sched.netns)
                ip("link", "set", inner_bridge, "up", netns=sched.netns)
            _veth_into(cluster, outer, sched.netns, host.netns)
            ip("link", "set", outer, "master", inner_bridge, netns=sched.netns)
            ip("link", "set", outer, "up", netns=sched.netns)
            host.address, host.link, host.link_netns = f"{private}.{k + 2}", outer, sched.netns
            ip("addr", "add", f"{host.address}/24", "dev", "eth0", netns=host.netns)
        ip("link", "set", "eth0", "up", netns=host.netns)
    if gated:
        # the job's host has no way to the private network (its packets are dropped)
        route = f"blackhole {private}.0/24"
        ip("route", "add", *route.split())
        cluster.routes.append(route)


def _limit_rate(cluster: SimulatedCluster, rate_mbit: int) -> None:
    """Every host's link at ``rate_mbit`` Mbit/s each way (a token bucket on both ends of
    its veth pair: ``tc qdisc ... tbf``). The kernel here has no ``netem``: no delay."""
    burst_kb = max(32, rate_mbit * 1000 // 8 // 250 * 2)  # two timer ticks' worth (HZ 250)
    tbf = ["root", "tbf", "rate", f"{rate_mbit}mbit", "burst", f"{burst_kb}kb"]
    tbf += ["latency", "50ms"]
    for host in cluster.hosts.values():
        for netns, dev in ((host.netns, "eth0"), (host.link_netns, host.link)):
            cmd = ["tc", "qdisc", "replace", "dev", dev, *tbf]
            if netns is not None:
                cmd = ["ip", "netns", "exec", netns, *cmd]
            subprocess.run(cmd, check=True, capture_output=True, timeout=30)


def _launch(cluster: SimulatedCluster, role: str, *args: str) -> None:
    host = cluster.hosts[role]
    log = open(cluster.folder / f"{role}.log", "wb")  # noqa: SIM115 (closed with the process)
    with log:
        proc = subprocess.Popen(
            ["ip", "netns", "exec", host.netns, DASK, *args],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **cluster.env},
            start_new_session=cluster.new_session,
        )
    cluster.processes.append(proc)


def start_cluster(
    topology: str,
    folder: Path,
    *,
    settings: dict[str, str] | None = None,
    rate_mbit: int | None = None,
    timeout_s: float = 90,
    scheme: str = "tcp",
    new_session: bool = True,
) -> SimulatedCluster:
    """Build the hosts and start the scheduler and one worker per worker host; return once
    both workers are connected. On any failure everything built so far is removed.

    ``settings``: the processes' ``DASK_*`` environment (default: ``cluster/dask.env``);
    ``rate_mbit``: each host's link limited to that many Mbit/s each way; ``scheme``: the
    addresses' (``tls`` with the settings of :func:`tls_settings`; this process then needs
    the client's TLS settings in its Dask config).
    ``new_session=False``: the processes stay in this process's session. With the kernel's
    autogroup scheduling (``/proc/sys/kernel/sched_autogroup_enabled``) every session gets
    an equal share of a busy machine: hosts in sessions of their own get more of it than a
    job whose workers share its session (a benchmark compares them in one session)."""
    if topology not in ("flat", "gated"):
        raise ValueError(f"topology must be 'flat' or 'gated', got {topology!r}")
    folder.mkdir(parents=True, exist_ok=True)
    env = read_dask_env() if settings is None else dict(settings)
    env.pop("DASK_SCHEDULER_ADDRESS", None)
    cluster = SimulatedCluster(topology=topology, folder=folder, env=env, new_session=new_session)
    tag = f"{os.getpid()}x{next(_counter)}"
    try:
        with open(_LOCK, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            remove_stale()
            _build_network(cluster, tag, _free_subnet_index(os.getpid()))
        if rate_mbit is not None:
            _limit_rate(cluster, rate_mbit)
        sched = cluster.hosts["scheduler"]
        # the scheduler listens on every address of its host (the job's side and, gated, the
        # workers' side); each party names the address it can reach
        _launch(
            cluster,
            "scheduler",
            "scheduler",
            "--host",
            "0.0.0.0" if topology == "gated" else sched.address,
            "--port",
            str(SCHEDULER_PORT),
            "--dashboard-address",
            "127.0.0.1:0",
        )
        cluster.scheduler_address = f"{scheme}://{sched.address}:{SCHEDULER_PORT}"
        for host in cluster.workers:
            reach = f"10.214.{host.address.split('.')[2]}.1" if topology == "gated" else None
            _launch(
                cluster,
                host.role,
                "worker",
                f"{scheme}://{reach or sched.address}:{SCHEDULER_PORT}",
                "--nthreads",
                "1",
                "--nworkers",
                "1",
                "--host",
                host.address,
                "--name",
                host.role,
                "--no-dashboard",
                "--local-directory",
                str(folder / host.role),
                "--death-timeout",
                "60",
            )
        _wait_for_workers(cluster, 2, timeout_s)
    except BaseException:
        cluster.close()
        raise
    return cluster


def _wait_for_workers(cluster: SimulatedCluster, n: int, timeout_s: float) -> None:
    from distributed import Client

    deadline = time.monotonic() + timeout_s
    while True:
        for proc in cluster.processes:
            if proc.poll() is not None:
                role = proc.args[5]
                raise RuntimeError(
                    f"a {role} process exited ({proc.returncode}) before the cluster was up:\n"
                    + "\n".join(cluster.log(r)[-2000:] for r in cluster.hosts)
                )
        try:
            with Client(cluster.scheduler_address, timeout=5) as client:
                client.wait_for_workers(n, timeout=max(1.0, deadline - time.monotonic()))
                return
        except (OSError, TimeoutError):
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{n} workers not connected within {timeout_s} s:\n"
                    + "\n".join(cluster.log(r)[-2000:] for r in cluster.hosts)
                ) from None
            time.sleep(0.2)


def worker_address(cluster: SimulatedCluster, role: str) -> str:
    """The Dask address of the worker running on host ``role``."""
    from distributed import Client

    with Client(cluster.scheduler_address, timeout=10) as client:
        (address,) = [
            a
            for a in client.scheduler_info(n_workers=-1)["workers"]
            if a.split("://", 1)[-1].startswith(f"{cluster.hosts[role].address}:")
        ]
    return address


def wait_until_mid_run(
    scheduler_address: str, worker: str, job_running=lambda: True, timeout_s: float = 120
) -> None:
    """Return once a partition of the job has been computed and ``worker`` is busy with
    another one (polling the scheduler's task states); raise if ``job_running()`` turns
    false first."""
    from distributed import Client

    def progress(dask_scheduler, worker=worker, name=PROCESS_TASK):
        prefix = dask_scheduler.task_prefixes.get(name)
        done = 0 if prefix is None else sum(prefix.states[s] for s in ("memory", "forgotten"))
        ws = dask_scheduler.workers.get(worker)
        return done, 0 if ws is None else len(ws.processing)

    deadline = time.monotonic() + timeout_s
    with Client(scheduler_address, timeout=10) as client:
        while time.monotonic() < deadline:
            done, busy = client.run_on_scheduler(progress)
            if done >= 1 and busy:
                return
            if not job_running():
                raise RuntimeError(f"the job ended before {worker} was busy mid-run")
            time.sleep(0.02)
    raise TimeoutError(f"the job made no progress on {worker} within {timeout_s} s")


def wait_until_removed(scheduler_address: str, worker: str, timeout_s: float = 300) -> None:
    """Return once the scheduler no longer counts ``worker`` among its workers."""
    from distributed import Client

    deadline = time.monotonic() + timeout_s
    with Client(scheduler_address, timeout=10) as client:
        while worker in client.scheduler_info(n_workers=-1)["workers"]:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{worker} still counted after {timeout_s} s")
            time.sleep(0.05)


# --- TLS, and processes that are not the cluster's --------------------------------------

#: ``cluster/tls.env`` with its certificates in a folder: ``tls_settings(folder)``.
tls_settings = _settings.tls_settings
#: ``cluster/make-certs.sh``: a CA and certificates for every role.
MAKE_CERTS = ROOT / "cluster" / "make-certs.sh"


def make_certificates(folder: Path) -> Path:
    """A CA and the certificates of every role in ``folder`` (``cluster/make-certs.sh``)."""
    subprocess.run(["bash", str(MAKE_CERTS), str(folder)], check=True, capture_output=True)
    return folder


def start_foreign_worker(
    cluster: SimulatedCluster, role: str, name: str, env: dict[str, str], scheduler: str
) -> subprocess.Popen:
    """A ``dask worker`` that is not one of the cluster's, on host ``role``, with exactly
    the ``DASK_*`` settings ``env`` (none of the cluster's), trying to join ``scheduler``;
    its output in ``<folder>/<name>.log``. The caller stops it (``os.killpg``); the
    host's teardown kills it in any case."""
    host = cluster.hosts[role]
    base = {k: v for k, v in os.environ.items() if not k.startswith("DASK_")}
    with open(cluster.folder / f"{name}.log", "wb") as log:
        return subprocess.Popen(
            ["ip", "netns", "exec", host.netns, DASK, "worker", scheduler, "--nthreads", "1",
             "--host", host.address, "--name", name, "--no-dashboard", "--no-nanny",
             "--local-directory", str(cluster.folder / name), "--death-timeout", "120"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**base, **env},
            start_new_session=True,
        )


def freeze_host(cluster: SimulatedCluster, role: str, frozen: bool = True) -> list[int]:
    """SIGSTOP (or SIGCONT) every process of the host: it hangs, as a stopped VM or a hung
    file system, but its kernel still acknowledges TCP (packets, keepalive probes);
    returns the pids."""
    pids = [int(p) for p in ip("netns", "pids", cluster.hosts[role].netns).split()]
    for pid in pids:
        try:
            os.kill(pid, signal.SIGSTOP if frozen else signal.SIGCONT)
        except ProcessLookupError:
            pass
    return pids
