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
    } <= names
    assert os.access(CLUSTER / "local-cluster.sh", os.X_OK)
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


@pytest.mark.parametrize("script", ["local-cluster.sh", "slurm-batch.sh"])
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
    assert {".git", ".venv", "data", ".dask-cluster"} <= patterns
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
    assert command[:3] == ["dask", "worker", "tcp://scheduler:8786"]
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
        "tcp://scheduler:8786",
    ]
    assert flag_value(command, "--data-root") == "/data/games"
    assert flag_value(command, "--output") == "/data/processed"
    # The flags really exist in the project's CLI.
    args = build_parser().parse_args(command[1:])
    assert args.command == "preprocess"
    assert args.scheduler_address == "tcp://scheduler:8786"
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

    saved = copy.deepcopy(dask.config.config)
    yield
    dask.config.config.clear()
    dask.config.config.update(saved)


def test_slurm_example_builds_one_thread_workers(
    monkeypatch: pytest.MonkeyPatch, restore_dask_config
) -> None:
    created: dict = {}

    class FakeSLURMCluster:
        def __init__(self, **kwargs):
            created.update(kwargs)

    monkeypatch.setitem(
        sys.modules, "dask_jobqueue", types.SimpleNamespace(SLURMCluster=FakeSLURMCluster)
    )
    example = load_slurm_example()
    args = example.parse_args(
        ["--data-root", "/shared/games", "--jobs", "3", "--workers-per-job", "2"]
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
        assert service["env_file"] == "dask.env", name
        assert not any(k in settings for k in service.get("environment", {})), name
    # Helm: the scheduler and the workers both carry every setting, with the file's values
    for role in ("scheduler", "worker"):
        env = {e["name"]: e["value"] for e in helm[role]["env"]}
        assert {k: env.get(k) for k in settings} == settings, role


def test_slurm_example_gives_the_settings_to_scheduler_job_and_workers(
    monkeypatch: pytest.MonkeyPatch, restore_dask_config
) -> None:
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
    example = load_slurm_example()
    example.make_cluster(example.parse_args(["--data-root", "/shared/games"]))
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
