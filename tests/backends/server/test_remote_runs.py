"""proj runs that record to a tracking server (`--tracking-uri http://...`): against the real `proj server` and the
real `mlflow server`, with the program's own MLflow client continuing the run, live metrics, artifacts, the
reading commands, and a server that is down or answers 503 (a real proxy on a loopback socket)."""
from __future__ import annotations

import http.client
import json
import re
import shutil
import signal
import sys
import threading
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

import pytest

from helpers.cli import Proj, require, wait_for
from helpers.servers import Server, free_port, mlflow_server, proj_server, run_client

MLFLOW_START_SECONDS = 600

MLPROJECT = """
name: remote
entry_points:
  main:
    parameters:
      alpha: {type: float, default: 0.5}
      go: {type: string, default: ""}
    command: "$PROJ_TEST_PYTHON train.py {alpha} {go}"
"""
# Logs a metric through proj_client, writes an artifact, then waits for the test's go-file (so the test can
# see the live metric on the server before the run ends); then, when mlflow is importable, continues the
# same run with mlflow.start_run() and opens a nested run.
TRAIN = """
import os, sys, time
import proj_client
alpha, go = sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else ""
proj_client.log_metric("loss", 0.25, step=1)
print("alpha", alpha, flush=True)
art = os.environ["PROJ_ARTIFACT_DIR"]
os.makedirs(art, exist_ok=True)
with open(os.path.join(art, "out.txt"), "w") as fh:
    fh.write("hello")
deadline = time.time() + 120
while go and not os.path.exists(go) and time.time() < deadline:
    time.sleep(0.1)
try:
    import mlflow
except ImportError:
    mlflow = None
if mlflow is not None:
    with mlflow.start_run() as run:
        mlflow.log_metric("acc", 0.9)
        print("mlflow run", run.info.run_id, flush=True)
        with mlflow.start_run(nested=True) as child:
            mlflow.log_metric("child_metric", 1.0)
            print("child run", child.info.run_id, flush=True)
proj_client.log_metric("loss", 0.125, step=2)
"""


def _proj_server_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("proj.server.app") is not None


