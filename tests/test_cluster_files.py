"""The deployment files in cluster/ (Docker, Compose, Helm, SLURM), checked by parsing.

Docker, Helm and dask-jobqueue are not available here, so these tests check what can be
checked without them: the files parse, run the `dask scheduler` / `dask worker`
subcommands with one thread per worker, and call the job with flags it really has.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import py_compile
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest
import yaml

from splendor_il.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
CLUSTER = ROOT / "cluster"


def load_yaml(name: str) -> dict:
    data = yaml.safe_load((CLUSTER / name).read_text())
    assert isinstance(data, dict)
    return data


def flag_value(args: list[str], flag: str) -> str:
    """The value following ``flag`` in an argument list (the last one if repeated)."""
    positions = [i for i, a in enumerate(args) if a == flag]
    assert positions, f"{flag} not in {args}"
    return str(args[positions[-1] + 1])


# --- everything under cluster/ ---------------------------------------------------------


def test_expected_files_exist() -> None:
    names = {p.name for p in CLUSTER.iterdir()}
    assert {
        "local-cluster.sh",
        "Dockerfile",
        "docker-compose.yml",
        "helm-values.yaml",
        "slurm_jobqueue.py",
        "slurm-batch.sh",
        "README.md",
        "make-certs.sh",
        "tls.env",
    } <= names
    assert os.access(CLUSTER / "local-cluster.sh", os.X_OK)
    assert os.access(CLUSTER / "make-certs.sh", os.X_OK)
    assert os.access(CLUSTER / "slurm-batch.sh", os.X_OK)


def test_no_hyphenated_dask_commands_anywhere() -> None:
    # dask-scheduler / dask-worker were removed from distributed (2026.6): only the
    # `dask scheduler` / `dask worker` subcommands exist.
    offenders = []
    for path in CLUSTER.rglob("*"):
        if path.is_file():
            text = path.read_text(errors="replace")
            for bad in ("dask-scheduler", "dask-worker", "dask-ssh"):
                if bad in text:
                    offenders.append(f"{path.relative_to(ROOT)}: {bad}")
    assert offenders == []


@pytest.mark.parametrize("script", ["local-cluster.sh", "slurm-batch.sh", "make-certs.sh"])
def test_shell_scripts_parse_and_are_strict(script: str) -> None:
    path = CLUSTER / script
    result = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "set -euo pipefail" in path.read_text()


# --- Docker -----------------------------------------------------------------------------


def test_dockerfile_installs_the_locked_environment() -> None:
    lines = [
        line.strip()
        for line in (CLUSTER / "Dockerfile").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert lines[0] == "FROM python:3.11-slim"
    assert any("uv" in line and line.startswith(("COPY", "RUN")) for line in lines[:3])

    def first(pattern: str) -> int:
        matches = [i for i, line in enumerate(lines) if re.search(pattern, line)]
        assert matches, pattern
        return matches[0]

    # pyproject.toml + uv.lock first, the locked dependency sync, and only then the source.
    copy_lock = first(r"^COPY .*pyproject\.toml.*uv\.lock")
    sync_deps = first(r"^RUN uv sync --locked --no-dev")
    copy_src = first(r"^COPY src")
    assert copy_lock < sync_deps < copy_src
    syncs = [line for line in lines if "uv sync" in line]
    assert syncs and all("--locked" in s and "--no-dev" in s for s in syncs)
    assert first(r"^RUN uv sync") > copy_lock
    assert any(line.startswith("USER ") and "root" not in line for line in lines)


def test_dockerignore_keeps_the_build_inputs_and_drops_the_rest() -> None:
    patterns = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".git", ".venv", "data", ".dask-cluster", "cluster/tls"} <= patterns  # no keys
    for needed in ("pyproject.toml", "uv.lock", "src", "README.md", "cluster"):
        assert needed not in patterns


# --- Compose ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict:
    return load_yaml("docker-compose.yml")


def test_compose_services_share_the_image_and_the_data_volume(compose: dict) -> None:
    services = compose["services"]
    assert {"scheduler", "worker", "job"} <= set(services)
    assert "data" in compose["volumes"]
    images = {name: svc["image"] for name, svc in services.items()}
    assert len(set(images.values())) == 1, images
    for name in ("scheduler", "worker", "job"):
        svc = services[name]
        assert svc["build"]["dockerfile"] == "cluster/Dockerfile"
        assert (CLUSTER / svc["build"]["context"] / "pyproject.toml").is_file()
        assert "data:/data" in svc["volumes"], name


def test_compose_scheduler(compose: dict) -> None:
    scheduler = compose["services"]["scheduler"]
    command = [str(a) for a in scheduler["command"]]
    assert command[:2] == ["dask", "scheduler"]
    assert flag_value(command, "--port") == "8786"
    assert flag_value(command, "--dashboard-address").endswith(":8787")
    # Published on the host's loopback only (the dashboard has no authentication).
    assert sorted(scheduler["ports"]) == ["127.0.0.1:8786:8786", "127.0.0.1:8787:8787"]


def test_compose_worker_is_single_threaded_and_scalable(compose: dict) -> None:
    worker = compose["services"]["worker"]
    command = [str(a) for a in worker["command"]]
    assert command[:3] == ["dask", "worker", "tls://scheduler:8786"]
    assert flag_value(command, "--nthreads") == "1"
    assert flag_value(command, "--nworkers") == "1"
    # `--scale worker=N` needs no fixed container name or host port.
    assert "container_name" not in worker
    assert "ports" not in worker


def test_compose_job_runs_preprocess_on_the_cluster(compose: dict) -> None:
    job = compose["services"]["job"]
    assert job["profiles"] == ["job"]
    command = [str(a) for a in job["command"]]
    assert command[:4] == [
        "splendor-il",
        "preprocess",
        "--scheduler-address",
        "tls://scheduler:8786",
    ]
    assert flag_value(command, "--data-root") == "/data/games"
    assert flag_value(command, "--output") == "/data/processed"
    # The flags really exist in the project's CLI.
    args = build_parser().parse_args(command[1:])
    assert args.command == "preprocess"
    assert args.scheduler_address == "tls://scheduler:8786"
    assert args.data_root == "/data/games"
    assert args.output == "/data/processed"


# --- Helm -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def helm() -> dict:
    return load_yaml("helm-values.yaml")


def test_helm_scheduler_and_workers_use_the_project_image(helm: dict) -> None:
    scheduler, worker = helm["scheduler"]["image"], helm["worker"]["image"]
    assert scheduler["repository"] == worker["repository"]
    assert "splendor-il" in scheduler["repository"]
    assert str(scheduler["tag"]) == str(worker["tag"])
    assert worker["dask_worker"] == ["dask", "worker"]
    # Fixed object names, so that the documented address tcp://splendor-scheduler:8786 holds.
    assert helm["fullnameOverride"] == "splendor"


def test_helm_workers_are_single_threaded(helm: dict) -> None:
    worker = helm["worker"]
    assert isinstance(worker["replicas"], int) and worker["replicas"] >= 1
    # The chart turns threads_per_worker into --nthreads when resources.limits is set ...
    assert worker["threads_per_worker"] == 1
    assert worker["resources"]["limits"]["cpu"] == 1
    assert worker["resources"]["requests"]["memory"]
    # ... and extraArgs keeps it at one thread in any case.
    assert flag_value([str(a) for a in worker["extraArgs"]], "--nthreads") == "1"


def test_helm_keeps_everything_private_and_mounts_shared_data(helm: dict) -> None:
    assert helm["scheduler"]["serviceType"] == "ClusterIP"
    assert helm["webUI"]["ingress"]["enabled"] is False
    assert helm["jupyter"]["enabled"] is False
    mounts = helm["worker"]["mounts"]
    assert [m["mountPath"] for m in mounts["volumeMounts"]] == ["/data"]
    volume_names = {v["name"] for v in mounts["volumes"]}
    assert {m["name"] for m in mounts["volumeMounts"]} <= volume_names


# --- SLURM ------------------------------------------------------------------------------


def load_slurm_example() -> types.ModuleType:
    spec = importlib.util.spec_from_file_location("slurm_jobqueue", CLUSTER / "slurm_jobqueue.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # dask_jobqueue is only imported inside functions
    return module


def test_slurm_example_compiles_and_is_guarded(tmp_path: Path) -> None:
    source = CLUSTER / "slurm_jobqueue.py"
    py_compile.compile(str(source), cfile=str(tmp_path / "x.pyc"), doraise=True)
    tree = ast.parse(source.read_text())
    guards = [
        node
        for node in tree.body
        if isinstance(node, ast.If) and "__name__" in ast.unparse(node.test)
    ]
    assert len(guards) == 1
    calls = {ast.unparse(node.func) for node in ast.walk(tree) if isinstance(node, ast.Call)}
    assert {"SLURMCluster", "process_files_parallel", "cluster.scale", "Client"} <= calls
    text = source.read_text()
    assert "pip install dask-jobqueue" in text
    assert "from imitation_learning.parallel_processor import" in text


@pytest.fixture
def restore_dask_config():
    """The SLURM example sets the cluster's settings for its whole process: undo that."""
    import copy

    import dask
    import distributed  # noqa: F401  (its defaults loaded first: kept, not cleared, below)

    saved = copy.deepcopy(dask.config.config)
    yield
    dask.config.config.clear()
    dask.config.config.update(saved)


