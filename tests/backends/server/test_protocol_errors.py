"""`proj server` answers bad requests as MLflow's server does (raw HTTP): error JSON with MLflow's codes and
statuses, no traceback; and `proj server` itself refuses a port in use, a bad store URI and a damaged store."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import pytest

from helpers.cli import wait_for
from helpers.servers import Server, free_port, proj_server
from proj import __version__

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("proj-server")]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    work = tmp_path_factory.mktemp("proj-server-errors")
    with proj_server(work / "store", work) as running:
        yield running


def http(server: Server, method: str, path: str, body: bytes | None = None,
         content_type: str | None = "application/json") -> tuple[int, Any, str]:
    headers = {"Content-Type": content_type} if content_type else {}
    request = urllib.request.Request(server.url + path, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            raw = resp.read().decode()
            status, kind = resp.status, resp.headers.get("content-type", "")
    except urllib.error.HTTPError as exc:
        raw = exc.read().decode()
        status, kind = exc.code, exc.headers.get("content-type", "")
    return status, json.loads(raw) if "json" in kind else raw, raw


def post(server: Server, path: str, payload: Any) -> tuple[int, Any, str]:
    return http(server, "POST", "/api/2.0/mlflow/" + path, json.dumps(payload).encode())


def test_health_version_server_info(server: Server) -> None:
    assert http(server, "GET", "/health")[1] == "OK"
    assert http(server, "GET", "/version")[1] == __version__
    for prefix in ("/api/3.0/mlflow", "/ajax-api/3.0/mlflow"):
        status, info, _ = http(server, "GET", prefix + "/server-info")
        assert status == 200 and info["workspaces_enabled"] is False and info["multipart_uploads_enabled"] is False


def test_ui_prefix_serves_the_same_calls(server: Server) -> None:
    status, body, _ = http(server, "GET", "/ajax-api/2.0/mlflow/experiments/get?experiment_id=0")
    assert status == 200 and body["experiment"]["name"] == "Default"


@pytest.mark.parametrize(("method", "path", "body", "content_type", "status", "code", "words"), [
    ("GET", "/api/2.0/mlflow/no-such-endpoint", None, None, 404, "ENDPOINT_NOT_FOUND", "no-such-endpoint"),
    ("POST", "/api/2.0/mlflow/runs/get", b"{}", "application/json", 405, "ENDPOINT_NOT_FOUND", "POST"),
    ("POST", "/api/2.0/mlflow/runs/log-metric", b"{not json", "application/json", 400, "INVALID_PARAMETER_VALUE",
     "Malformed JSON"),
    ("POST", "/api/2.0/mlflow/runs/log-metric", b"[1, 2]", "application/json", 400, "INVALID_PARAMETER_VALUE",
     "JSON object"),
    ("POST", "/api/2.0/mlflow/runs/log-metric", b"key=x", "application/x-www-form-urlencoded", 400,
     "INVALID_PARAMETER_VALUE", "Content-Type must be one of ['application/json']"),
    ("POST", "/api/2.0/mlflow/runs/log-metric", b"{}", "application/json", 400, "INVALID_PARAMETER_VALUE",
     "Missing value for required parameter 'run_id'"),
    ("POST", "/api/2.0/mlflow/experiments/create", b'{"name": ""}', "application/json", 400,
     "INVALID_PARAMETER_VALUE", "experiment name"),
    ("GET", "/api/2.0/mlflow/runs/get?run_id=" + "0" * 32, None, None, 404, "RESOURCE_DOES_NOT_EXIST", "0" * 32),
    ("GET", "/api/2.0/mlflow/experiments/get?experiment_id=424242", None, None, 404, "RESOURCE_DOES_NOT_EXIST",
     "424242"),
    ("GET", "/api/2.0/mlflow/experiments/get-by-name?experiment_name=nope", None, None, 404,
     "RESOURCE_DOES_NOT_EXIST", "nope"),
    ("GET", "/api/2.0/mlflow/metrics/get-history?metric_key=m", None, None, 400, "INVALID_PARAMETER_VALUE",
     "run_id"),
    ("GET", "/api/2.0/mlflow/metrics/get-history-bulk-interval?run_ids=a&metric_key=m&max_results=9999", None,
     None, 400, "INVALID_PARAMETER_VALUE", "between 1 and 2500"),
    ("GET", "/api/2.0/mlflow/metrics/get-history-bulk-interval?run_ids=a&metric_key=m&start_step=3", None, None,
     400, "INVALID_PARAMETER_VALUE", "both must be specified"),
    ("POST", "/api/2.0/mlflow/runs/search", b'{"max_results": 50001}', "application/json", 400,
     "INVALID_PARAMETER_VALUE", "50000"),
    ("POST", "/api/2.0/mlflow/runs/search", b'{"max_results": "many"}', "application/json", 400,
     "INVALID_PARAMETER_VALUE", "max_results"),
    ("GET", "/api/2.0/mlflow/logged-models/m-00000000000000000000000000000000", None, None, 404,
     "RESOURCE_DOES_NOT_EXIST", "m-0000"),
])
def test_bad_requests(server: Server, method: str, path: str, body: bytes | None, content_type: str | None,
                      status: int, code: str, words: str) -> None:
    got_status, got, raw = http(server, method, path, body, content_type)
    assert (got_status, got["error_code"]) == (status, code), raw
    assert words in got["message"], raw
    assert "Traceback" not in raw and "\n" not in got["message"]


def test_duplicate_experiment_and_changed_param_codes(server: Server) -> None:
    assert post(server, "experiments/create", {"name": "dup"})[0] == 200
    status, body, _ = post(server, "experiments/create", {"name": "dup"})
    assert (status, body["error_code"]) == (400, "RESOURCE_ALREADY_EXISTS")
    run_id = post(server, "runs/create", {"experiment_id": "0", "start_time": 1})[1]["run"]["info"]["run_id"]
    assert post(server, "runs/log-parameter", {"run_id": run_id, "key": "a", "value": "1"})[0] == 200
    status, body, _ = post(server, "runs/log-parameter", {"run_id": run_id, "key": "a", "value": "2"})
    assert (status, body["error_code"]) == (400, "INVALID_PARAMETER_VALUE")
    assert "Changing param values is not allowed" in body["message"]


def test_json_mapping_on_the_wire(server: Server) -> None:
    """int64 as numbers, ms timestamps as given, NaN as the string MLflow's server writes, ids as strings."""
    run = post(server, "runs/create", {"experiment_id": "0", "start_time": 1700000000123})[1]["run"]
    run_id = run["info"]["run_id"]
    assert run["info"]["start_time"] == 1700000000123 and isinstance(run["info"]["experiment_id"], str)
    metrics = [{"key": "m", "value": "NaN", "timestamp": 1700000000456, "step": 2**40}]
    assert post(server, "runs/log-batch", {"run_id": run_id, "metrics": metrics})[0] == 200
    _, history, raw = http(server, "GET", f"/api/2.0/mlflow/metrics/get-history?run_id={run_id}&metric_key=m")
    assert history == {"metrics": metrics}, raw
    assert "end_time" not in run["info"] and "params" not in run.get("data", {})


