"""``proj server --ssl-keyfile/--ssl-certfile``: HTTPS with a self-signed certificate (made by `openssl req`),
the pinned MLflow client trusting it through MLFLOW_TRACKING_SERVER_CERT_PATH or skipping the check with
MLFLOW_TRACKING_INSECURE_TLS, with --auth (Basic credentials only ever over TLS); bad TLS flags refused."""
from __future__ import annotations

import os
import shutil
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

from helpers.cli import require
from helpers.servers import free_port, run_client

pytestmark = [pytest.mark.mlflow, pytest.mark.network, pytest.mark.slow, pytest.mark.xdist_group("proj-server")]


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    require(shutil.which("openssl") is not None, "openssl is not installed (apt-get install openssl)")
    root = tmp_path_factory.mktemp("tls")
    key, crt = root / "key.pem", root / "cert.pem"
    made = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
                           "-out", str(crt), "-days", "2", "-subj", "/CN=127.0.0.1",
                           "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                          capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    return key, crt


def proj(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "proj", *args], input=stdin, capture_output=True, text=True,
                          timeout=120)


@pytest.fixture(scope="module")
def https(cert: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("tls-store")
    assert proj("server", "user", "add", "ann", "--backend-store-uri", str(root), stdin="ann-password\n").returncode == 0
    port = free_port()
    log = root / "server.log"
    with open(log, "wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "proj", "server", "--backend-store-uri", str(root),
                                    "--port", str(port), "--auth", "--ssl-keyfile", str(cert[0]),
                                    "--ssl-certfile", str(cert[1])], stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    url = f"https://127.0.0.1:{port}"
    context = ssl.create_default_context(cafile=str(cert[1]))
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, log.read_text()
            try:
                with urllib.request.urlopen(url + "/health", timeout=1, context=context) as resp:
                    assert resp.read() == b"OK"
                    break
            except OSError:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
        yield url
    finally:
        os.killpg(process.pid, 15)
        process.wait(timeout=15)


SCRIPT = '''
import json, mlflow
mlflow.set_experiment("over-tls")
with mlflow.start_run() as run:
    mlflow.log_metric("m", 1.5)
    mlflow.log_text("hello", "a.txt")
print(json.dumps({"metric": mlflow.get_run(run.info.run_id).data.metrics["m"],
                  "text": mlflow.artifacts.load_text(run.info.artifact_uri + "/a.txt")}))
'''


@pytest.mark.parametrize("trust", ["ca-bundle", "insecure"])
def test_mlflow_client_over_https(mlflow_full_venv: Path, https: str, cert: tuple[Path, Path], tmp_path: Path,
                                  trust: str) -> None:
    env = {"MLFLOW_TRACKING_USERNAME": "ann", "MLFLOW_TRACKING_PASSWORD": "ann-password",
           "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"}
    env.update({"MLFLOW_TRACKING_SERVER_CERT_PATH": str(cert[1])} if trust == "ca-bundle"
               else {"MLFLOW_TRACKING_INSECURE_TLS": "true"})
    assert run_client(mlflow_full_venv, SCRIPT, https, tmp_path, env=env) == {"metric": 1.5, "text": "hello"}


def test_plain_http_and_untrusted_certificates_fail(https: str) -> None:
    with pytest.raises(OSError):  # the certificate is not in the default trust store
        urllib.request.urlopen(https + "/health", timeout=5)
    with pytest.raises(OSError):  # no plain HTTP on the TLS port
        urllib.request.urlopen(https.replace("https:", "http:") + "/health", timeout=5)


def test_bad_tls_flags_are_one_line_errors(cert: tuple[Path, Path], tmp_path: Path) -> None:
    key, crt = cert
    for args, expected in ((["--ssl-keyfile", str(key)], "go together"),
                           (["--ssl-keyfile", str(tmp_path / "none.pem"), "--ssl-certfile", str(crt)],
                            "no such file"),
                           (["--ssl-keyfile", str(crt), "--ssl-certfile", str(key)], "not a usable certificate")):
        out = proj("server", "--backend-store-uri", str(tmp_path / "s"), "--port", str(free_port()), *args)
        assert out.returncode != 0 and expected in out.stderr, (args, out.stderr)
        assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1