@pytest.fixture
def slurm_example(monkeypatch: pytest.MonkeyPatch, restore_dask_config):
    """The SLURM example with a fake ``dask_jobqueue.SLURMCluster``, and what that fake was
    given: its keyword arguments and, under ``"config at start"``, the settings of
    ``cluster/dask.env`` as Dask's configuration held them when the cluster was made."""
    import dask

    created: dict = {}

    class FakeSLURMCluster:
        def __init__(self, **kwargs):
            created.update(kwargs)
            created["config at start"] = {
                config_key(n): dask.config.get(config_key(n)) for n in dask_env()
            }

    monkeypatch.setitem(
        sys.modules, "dask_jobqueue", types.SimpleNamespace(SLURMCluster=FakeSLURMCluster)
    )
    return load_slurm_example(), created


def test_slurm_example_builds_one_thread_workers(slurm_example, tmp_path: Path) -> None:
    example, created = slurm_example
    args = example.parse_args(
        ["--data-root", "/shared/games", "--jobs", "3", "--workers-per-job", "2"]
        + ["--tls-dir", str(tmp_path / "tls")]
    )
    assert args.jobs == 3
    example.make_cluster(args)
    assert created["cores"] == created["processes"] == 2  # cores / processes = 1 thread
    assert created["memory"] == "8.00 GiB"  # 2 workers x 4 GiB
    assert created["scheduler_options"]["dashboard_address"].startswith("127.0.0.1:")
    assert created["python"] == sys.executable


