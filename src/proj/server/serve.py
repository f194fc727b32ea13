"""Start uvicorn on the app: one process, or N worker processes that each build the app from the environment."""
from __future__ import annotations

import errno
import os
import socket
from pathlib import Path

import uvicorn

from proj.errors import ProjError, UsageError
from proj.server.app import ENV_ARTIFACTS, ENV_STORE, build_app
from proj.server.state import ServerState


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


def serve(store_uri: str | None, artifacts_destination: Path | None, host: str, port: int, workers: int,
          log_level: str) -> None:
    """Serve until interrupted. The port is checked and the store opened (created, checked, migrated) first,
    so a port in use, a bad URI or a damaged store fails with one line before anything listens."""
    check_port(host, port)
    state = ServerState(store_uri, artifacts_destination)
    common = {"host": host, "port": port, "log_level": log_level, "access_log": log_level in ("info", "debug",
                                                                                              "trace")}
    if workers <= 1:
        uvicorn.run(build_app(state), **common)  # type: ignore[arg-type]
        return
    # Worker processes import the app by name; they find the (already created) store in the environment.
    os.environ[ENV_STORE] = str(state.store_root)
    if artifacts_destination is not None:
        os.environ[ENV_ARTIFACTS] = str(artifacts_destination)
    state.store().close()
    uvicorn.run("proj.server.app:create_app", factory=True, workers=workers, **common)  # type: ignore[arg-type]
