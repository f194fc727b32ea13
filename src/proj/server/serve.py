"""Start uvicorn on the app: one process, or N worker processes that each build the app from the environment."""
from __future__ import annotations

import errno
import os
import socket
import ssl
from pathlib import Path
from typing import Callable

import uvicorn

from proj.auth.ratelimit import MAX_FAILURES
from proj.errors import ProjError, UsageError
from proj.server.app import ENV_ARTIFACTS, ENV_AUTH, ENV_MAX_ARTIFACT, ENV_STORE, build_app, server_auth
from proj.server.object_store import Bucket
from proj.server.state import DEFAULT_MAX_ARTIFACT_BYTES, ServerState
from proj.tracking.open import is_postgres


def check_port(host: str, port: int) -> None:
    """Refuse, with one line, an address another process listens on (before uvicorn logs a traceback-ish
    error and the workers start)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds: TIME_WAIT is no conflict
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ProjError(f"port {port} on {host} is in use by another process (choose another with --port)") from None
            raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror}") from None


def _tls(keyfile: Path | None, certfile: Path | None) -> dict[str, str]:
    """uvicorn's TLS options; both files or neither, each readable (one line instead of an ssl traceback)."""
    if (keyfile is None) != (certfile is None):
        raise UsageError("--ssl-keyfile and --ssl-certfile go together: give both (or neither, for plain HTTP)")
    if keyfile is None or certfile is None:
        return {}
    for flag, path in (("--ssl-keyfile", keyfile), ("--ssl-certfile", certfile)):
        if not path.is_file():
            raise UsageError(f"{flag} {path}: no such file")
    try:  # load them once here, so a wrong pair fails before anything listens
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(str(certfile), str(keyfile))
    except (ssl.SSLError, OSError) as exc:
        raise UsageError(f"--ssl-certfile {certfile} with --ssl-keyfile {keyfile}: not a usable certificate and "
                         f"key ({exc})") from None
    return {"ssl_keyfile": str(keyfile), "ssl_certfile": str(certfile)}


def serve(store_uri: str | None, artifacts_destination: Path | Bucket | None, host: str, port: int, workers: int,
          log_level: str, *, auth_default: str | None = None, auth_failed_logins: int = MAX_FAILURES,
          ssl_keyfile: Path | None = None, ssl_certfile: Path | None = None,
          ready: Callable[[], None] | None = None, max_artifact_bytes: int = DEFAULT_MAX_ARTIFACT_BYTES) -> None:
    """Serve until interrupted. The port is checked and the store opened (created, checked, migrated) first,
    so a port in use, a bad URI, a damaged store or an unusable bucket fails with one line before anything listens.
    ``auth_default``: --auth is on, with this default permission. ``ready``: called once all of that held, just
    before uvicorn listens (``proj ui`` prints its URL then: never a URL for a store that did not open)."""
    tls = _tls(ssl_keyfile, ssl_certfile)
    check_port(host, port)
    if isinstance(artifacts_destination, Bucket):
        artifacts_destination.check()  # once: a wrong endpoint, credential or bucket is one line, not a 500 later
    state = ServerState(store_uri, artifacts_destination, max_artifact_bytes)
    auth = server_auth(state, auth_default, auth_failed_logins) if auth_default else None
    if ready is not None:
        ready()
    common = {"host": host, "port": port, "log_level": log_level, "access_log": log_level in ("info", "debug",
                                                                                              "trace"), **tls}
    if workers <= 1:
        uvicorn.run(build_app(state, auth), **common)  # type: ignore[arg-type]
        return
    if auth_default:
        os.environ[ENV_AUTH] = f"{auth_default}:{auth_failed_logins}"
    # Worker processes import the app by name; they find the (already created) store in the environment.
    # (a PostgreSQL store by its URI: its files root is not a store of its own)
    os.environ[ENV_STORE] = state.store_uri if is_postgres(state.store_uri) else str(state.store_root)
    if artifacts_destination is not None:
        os.environ[ENV_ARTIFACTS] = str(artifacts_destination)
    os.environ[ENV_MAX_ARTIFACT] = str(max_artifact_bytes)
    state.store().close()
    uvicorn.run("proj.server.app:create_app", factory=True, workers=workers, **common)  # type: ignore[arg-type]