def test_slurm_batch_script_starts_scheduler_and_workers_by_file() -> None:
    text = (CLUSTER / "slurm-batch.sh").read_text()
    assert text.startswith("#!/usr/bin/env bash")
    assert re.search(r"^dask scheduler --scheduler-file ", text, re.M)
    worker_line = re.search(r"srun [^\n]*\\\n\s*dask worker --scheduler-file ([^\n]*)", text)
    assert worker_line, "srun ... dask worker --scheduler-file"
    assert re.search(r"--nthreads 1\b", text)
    assert "#SBATCH --cpus-per-task=1" in text
    assert re.search(r"splendor-il preprocess --scheduler-address ", text)


# --- the cluster's Dask settings (cluster/dask.env) in every deployment ------------------


def dask_env() -> dict[str, str]:
    """``cluster/dask.env`` as NAME -> value (the file every deployment takes them from)."""
    settings = {}
    for line in (CLUSTER / "dask.env").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, sep, value = line.partition("=")
            assert sep and name == name.strip() and value == value.strip(), line
            settings[name] = value
    return settings


def config_key(name: str) -> str:
    return name.removeprefix("DASK_").lower().replace("__", ".").replace("_", "-")


def test_dask_env_names_real_settings_with_valid_values() -> None:
    import dask
    import distributed  # noqa: F401  (loads distributed's defaults into dask.config)
    from dask.utils import parse_timedelta

    settings = dask_env()
    assert set(settings) == {
        "DASK_DISTRIBUTED__SCHEDULER__WORKER_SATURATION",
        "DASK_DISTRIBUTED__COMM__TIMEOUTS__TCP",
        "DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT",
        "DASK_DISTRIBUTED__SCHEDULER__WORKER_TTL",
    }
    for name in settings:  # each one a key of Dask's own configuration (no typo)
        dask.config.get(config_key(name))
    # Dask reads environment values as Python literals where they are ones
    parsed = dask.config.collect_env(settings)

    def get(key):
        return dask.config.get(key, config=parsed)

    assert get("distributed.scheduler.worker-saturation") == 1.0
    tcp = parse_timedelta(get("distributed.comm.timeouts.tcp"))
    connect = parse_timedelta(get("distributed.comm.timeouts.connect"))
    ttl = parse_timedelta(get("distributed.scheduler.worker-ttl"))
    # Dask's keepalive arithmetic refuses less than 11 s (10 probes + an idle second)
    assert 11 <= tcp <= 15
    assert connect <= 10
    assert tcp < ttl <= 60