@pytest.fixture(scope="module")
def mlflow_srv(mlflow_full_venv: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`mlflow server` by helpers.servers.mlflow_server (no job runner), given longer to come up: on the shared 2-core
    machine under the other suites' load its start-up has taken over 180 s."""
    with mlflow_server(mlflow_full_venv, tmp_path_factory.mktemp("mlflow-server"), timeout=MLFLOW_START_SECONDS) as server:
        yield server


@pytest.fixture(scope="module")
def proj_srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    require(_proj_server_available(), "proj server (proj.server.app) is not built yet")
    work = tmp_path_factory.mktemp("proj-server")
    with proj_server(work / "store", work) as server:
        yield server


@pytest.fixture(params=["proj", "mlflow"])
def server(request: pytest.FixtureRequest) -> Server:
    return request.getfixturevalue("proj_srv" if request.param == "proj" else "mlflow_srv")


@pytest.fixture
def any_server(request: pytest.FixtureRequest) -> Server:
    """For the client-side cases (retries, outages, Ctrl-C): `proj server` (quick to start), else `mlflow server`."""
    return request.getfixturevalue("proj_srv" if _proj_server_available() else "mlflow_srv")


@pytest.fixture
def remote_proj(proj: Proj, mlflow_full_venv: Path) -> Proj:
    """`proj` whose entry points run the MLflow venv's python (the MLproject names $PROJ_TEST_PYTHON; the `local`
    env passes the caller's environment on), so the program's `import mlflow` is the pinned client."""
    proj.env["PROJ_TEST_PYTHON"] = str(mlflow_full_venv / "bin" / "python")
    proj.env["PROJ_HTTP_RETRY_SECONDS"] = "20"
    proj.env["GIT_PYTHON_REFRESH"] = "quiet"
    return proj


def _api(url: str, endpoint: str, payload: dict[str, Any] | None = None) -> Any:
    """A plain REST call (the test reads the server as any client would)."""
    if payload is None:
        req = urllib.request.Request(f"{url}/api/2.0/mlflow/{endpoint}")
    else:
        req = urllib.request.Request(f"{url}/api/2.0/mlflow/{endpoint}", data=json.dumps(payload).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as resp:  # a loaded 2-core machine: MLflow can be slow
        return json.loads(resp.read() or b"{}")


def _runs_of(url: str, experiment: str) -> list[dict[str, Any]]:
    """The experiment's runs; none yet while it does not exist (or the server is slow to answer a poll)."""
    try:
        exp = _api(url, "experiments/get-by-name?" + urllib.parse.urlencode({"experiment_name": experiment}))
        found = _api(url, "runs/search", {"experiment_ids": [exp["experiment"]["experiment_id"]],
                                          "max_results": 100})
    except OSError:  # HTTPError 404 (no such experiment yet), a timeout
        return []
    return list(found.get("runs", []))


def _metric(run: dict[str, Any], key: str) -> float | None:
    return next((m["value"] for m in run.get("data", {}).get("metrics", []) if m["key"] == key), None)


def _started_id(stderr: str) -> str:
    match = re.search(r"run ([0-9a-f]{32}) started", stderr)
    assert match, stderr
    return match.group(1)


CLIENT_CHECK = """
import json, mlflow
from mlflow import MlflowClient
c = MlflowClient()
run_id = "{run_id}"
r = c.get_run(run_id)
children = c.search_runs([r.info.experiment_id], "tags.`mlflow.parentRunId` = '" + run_id + "'")
def walk(path=""):
    out = []
    for f in c.list_artifacts(run_id, path or None):
        out += walk(f.path) if f.is_dir else [f.path]
    return out
arts = walk()
local = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="proj/logs/stdout.log")
print(json.dumps({{"status": r.info.status, "params": r.data.params, "metrics": r.data.metrics, "tags": r.data.tags,
                  "children": [ch.info.run_id for ch in children],
                  "child_metrics": [ch.data.metrics for ch in children], "artifacts": arts,
                  "history": [(m.step, m.value) for m in c.get_metric_history(run_id, "loss")],
                  "stdout": open(local).read()}}))
"""


@pytest.mark.timeout(1200)  # includes starting mlflow server, which under load takes minutes here
def test_run_records_to_server(remote_proj: Proj, make_project: Any, server: Server, mlflow_full_venv: Path,
                               tmp_path: Path) -> None:
    project = make_project({"MLproject": MLPROJECT, "train.py": TRAIN})
    go = tmp_path / "go"
    experiment = f"remote-{server.url.rsplit(':', 1)[1]}"
    proc = remote_proj.popen("run", str(project), "--env-manager", "local", "-P", "alpha=0.7", "-P", f"go={go}",
                             "--experiment-name", experiment, "--tracking-uri", server.url, "-T", "team=ml")
    try:
        live = wait_for(lambda: [r for r in _runs_of(server.url, experiment) if _metric(r, "loss") == 0.25],
                        timeout=120, what="the live metric on the server")
        assert live[0]["info"]["status"] == "RUNNING"  # seen while the entry point still waits
    finally:
        go.touch()
        stdout, stderr = proc.communicate(timeout=240)
    assert proc.returncode == 0, stderr
    run_id = _started_id(stderr)
    assert live[0]["info"]["run_id"] == run_id  # MLFLOW_RUN_ID matches: proj's id IS the server's id
    assert f"mlflow run {run_id}" in stdout  # the program's start_run() continued the proj run
    child_id = re.search(r"child run ([0-9a-f]{32})", stdout).group(1)

    seen = run_client(mlflow_full_venv, CLIENT_CHECK.format(run_id=run_id), server.url, tmp_path)
    assert seen["status"] == "FINISHED"
    assert seen["params"] == {"alpha": "0.7", "go": str(go)}
    assert seen["metrics"]["acc"] == 0.9 and seen["metrics"]["loss"] == 0.125
    assert seen["history"] == [[1, 0.25], [2, 0.125]]
    assert seen["children"] == [child_id] and seen["child_metrics"] == [{"child_metric": 1.0}]
    tags = seen["tags"]
    assert tags["proj.exit_code"] == "0" and tags["proj.run"] == "1" and tags["team"] == "ml"
    assert tags["mlflow.source.type"] == "PROJECT" and tags["mlflow.project.entryPoint"] == "main"
    assert tags["mlflow.project.env"] == "local" and tags["mlflow.runName"]
    assert "out.txt" in seen["artifacts"]
    assert "proj/logs/stdout.log" in seen["artifacts"] and "proj/request.json" in seen["artifacts"]
    assert "proj/pip-freeze" in seen["artifacts"]  # the local env's lock
    assert "alpha 0.7" in seen["stdout"]

    # the reading commands, against the server
    listed = remote_proj("runs", "list", "--tracking-uri", server.url, "--experiment", experiment, "--json")
    assert listed.code == 0, listed
    assert [r["id"] for r in listed.json()] == [run_id, child_id]  # the child indented under its parent
    assert [r["depth"] for r in listed.json()] == [0, 1]
    shown = remote_proj("runs", "show", run_id[:10], "--tracking-uri", server.url, "--json")
    assert shown.code == 0, shown
    data = shown.json()
    assert data["id"] == run_id and data["status"] == "FINISHED" and data["exit_code"] == 0
    assert data["entry_point"] == "main" and data["experiment"] == experiment
    assert {p["key"]: (p["value"], p["type"]) for p in data["params"]}["alpha"] == ("0.7", "float")
    assert data["children"] == [child_id]
    assert data["lock"]["format"] == "pip-freeze" and "click==" in data["lock"]["text"]  # the runner's python
    human = remote_proj("runs", "show", run_id, "--tracking-uri", server.url)
    assert human.code == 0 and "loss" in human.stdout, human
    shutil.rmtree(data["run_dir"])  # as on another machine: the logs and artifacts come from the server
    logs = remote_proj("runs", "logs", run_id, "--tracking-uri", server.url, "--stream", "stdout")
    assert logs.code == 0 and "alpha 0.7" in logs.stdout, logs
    diff = remote_proj("runs", "diff", run_id, run_id, "--tracking-uri", server.url, "--json")
    assert diff.code == 0, diff
    assert (Path(data["run_dir"]) / "artifacts" / "out.txt").read_text() == "hello"


def test_server_down_is_one_line(remote_proj: Proj, make_project: Any) -> None:
    project = make_project({"MLproject": MLPROJECT, "train.py": TRAIN})
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    out = remote_proj("run", str(project), "--env-manager", "local", "--tracking-uri", url,
                      env={"PROJ_HTTP_RETRY_SECONDS": "1"})
    assert out.code == 1, out
    lines = out.stderr.strip().splitlines()
    assert lines[-1] == f"proj: error: tracking server {url} unreachable after 1 s: connection refused", out
    assert "Traceback" not in out.stderr


class Flaky:
    """A real HTTP proxy in front of a server that answers 503 to the next ``fail`` requests (or to every
    request while ``down``), then forwards again."""

    def __init__(self, upstream: str) -> None:
        self.upstream = urllib.parse.urlsplit(upstream)
        self.fail = 0
        self.down = False
        self.refused = 0
        self.auth: set[str] = set()  # the Authorization headers the client sent
        self.lock = threading.Lock()
        flaky = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return None

            def _any(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with flaky.lock:
                    flaky.auth.add(self.headers.get("Authorization") or "")
                    refuse = flaky.down or flaky.fail > 0
                    if refuse:
                        flaky.fail = max(0, flaky.fail - 1)
                        flaky.refused += 1
                if refuse:
                    self.send_response(503)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                conn = http.client.HTTPConnection(flaky.upstream.hostname, flaky.upstream.port, timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                conn.request(self.command, self.path, body=body or None, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                self.send_response(resp.status)
                for key, value in resp.getheaders():
                    if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                conn.close()

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _any

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> "Flaky":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def test_server_answering_503_then_recovering(remote_proj: Proj, make_project: Any, any_server: Server) -> None:
    project = make_project({"MLproject": MLPROJECT, "train.py": TRAIN.replace("import mlflow", "import no_mlflow")})
    with Flaky(any_server.url) as proxy:
        proxy.fail = 4
        out = remote_proj("run", str(project), "--env-manager", "local", "--experiment-name", "flaky",
                          "--tracking-uri", proxy.url)
    assert out.code == 0, out
    assert proxy.refused == 4
    run_id = _started_id(out.stderr)
    run = _api(any_server.url, f"runs/get?run_id={run_id}")["run"]
    assert run["info"]["status"] == "FINISHED" and _metric(run, "loss") == 0.125


def test_server_gone_mid_run_keeps_local_logs(remote_proj: Proj, make_project: Any, any_server: Server,
                                              tmp_path: Path) -> None:
    project = make_project({"MLproject": MLPROJECT, "train.py": TRAIN.replace("import mlflow", "import no_mlflow")})
    go = tmp_path / "go"
    with Flaky(any_server.url) as proxy:
        remote_proj.env["PROJ_HTTP_RETRY_SECONDS"] = "2"
        proc = remote_proj.popen("run", str(project), "--env-manager", "local", "-P", f"go={go}",
                                 "--experiment-name", "gone", "--tracking-uri", proxy.url)
        try:
            wait_for(lambda: [r for r in _runs_of(any_server.url, "gone") if _metric(r, "loss") == 0.25],
                     timeout=120, what="the run on the server")
            proxy.down = True
        finally:
            go.touch()
            _, stderr = proc.communicate(timeout=240)
    assert proc.returncode == 1, stderr
    last = stderr.strip().splitlines()[-1]
    match = re.fullmatch(rf"proj: error: tracking server {re.escape(proxy.url)} unreachable after 2 s: HTTP 503; "
                         r"the run's logs are kept in (\S+)", last)
    assert match, stderr
    assert "alpha 0.5" in (Path(match.group(1)) / "stdout.log").read_text()
    assert "Traceback" not in stderr


def test_ctrl_c_records_killed(remote_proj: Proj, make_project: Any, any_server: Server, tmp_path: Path) -> None:
    project = make_project({"MLproject": MLPROJECT, "train.py": TRAIN})
    go = tmp_path / "never"
    proc = remote_proj.popen("run", str(project), "--env-manager", "local", "-P", f"go={go}",
                             "--experiment-name", "interrupted", "--tracking-uri", any_server.url)
    try:
        live = wait_for(lambda: _runs_of(any_server.url, "interrupted"), timeout=120, what="the run on the server")
        wait_for(lambda: _metric(_runs_of(any_server.url, "interrupted")[0], "loss") is not None, timeout=60,
                 what="the entry point to be running")
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr
    run_id = live[0]["info"]["run_id"]
    run = _api(any_server.url, f"runs/get?run_id={run_id}")["run"]
    assert run["info"]["status"] == "KILLED"
    tags = {t["key"]: t["value"] for t in run["data"]["tags"]}
    assert tags["proj.failure_reason"].startswith("interrupted")
    logs = f"{run['info']['experiment_id']}/{run_id}/artifacts/proj/logs"
    with urllib.request.urlopen(f"{any_server.url}/api/2.0/mlflow-artifacts/artifacts?"
                                + urllib.parse.urlencode({"path": logs}), timeout=10) as resp:
        listing = json.loads(resp.read())
    assert "stdout.log" in [f["path"] for f in listing.get("files", [])]  # uploaded after the interrupt


def test_virtualenv_run_records_to_server(offline: Proj, make_project: Any, any_server: Server,
                                          tmp_path: Path) -> None:
    """A built env (virtualenv from the local wheelhouse): its lock and the metric the program logs land on the server."""
    py = "%d.%d" % sys.version_info[:2]
    project = make_project({
        "MLproject": "name: venv\nentry_points:\n  main:\n    command: \"python -c 'import tinya, proj_client; "
                     "proj_client.log_metric(\\\"v\\\", 2.0); print(tinya.VERSION)'\"\n",
        "python_env.yaml": f'python: "{py}"\ndependencies: [tinya]\n'})
    out = offline("run", str(project), "--experiment-name", "venv", "--tracking-uri", any_server.url, timeout=600)
    assert out.code == 0, out
    run_id = _started_id(out.stderr)
    run = _api(any_server.url, f"runs/get?run_id={run_id}")["run"]
    tags = {t["key"]: t["value"] for t in run["data"]["tags"]}
    assert run["info"]["status"] == "FINISHED" and _metric(run, "v") == 2.0
    assert tags["mlflow.project.env"] == "virtualenv"
    lock_format = json.loads(tags["proj.env"])["lock_format"]
    shown = offline("runs", "show", run_id, "--tracking-uri", any_server.url, "--json")
    assert shown.code == 0, shown
    assert shown.json()["lock"]["format"] == lock_format and "tinya" in shown.json()["lock"]["text"]
    root = f"{run['info']['experiment_id']}/{run_id}/artifacts"
    with urllib.request.urlopen(f"{any_server.url}/api/2.0/mlflow-artifacts/artifacts/{root}/proj/{lock_format}",
                                timeout=60) as resp:
        assert b"tinya" in resp.read()  # the lock, as an artifact any MLflow client can download


def test_mlflow_tracking_uri_and_token_are_honoured(remote_proj: Proj, make_project: Any, any_server: Server) -> None:
    """No --tracking-uri, no PROJ_TRACKING_URI: an http MLFLOW_TRACKING_URI is the store; its token is sent as
    MLflow's client sends it (Bearer) and never printed."""
    project = make_project({"MLproject": MLPROJECT, "train.py": TRAIN.replace("import mlflow", "import no_mlflow")})
    remote_proj.env.pop("PROJ_TRACKING_URI")
    with Flaky(any_server.url) as proxy:
        out = remote_proj("run", str(project), "--env-manager", "local", "--experiment-name", "via-mlflow-env",
                          env={"MLFLOW_TRACKING_URI": proxy.url, "MLFLOW_TRACKING_TOKEN": "s3cret-token"})
    assert out.code == 0, out
    assert proxy.auth == {"Bearer s3cret-token"}
    assert "s3cret" not in out.stdout + out.stderr
    run = _api(any_server.url, f"runs/get?run_id={_started_id(out.stderr)}")["run"]
    assert run["info"]["status"] == "FINISHED"
    assert not (remote_proj.cwd / ".proj").exists()  # nothing recorded locally


def test_param_too_long_for_a_server_is_refused_before_the_run(remote_proj: Proj, make_project: Any,
                                                               any_server: Server) -> None:
    project = make_project({"MLproject": MLPROJECT, "train.py": TRAIN})
    out = remote_proj("run", str(project), "--env-manager", "local", "-P", "go=" + "x" * 6001,
                      "--experiment-name", "too-long", "--tracking-uri", any_server.url)
    assert out.code == 2, out
    assert out.stderr.strip().splitlines()[-1] == ("proj: error: parameter go: value of 6001 characters is longer "
                                                   "than the 6000 a tracking server accepts"), out
    assert _runs_of(any_server.url, "too-long") == []  # no run, not even an experiment's worth of one


def test_system_tags_read_back_as_the_same_record() -> None:
    """mlflow_tags.record_from_mlflow is the inverse of system_tags for what a proj run records."""
    from proj.tracking.mlflow_tags import record_from_mlflow, system_tags
    from proj.tracking.records import FAILED, ParamRecord, RunRecord

    run = RunRecord(id="a" * 32, experiment="exp", name="n", status=FAILED, start_time=1.5, end_time=3.25,
                    user="u", host="h", pid=None, source={"kind": "git", "commit": "c" * 40, "uri": "https://x/r"},
                    project_name="p", entry_point="main", command="python t.py 1", exit_code=3,
                    failure_phase="execution", failure_reason="entry point exited with code 3",
                    env={"backend": "local", "lock_format": "pip-freeze"}, inputs={"data": {"sha256": "d"}},
                    params=[ParamRecord("alpha", "1", 1.0, "float", "user")], tags={"team": "ml"})
    tags = {**system_tags(run), **run.tags}
    wire = {"info": {"run_id": run.id, "run_name": "n", "experiment_id": "4", "user_id": "u", "status": FAILED,
                     "start_time": 1500, "end_time": 3250, "artifact_uri": "mlflow-artifacts:/4/x/artifacts",
                     "lifecycle_stage": "active"},
            "data": {"params": [{"key": "alpha", "value": "1"}], "metrics": [],
                     "tags": [{"key": k, "value": v} for k, v in tags.items()]}}
    back = record_from_mlflow(wire, experiment="exp")
    for name in ("id", "experiment", "name", "status", "start_time", "end_time", "user", "host", "source",
                 "project_name", "entry_point", "command", "exit_code", "failure_phase", "failure_reason", "env",
                 "inputs", "params", "tags"):
        assert getattr(back, name) == getattr(run, name), name
    plain = record_from_mlflow({"info": {"run_id": "b" * 32, "status": "FINISHED", "start_time": 0},
                                "data": {"params": [{"key": "k", "value": "v"}],
                                         "tags": [{"key": "mlflow.user", "value": "x"}]}})
    assert plain.command == "" and plain.params[0] == ParamRecord("k", "v", "v", "string", "logged")


def test_artifacts_not_proxied_are_not_uploaded_with_one_warning(remote_proj: Proj, make_project: Any,
                                                                 any_server: Server, tmp_path: Path) -> None:
    """An experiment whose artifact location is a path on the server (not mlflow-artifacts:): one warning,
    the run is recorded all the same, nothing is written there."""
    elsewhere = tmp_path / "server-side-artifacts"
    _api(any_server.url, "experiments/create", {"name": "not-proxied", "artifact_location": elsewhere.as_uri()})
    project = make_project({"MLproject": MLPROJECT, "train.py": TRAIN.replace("import mlflow", "import no_mlflow")})
    out = remote_proj("run", str(project), "--env-manager", "local", "--experiment-name", "not-proxied",
                      "--tracking-uri", any_server.url)
    assert out.code == 0, out
    warnings = [line for line in out.stderr.splitlines() if line.startswith("proj: warning:")]
    assert len(warnings) == 1 and "not through its mlflow-artifacts proxy" in warnings[0], out
    assert elsewhere.as_uri() in warnings[0]
    run = _api(any_server.url, f"runs/get?run_id={_started_id(out.stderr)}")["run"]
    assert run["info"]["status"] == "FINISHED" and _metric(run, "loss") == 0.125
    assert not elsewhere.exists()


MODEL_PROJECT = {
    "MLproject": "name: m\nentry_points:\n  main:\n    command: \"python m.py\"\n",
    "m.py": """
import os
d = os.environ["PROJ_MODEL_DIR"]
os.makedirs(d, exist_ok=True)
with open(os.path.join(d, "MLmodel"), "w") as fh:
    fh.write("flavors:\\n  custom:\\n    data: w.txt\\n")
with open(os.path.join(d, "w.txt"), "w") as fh:
    fh.write("1 2 3")
""",
}


def test_models_and_reproduce_against_a_server(remote_proj: Proj, make_project: Any, any_server: Server) -> None:
    project = make_project(MODEL_PROJECT)
    out = remote_proj("run", str(project), "--env-manager", "local", "--experiment-name", "models",
                      "--tracking-uri", any_server.url)
    assert out.code == 0, out
    run_id = _started_id(out.stderr)
    models = remote_proj("models", "list", "--tracking-uri", any_server.url, "--json")
    assert models.code == 0, models
    mine = [m for m in models.json() if m["run_id"] == run_id]
    assert [(m["path"], m["flavors"], m["valid"]) for m in mine] == [("model", ["custom"], True)]
    again = remote_proj("reproduce", run_id, "--tracking-uri", any_server.url)
    assert again.code == 0, again
    assert "verdict: identical" in again.stdout, again
    copy = re.search(r"reproduction run ([0-9a-f]{32})", again.stdout).group(1)
    tags = {t["key"]: t["value"] for t in _api(any_server.url, f"runs/get?run_id={copy}")["run"]["data"]["tags"]}
    assert tags["proj.reproduces"] == run_id
