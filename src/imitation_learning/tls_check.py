"""The job's TLS settings, checked before it connects to a scheduler.

The job takes its certificates the way every Dask client does: from Dask's configuration,
``distributed.comm.tls.ca-file``, ``distributed.comm.tls.client.cert`` and
``distributed.comm.tls.client.key`` (or the ``DASK_DISTRIBUTED__COMM__TLS__*`` environment
variables), with a ``tls://`` scheduler address. It has no flags of its own for them.

Without them, Dask fails deep inside the connection (``TypeError: TLS expects a
ssl_context argument``); :func:`check_client_tls` fails first, with one line that names what
is missing or unusable and the variables to set (a :class:`~imitation_learning.preflight.
UsageError`: the command line prints it and exits with code 2, before any work).
"""

from __future__ import annotations

import os
import ssl

from imitation_learning.preflight import UsageError

#: Dask configuration key -> the environment variable that sets it.
CLIENT_TLS_SETTINGS = {
    "distributed.comm.tls.ca-file": "DASK_DISTRIBUTED__COMM__TLS__CA_FILE",
    "distributed.comm.tls.client.cert": "DASK_DISTRIBUTED__COMM__TLS__CLIENT__CERT",
    "distributed.comm.tls.client.key": "DASK_DISTRIBUTED__COMM__TLS__CLIENT__KEY",
}

_HOW = (
    "set DASK_DISTRIBUTED__COMM__TLS__CA_FILE, DASK_DISTRIBUTED__COMM__TLS__CLIENT__CERT and "
    "DASK_DISTRIBUTED__COMM__TLS__CLIENT__KEY (or distributed.comm.tls.ca-file / client.cert / "
    "client.key in the Dask config) to the cluster's CA and a client certificate it signed "
    "(cluster/make-certs.sh; cluster/README.md, \"TLS\")"
)


def scheme_of(address: str) -> str:
    """``tls`` / ``tcp`` / ...: the address's scheme, or Dask's default scheme without one."""
    from distributed.comm.addressing import parse_address

    return parse_address(address)[0]


def check_client_tls(address: str | None) -> None:
    """Raise :class:`UsageError` (one line) when the job could not connect to the scheduler
    at ``address`` for want of usable TLS settings: a ``tls://`` address without the CA, the
    client certificate or its key, files that cannot be read, a key that does not fit its
    certificate; or a plain ``tcp://`` address while Dask's configuration requires
    encryption. None (a local cluster, plain TCP on 127.0.0.1) needs nothing."""
    if address is None:
        return
    import dask
    import distributed  # noqa: F401  (loads distributed's defaults into dask.config)

    scheme = scheme_of(address)
    if scheme != "tls":
        if scheme == "tcp" and dask.config.get("distributed.comm.require-encryption", None):
            raise UsageError(
                f"the scheduler address {address!r} is plain TCP but Dask's configuration "
                "requires encryption (distributed.comm.require-encryption / "
                "DASK_DISTRIBUTED__COMM__REQUIRE_ENCRYPTION): use tls://host:port"
            )
        return
    values = {key: dask.config.get(key, None) for key in CLIENT_TLS_SETTINGS}
    missing = [
        CLIENT_TLS_SETTINGS[key]
        for key, value in values.items()
        if not value and not (key.endswith(".key") and _holds_key(values[_cert_key(key)]))
    ]
    if missing:
        raise UsageError(
            f"the scheduler address {address!r} is TLS but the job has no "
            f"{' / '.join(missing)} setting: {_HOW}"
        )
    for key, value in values.items():
        if value and "\n" not in str(value):  # a path (Dask also takes the PEM text itself)
            path = str(value)
            if not os.path.isfile(path) or not os.access(path, os.R_OK):
                why = "does not exist" if not os.path.exists(path) else "cannot be read"
                raise UsageError(
                    f"{CLIENT_TLS_SETTINGS[key]} ({key}) names {path}, which {why}: {_HOW}"
                )
    from distributed.security import Security

    try:
        context = Security().get_connection_args("client")["ssl_context"]
    except (ssl.SSLError, OSError, ValueError) as exc:
        raise UsageError(
            f"the job's TLS files cannot be used ({type(exc).__name__}: "
            f"{' '.join(str(exc).split())}): {_HOW}"
        ) from None
    if context is None:  # not expected once the three settings are there
        raise UsageError(f"no TLS context for the scheduler address {address!r}: {_HOW}")


def _cert_key(key_setting: str) -> str:
    return key_setting.removesuffix(".key") + ".cert"


def _holds_key(cert: object) -> bool:
    """Whether the certificate setting also holds the private key (Dask accepts the key
    appended to the certificate file, the key setting then left empty)."""
    if not cert:
        return False
    text = str(cert)
    if "\n" not in text:
        try:
            with open(text, errors="replace") as f:
                text = f.read()
        except OSError:
            return False  # reported as an unreadable file
    return "PRIVATE KEY-----" in text