def test_every_deployment_takes_the_dask_settings_from_dask_env(compose, helm) -> None:
    settings = dask_env()
    # local-cluster.sh and slurm-batch.sh source the file with auto-export, before starting
    for script, root in (("local-cluster.sh", "$ROOT"), ("slurm-batch.sh", "$PROJECT")):
        text = (CLUSTER / script).read_text()
        sourced = text.index(f'source "{root}/cluster/dask.env"')
        assert text.rindex("set -a", 0, sourced) > text.rfind("set +a", 0, sourced), script
        starts = text.index("launch scheduler" if root == "$ROOT" else "\ndask scheduler")
        assert sourced < starts, script
        assert "DASK_DISTRIBUTED__" not in text.replace("DASK_DISTRIBUTED__SCHEDULER", "")
    # Compose: every service (scheduler, workers, the job) reads the file, and nothing
    # overrides it
    for name, service in compose["services"].items():
        assert service["env_file"][0] == "dask.env", name
        assert not any(k in settings for k in service.get("environment", {})), name
    # Helm: the scheduler and the workers both carry every setting, with the file's values
    for role in ("scheduler", "worker"):
        env = {e["name"]: e.get("value") for e in helm[role]["env"]}
        assert {k: env.get(k) for k in settings} == settings, role


def test_slurm_example_gives_the_settings_to_scheduler_job_and_workers(
    slurm_example, tmp_path: Path
) -> None:
    import dask

    example, created = slurm_example
    example.make_cluster(
        example.parse_args(["--data-root", "/shared/games", "--tls-dir", str(tmp_path / "tls")])
    )
    settings = dask_env()
    for name, value in settings.items():
        assert f"export {name}={value}" in created["job_script_prologue"]
    # the scheduler and the job run in the example's process: the settings are its own,
    # with the types Dask gives environment values, from the start and for the whole run
    parsed = dask.config.collect_env(settings)
    want = {config_key(n): dask.config.get(config_key(n), config=parsed) for n in settings}
    assert want["distributed.scheduler.worker-saturation"] == 1.0  # a number, not "1.0"
    assert created["config at start"] == want
    assert {key: dask.config.get(key) for key in want} == want


def test_readme_documents_every_setting() -> None:
    readme = (CLUSTER / "README.md").read_text()
    section = readme[readme.index("## Time-outs") :]
    for name, value in dask_env().items():
        key = config_key(name)
        assert key in section and value in section, key


# --- TLS with mutual authentication (cluster/tls.env, cluster/make-certs.sh) --------------

TLS_DIR_IN_FILE = "/etc/dask-tls"
ROLES = ("scheduler", "worker", "client")


def tls_env() -> dict[str, str]:
    settings = {}
    for line in (CLUSTER / "tls.env").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, sep, value = line.partition("=")
            assert sep and name == name.strip() and value == value.strip(), line
            settings[name] = value
    return settings


