"""The job's TLS settings checked before it connects (``imitation_learning.tls_check``):
one line naming what is missing and the variables to set, never Dask's TypeError. No
cluster needed: the check runs before any connection."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dask
import distributed  # noqa: F401  (its defaults loaded before any dask.config.set below)
import pytest

from imitation_learning.preflight import UsageError
from imitation_learning.tls_check import check_client_tls

ROOT = Path(__file__).resolve().parents[1]
ADDRESS = "tls://127.0.0.1:9"  # nothing listens there: the check must not need it


@pytest.fixture(scope="module")
def certs(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("certs") / "tls"
    subprocess.run(
        ["bash", str(ROOT / "cluster" / "make-certs.sh"), str(folder)],
        check=True,
        capture_output=True,
    )
    return folder


def client(ca=None, cert=None, key=None, **extra) -> dict:
    keys = {
        "distributed.comm.tls.ca-file": ca,
        "distributed.comm.tls.client.cert": cert,
        "distributed.comm.tls.client.key": key,
    }
    return {k: None if v is None else str(v) for k, v in keys.items()} | extra


def test_nothing_is_needed_without_a_tls_address() -> None:
    with dask.config.set(client()):
        check_client_tls(None)
        check_client_tls("tcp://10.0.0.5:8786")


def test_a_complete_and_matching_client_pair_passes(certs: Path) -> None:
    with dask.config.set(client(certs / "ca.crt", certs / "client.crt", certs / "client.key")):
        check_client_tls(ADDRESS)
    # the key appended to the certificate file, the key setting left empty (Dask allows it)
    both = certs.parent / "client-with-key.pem"
    both.write_bytes((certs / "client.crt").read_bytes() + (certs / "client.key").read_bytes())
    with dask.config.set(client(certs / "ca.crt", both)):
        check_client_tls(ADDRESS)
    # the PEM text itself instead of paths (as the Helm values pass it)
    pem = client(*((certs / n).read_text() for n in ("ca.crt", "client.crt", "client.key")))
    with dask.config.set(pem):
        check_client_tls(ADDRESS)


@pytest.mark.parametrize(
    "case, needle",
    [
        ("nothing", "DASK_DISTRIBUTED__COMM__TLS__CA_FILE / DASK_DISTRIBUTED__COMM__TLS__CLIENT__CERT"),
        ("no key", "no DASK_DISTRIBUTED__COMM__TLS__CLIENT__KEY setting"),
        ("missing file", "which does not exist"),
        ("key of another pair", "KEY_VALUES_MISMATCH"),
    ],
)
def test_what_is_wrong_is_said_on_one_line(certs: Path, case: str, needle: str) -> None:
    settings = {
        "nothing": client(),
        "no key": client(certs / "ca.crt", certs / "client.crt"),
        "missing file": client(certs / "nope.crt", certs / "client.crt", certs / "client.key"),
        "key of another pair": client(certs / "ca.crt", certs / "client.crt", certs / "worker.key"),
    }[case]
    with dask.config.set(settings), pytest.raises(UsageError) as caught:
        check_client_tls(ADDRESS)
    message = str(caught.value)
    assert needle in message and "\n" not in message
    assert "cluster/make-certs.sh" in message


def test_plain_tcp_while_encryption_is_required_is_refused() -> None:
    with dask.config.set({"distributed.comm.require-encryption": True}):
        with pytest.raises(UsageError, match="use tls://host:port"):
            check_client_tls("tcp://10.0.0.5:8786")


def test_command_line_stops_before_any_work_with_one_line(tmp_path: Path) -> None:
    games = ROOT / "data" / "games"
    out = tmp_path / "processed"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DASK_")}
    cli = [sys.executable, "-c", "import sys; from splendor_il.cli import main; sys.exit(main())"]
    done = subprocess.run(
        [*cli, "preprocess", "--data-root", str(games), "--output", str(out),
         "--scheduler-address", ADDRESS, "--no-progress"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120,
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "TLS expects" not in done.stderr, done.stderr
    assert lines[0].startswith("splendor-il preprocess: the scheduler address 'tls://")
    assert "DASK_DISTRIBUTED__COMM__TLS__CLIENT__CERT" in lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing written
