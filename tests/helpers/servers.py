"""Real tracking servers for tests: `proj server` and MLflow's own `mlflow server`, on free loopback ports,
and MLflow client scripts run in the side virtualenv that has the pinned MLflow."""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from helpers.cli import require

MLFLOW_VERSION = "3.17.2"  # the client (and peer server) the conformance tests pin; bump deliberately
# [auth]: Flask-WTF, which mlflow.server.get_app_client("basic-auth") and `mlflow server --app-name basic-auth` need
MLFLOW_PACKAGES = (f"mlflow[auth]=={MLFLOW_VERSION}",)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def build_mlflow_venv(cache: Path) -> Path:
    """A virtualenv with the full pinned MLflow (client, server, scikit-learn, pandas), built once with uv.
    ``cache`` is a worker's cache dir: the venv goes beside the workers' dirs, built by the first worker to get
    the lock, so both xdist workers share one build. ``PROJ_TEST_MLFLOW_VENV`` names an existing one instead
    (e.g. benchmarks/.mlflow-venv)."""
    given = os.environ.get("PROJ_TEST_MLFLOW_VENV")
    if given:
        return Path(given)
    import fcntl

    from uv import find_uv_bin

    shared = cache.parent.parent if cache.parent.name.startswith("popen-gw") else cache.parent
    venv = shared / f"mlflow-{MLFLOW_VERSION}-auth-venv"  # "-auth": a venv cached before [auth] is not reused
    done = venv / ".complete"
    with open(shared / f"mlflow-{MLFLOW_VERSION}-auth.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the other worker waits here, then finds it built
        if not done.exists():
            shutil.rmtree(venv, ignore_errors=True)
            uv = find_uv_bin()
            for argv in ([uv, "venv", "-q", "--python", sys.executable, str(venv)],
                         [uv, "pip", "install", "-q", "--python", str(venv / "bin" / "python"), *MLFLOW_PACKAGES]):
                out = subprocess.run(argv, capture_output=True, text=True, timeout=900)
                require(out.returncode == 0, f"cannot install {' '.join(MLFLOW_PACKAGES)} from the package index: "
                                             f"{out.stderr.strip()[-400:]}")
            done.touch()
    return venv


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def _wait_healthy(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited with {process.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            with urllib.request.urlopen(url + "/health", timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"server at {url} not healthy after {timeout}s:\n{log.read_text(errors='replace')[-3000:]}")


@contextmanager
def _serving(argv: list[str], port: int, log: Path, env: dict[str, str] | None, timeout: float) -> Iterator[Server]:
    with open(log, "wb") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})},
                                   start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, process, log, timeout)
        yield Server(url, process, log)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, 15)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, 9)
                process.wait()


@contextmanager
def proj_server(store: Path, log_dir: Path, *extra: str, env: dict[str, str] | None = None) -> Iterator[Server]:
    """`proj server` over the store at ``store`` (a directory), for real, on a free port."""
    port = free_port()
    argv = [sys.executable, "-m", "proj", "server", "--backend-store-uri", str(store), "--host", "127.0.0.1",
            "--port", str(port), *extra]
    with _serving(argv, port, log_dir / f"proj-server-{port}.log", env, 60) as server:
        yield server


# `mlflow server` without its job runner: by default it also starts `mlflow.server.jobs._job_runner` and seven
# huey consumers, eight more processes that each import mlflow (most of a start's CPU on a 2-core machine), for
# GenAI jobs and trace roll-ups that no tracking, registry or auth request the tests compare ever submits.
MLFLOW_SERVER_ENV = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}


@contextmanager
def mlflow_server(venv: Path, work: Path, *extra: str, timeout: float = 180) -> Iterator[Server]:
    """MLflow's own `mlflow server` (SQLite store, proxied artifacts in ``work``), for real, on a free port
    (without its job runner: MLFLOW_SERVER_ENV)."""
    port = free_port()
    work.mkdir(parents=True, exist_ok=True)
    argv = [str(venv / "bin" / "mlflow"), "server", "--backend-store-uri", f"sqlite:///{work / 'mlflow.db'}",
            "--artifacts-destination", str(work / "artifacts"), "--host", "127.0.0.1", "--port", str(port),
            "--workers", "1", *extra]
    with _serving(argv, port, work / f"mlflow-server-{port}.log", MLFLOW_SERVER_ENV, timeout) as server:
        yield server


def run_client(venv: Path, script: str, tracking_uri: str, cwd: Path, env: dict[str, str] | None = None,
               timeout: float = 300) -> Any:
    """Run a Python script with the pinned MLflow client against ``tracking_uri``; the script prints one JSON
    document as its last line of stdout, which is returned."""
    path = cwd / f"client_{abs(hash(script)) % 10**8}.py"
    path.write_text(textwrap.dedent(script))
    out = subprocess.run([str(venv / "bin" / "python"), str(path)], cwd=cwd, capture_output=True, text=True,
                         timeout=timeout, env={**os.environ, "MLFLOW_TRACKING_URI": tracking_uri,
                                               "GIT_PYTHON_REFRESH": "quiet", **(env or {})})
    assert out.returncode == 0, f"client script failed ({out.returncode}):\n{out.stdout[-3000:]}\n{out.stderr[-5000:]}"
    return json.loads(out.stdout.strip().splitlines()[-1])


# The start of every pinned-client script: ``client``, and ``out``, the dict the script fills for client_json.
CLIENT_PRELUDE = '''
import json
import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

client = MlflowClient()
out = {}
'''


def client_json(venv: Path, script: str, tracking_uri: str, cwd: Path, env: dict[str, str] | None = None,
                timeout: float = 300) -> Any:
    """``run_client`` of CLIENT_PRELUDE + ``script``: returns the ``out`` dict the script filled."""
    return run_client(venv, CLIENT_PRELUDE + script + "\nprint(json.dumps(out, default=str))\n", tracking_uri, cwd,
                      env, timeout)