def role_variables(role: str) -> set[str]:
    """The variables a process of ``role`` needs: the common ones, the CA, its own pair."""
    return {
        name
        for name in tls_env()
        if "__TLS__" not in name or name.endswith("__CA_FILE") or f"__{role.upper()}__" in name
    }


def test_tls_env_names_real_settings_requiring_tls_everywhere() -> None:
    import dask
    import distributed  # noqa: F401

    settings = tls_env()
    for name in settings:
        dask.config.get(config_key(name))  # each a key of Dask's own configuration
    parsed = dask.config.collect_env(settings)

    def get(key):
        return dask.config.get(key, config=parsed)

    assert get("distributed.comm.require-encryption") is True
    assert get("distributed.comm.default-scheme") == "tls"
    assert get("distributed.comm.tls.ca-file") == f"{TLS_DIR_IN_FILE}/ca.crt"
    for role in ROLES:
        assert get(f"distributed.comm.tls.{role}.cert") == f"{TLS_DIR_IN_FILE}/{role}.crt"
        assert get(f"distributed.comm.tls.{role}.key") == f"{TLS_DIR_IN_FILE}/{role}.key"
    assert not set(settings) & set(dask_env())  # the two files set different things


def test_make_certs_signs_a_pair_for_every_role_with_its_own_ca(tmp_path: Path) -> None:
    import ssl

    folder = tmp_path / "tls"
    script = CLUSTER / "make-certs.sh"
    done = subprocess.run([str(script), str(folder)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        f"{name}.{ext}" for name in ("ca", *ROLES) for ext in ("crt", "key")
    )
    assert folder.stat().st_mode & 0o077 == 0
    for name in ("ca", *ROLES):
        assert (folder / f"{name}.key").stat().st_mode & 0o077 == 0, name  # keys: owner only
    for role in ROLES:
        verify = subprocess.run(
            ["openssl", "verify", "-CAfile", str(folder / "ca.crt"), str(folder / f"{role}.crt")],
            capture_output=True,
            text=True,
        )
        assert verify.returncode == 0, verify.stdout + verify.stderr
        # the pair loads as Dask loads it (both ways: every process listens and connects)
        for purpose in (ssl.Purpose.SERVER_AUTH, ssl.Purpose.CLIENT_AUTH):
            ctx = ssl.create_default_context(purpose, cafile=str(folder / "ca.crt"))
            ctx.load_cert_chain(folder / f"{role}.crt", folder / f"{role}.key")
    # a second CA is another authority: it does not sign the first one's certificates
    other = tmp_path / "other"
    subprocess.run([str(script), str(other)], capture_output=True, check=True)
    verify = subprocess.run(
        ["openssl", "verify", "-CAfile", str(other / "ca.crt"), str(folder / "worker.crt")],
        capture_output=True,
    )
    assert verify.returncode != 0
    # existing files are never overwritten
    before = (folder / "ca.key").read_bytes()
    again = subprocess.run([str(script), str(folder)], capture_output=True, text=True)
    assert again.returncode == 1 and "not overwriting" in again.stderr
    assert (folder / "ca.key").read_bytes() == before
    usage = subprocess.run([str(script)], capture_output=True, text=True)
    assert usage.returncode == 2 and "usage" in usage.stderr


def test_compose_runs_tls_with_mutual_authentication(compose: dict) -> None:
    services = compose["services"]
    command = [str(a) for a in services["scheduler"]["command"]]
    assert flag_value(command, "--protocol") == "tls"
    for name, role in (("scheduler", "scheduler"), ("worker", "worker"), ("job", "client")):
        service = services[name]
        assert service["env_file"] == ["dask.env", "tls.env"], name
        mounts = {
            target: source
            for source, target, *mode in (v.split(":") for v in service["volumes"])
            if target.startswith(TLS_DIR_IN_FILE)
        }
        # the CA's certificate and the role's own pair, read-only; no other key, no CA key
        assert mounts == {
            f"{TLS_DIR_IN_FILE}/{f}": f"./tls/{f}" for f in ("ca.crt", f"{role}.crt", f"{role}.key")
        }, name
        assert all(v.endswith(":ro") for v in service["volumes"] if TLS_DIR_IN_FILE in v)
        # every address of a peer is tls://
        assert not any("tcp://" in str(a) for a in service["command"]), name
    assert "tls://scheduler:8786" in services["worker"]["command"]


def test_helm_runs_tls_with_mutual_authentication(helm: dict) -> None:
    settings = tls_env()
    assert flag_value([str(a) for a in helm["scheduler"]["extraArgs"]], "--protocol") == "tls"
    for role in ("scheduler", "worker"):
        env = {e["name"]: e for e in helm[role]["env"]}
        tls_names = {n for n in env if n in settings}
        assert tls_names == role_variables(role), role
        for name in tls_names:
            if "__TLS__" in name:  # the PEM text from the Secret, under the file's name
                ref = env[name]["valueFrom"]["secretKeyRef"]
                assert ref["name"] == "splendor-tls"
                assert ref["key"] == settings[name].removeprefix(f"{TLS_DIR_IN_FILE}/"), name
            else:
                assert env[name]["value"] == settings[name], name
    text = (CLUSTER / "helm-values.yaml").read_text()
    assert "tcp://" not in text and "tls://splendor-scheduler:8786" in text
    assert "ca.key" not in text  # the CA's key never goes into the Secret


def test_slurm_batch_script_runs_tls_with_a_ca_of_its_own(tmp_path: Path) -> None:
    text = (CLUSTER / "slurm-batch.sh").read_text()
    assert "tcp://" not in text
    made = text.index('"$PROJECT/cluster/make-certs.sh" "$TLS_DIR"')
    assert text.index('rm -f "$TLS_DIR/ca.key"') > made
    assert re.search(r"^dask scheduler --scheduler-file \S+ --protocol tls ", text, re.M)
    assert made < text.index("\ndask scheduler") < text.index("splendor-il preprocess")
    # the lines that turn tls.env into this job's variables, run as the script runs them
    start = text.index("while IFS='=' read -r name value")
    block = text[start : text.index("\n\n", start)]
    probe = f"set -euo pipefail\nPROJECT={ROOT}\nTLS_DIR={tmp_path}\n{block}\nenv\n"
    env = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, check=True)
    got = dict(
        line.split("=", 1) for line in env.stdout.splitlines() if line.startswith("DASK_")
    )
    want = {n: v.replace(TLS_DIR_IN_FILE, str(tmp_path)) for n, v in tls_env().items()}
    assert {n: got.get(n) for n in want} == want