def _proj_server(*argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "proj", "server", *argv], cwd=cwd, capture_output=True, text=True,
                          timeout=60)


def test_port_in_use_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = _proj_server("--backend-store-uri", str(tmp_path / "store"), "--port", str(port), cwd=tmp_path)
    assert out.returncode != 0
    assert out.stderr.strip().count("\n") == 0 and f"port {port}" in out.stderr and "in use" in out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.parametrize(("uri", "said"), [
    ("mysql://db/x", "'mysql://db/x' is not supported"),  # a scheme proj does not serve
    # a PostgreSQL server that cannot be reached (no server is involved: the host does not resolve)
    ("postgresql://user:s3cret-pw@db.invalid/x", "PostgreSQL store db.invalid:5432/x cannot be opened"),
])
def test_bad_store_uri_is_one_line(tmp_path: Path, uri: str, said: str) -> None:
    out = _proj_server("--backend-store-uri", uri, "--port", str(free_port()), cwd=tmp_path)
    assert out.returncode != 0 and out.stderr.startswith("proj: error:") and said in out.stderr, out.stderr
    assert out.stderr.strip().count("\n") == 0 and "s3cret-pw" not in out.stderr, out.stderr


def test_damaged_store_is_one_line(tmp_path: Path) -> None:
    store = tmp_path / "store"
    store.mkdir()
    (store / "proj.db").write_bytes(b"this is not a database" * 100)
    out = _proj_server("--backend-store-uri", str(store), "--port", str(free_port()), cwd=tmp_path)
    assert out.returncode != 0 and out.stderr.startswith("proj: error:"), out.stderr
    assert out.stderr.strip().count("\n") == 0 and "Traceback" not in out.stderr
    assert (store / "proj.db").read_bytes() == b"this is not a database" * 100  # nothing written to it


def test_default_store_and_workers(tmp_path: Path) -> None:
    """No --backend-store-uri: ./.proj, as `proj run`; two worker processes serve the same store."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "proj", "server", "--port", str(port), "--workers", "2"],
                               cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    fake = Server(f"http://127.0.0.1:{port}", process, tmp_path / "unused.log")
    try:
        wait_for(lambda: _healthy(fake), timeout=60, what="proj server --workers 2")
        ids = {post(fake, "runs/create", {"experiment_id": "0", "start_time": i})[1]["run"]["info"]["run_id"]
               for i in range(6)}
        status, found, _ = post(fake, "runs/search", {"experiment_ids": ["0"], "max_results": 100})
        assert status == 200 and {r["info"]["run_id"] for r in found["runs"]} == ids
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        output = process.communicate(timeout=30)[0].decode(errors="replace")
    assert (tmp_path / ".proj" / "proj.db").is_file()
    assert "POST /api/2.0/mlflow/runs/create" in output  # one access-log line per request at --log-level info


def _healthy(server: Server) -> bool:
    try:
        return http(server, "GET", "/health")[1] == "OK"
    except OSError:
        return False