def test_slurm_example_runs_tls_with_mutual_authentication(slurm_example, tmp_path: Path) -> None:
    import dask

    example, created = slurm_example
    folder = tmp_path / "tls"
    example.make_cluster(example.parse_args(["--data-root", "/x", "--tls-dir", str(folder)]))
    assert (folder / "ca.crt").is_file()  # made by make-certs.sh
    assert created["protocol"] == "tls://"
    security = created["security"]
    assert security.require_encryption is True
    assert security.tls_ca_file == str(folder / "ca.crt")
    for role in ROLES:
        assert getattr(security, f"tls_{role}_cert") == str(folder / f"{role}.crt")
        assert getattr(security, f"tls_{role}_key") == str(folder / f"{role}.key")
    for name, value in tls_env().items():  # the workers' job script
        value = value.replace(TLS_DIR_IN_FILE, str(folder))
        assert f"export {name}={value}" in created["job_script_prologue"]
    # the job runs in this process: its client certificate is in the configuration
    assert dask.config.get("distributed.comm.tls.client.cert") == str(folder / "client.crt")
    # and made once: a second cluster keeps the certificates
    before = (folder / "ca.crt").read_bytes()
    example.make_cluster(example.parse_args(["--data-root", "/x", "--tls-dir", str(folder)]))
    assert (folder / "ca.crt").read_bytes() == before


def test_local_cluster_stays_plain_tcp_on_loopback() -> None:
    text = (CLUSTER / "local-cluster.sh").read_text()
    assert "tls.env" not in text
    hosts = re.findall(r"--host (\S+)", text)
    assert hosts and set(hosts) == {"127.0.0.1"}
