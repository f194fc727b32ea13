"""``proj server --auth`` with the pinned MLflow client, unchanged: users and grants made through
``mlflow.server.get_app_client("basic-auth")``, runs logged with MLFLOW_TRACKING_USERNAME/PASSWORD, a READ
user's writes refused (403 PERMISSION_DENIED), a user without READ seeing none of another experiment's runs,
artifacts, logged models or registered models; every route refused without or with wrong credentials (401);
API tokens (expired, read-only, one experiment); the failed-login limit (429); the audit log."""
from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import pytest

from helpers.servers import Server, client_json, mlflow_server, proj_server
from proj.auth.sqlite import SqliteAuthStore

pytestmark = [pytest.mark.mlflow, pytest.mark.network, pytest.mark.slow, pytest.mark.xdist_group("proj-server"),
              pytest.mark.timeout(900)]  # MLflow client processes are slow to start on a busy 2-core machine

ADMIN = ("admin", "admin-password-1")
USERS = {"alice": "alice-password", "bob": "bob-password", "carol": "carol-password"}

PRELUDE = '''
import os


def code(fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
    except MlflowException as e:
        return e.error_code
    except Exception as e:  # the artifact repository raises requests' HTTPError
        response = getattr(e, "response", None)
        return f"HTTP {response.status_code}" if response is not None else repr(e)
    return "no error"
'''


def proj_cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "proj", *args], input=stdin, capture_output=True, text=True,
                          timeout=120)


def as_user(venv: Path, server: Server, tmp_path: Path, user: str, body: str, **env: str) -> Any:
    creds = {"MLFLOW_TRACKING_USERNAME": user, "MLFLOW_TRACKING_PASSWORD": ({**USERS, ADMIN[0]: ADMIN[1]})[user]} \
        if user else {}
    return client_json(venv, PRELUDE + body, server.url, tmp_path,
                      env={"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", **creds, **env})


def raw(server: Server, method: str, path: str, auth: str | None = None, body: bytes | None = None,
        ) -> tuple[int, Any, bytes]:
    headers = {"Content-Type": "application/json"} if body is not None else {}
    if auth:
        headers["Authorization"] = auth
    request = urllib.request.Request(server.url + path, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()  # headers: looked up case-insensitively


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("proj-server-auth")
    made = proj_cli("server", "user", "add", ADMIN[0], "--admin", "--backend-store-uri", str(root / "store"),
                    stdin=ADMIN[1] + "\n")
    assert made.returncode == 0, made.stderr
    return root


@pytest.fixture(scope="module")
def server(store_dir: Path) -> Iterator[Server]:
    # NO_PERMISSIONS by default: a user sees only what it created or was granted (the isolation scenario);
    # a high failed-login limit so the sweep of every route with wrong credentials is all 401s
    with proj_server(store_dir / "store", store_dir, "--auth", "--auth-default-permission", "NO_PERMISSIONS",
                     "--auth-failed-logins", "100000") as running:
        yield running


@pytest.fixture(scope="module")
def world(mlflow_full_venv: Path, server: Server, store_dir: Path, tmp_path_factory: pytest.TempPathFactory,
          ) -> dict[str, Any]:
    """Users made by the admin with MLflow's auth client; alice logs a run (params, metrics, an artifact, a
    logged model) in her experiment and registers a model from it; bob is granted READ on it, carol nothing."""
    work = tmp_path_factory.mktemp("auth-clients")
    # one client process (importing mlflow is most of a script's time), switching users by its environment
    out = as_user(mlflow_full_venv, server, work, "admin", f'''
from mlflow.server import get_app_client


def become(name, password):
    os.environ["MLFLOW_TRACKING_USERNAME"], os.environ["MLFLOW_TRACKING_PASSWORD"] = name, password


auth = get_app_client("basic-auth", tracking_uri=os.environ["MLFLOW_TRACKING_URI"])
for name, password in {USERS!r}.items():
    user = auth.create_user(name, password)
    out[name] = [user.username, user.is_admin]
out["duplicate"] = code(auth.create_user, "alice", "x-long-password")
out["get"] = auth.get_user("bob").username
become("alice", {USERS["alice"]!r})
mlflow.set_experiment("alice-exp")
with mlflow.start_run() as run:
    mlflow.log_param("alpha", "0.5")
    mlflow.log_metric("loss", 0.25, step=1)
    mlflow.log_text("secret data", "notes/secret.txt")
    mlflow.log_text("artifact_path: model\\nflavors:\\n  python_function:\\n    loader_module: mlflow.pyfunc.model\\n",
                    "model/MLmodel")
    model = mlflow.initialize_logged_model(name="alice-lm")
exp = run.info.experiment_id
out["experiment_id"] = exp
out["run_id"] = run.info.run_id
out["artifact_uri"] = run.info.artifact_uri
out["model_id"] = model.model_id
client.create_registered_model("alice-model")
version = client.create_model_version("alice-model", f"{{run.info.artifact_uri}}/model", run_id=run.info.run_id)
out["version"] = version.version
out["read_back"] = client.get_run(run.info.run_id).data.params
out["alice_grants_admin"] = code(auth.update_user_admin, "alice", True)
become(*{ADMIN!r})
auth.grant_user_permission("bob", "experiment", exp, "READ")
auth.grant_user_permission("bob", "registered_model", "alice-model", "READ")
out["permissions"] = {{}}
for name in ("bob", "carol", "alice"):
    got = auth.get_user_permission(name, "experiment", exp)
    out["permissions"][name] = [got.allowed, got.permission]
''')
    assert out["alice"] == ["alice", False] and out["get"] == "bob"
    assert out["duplicate"] == "RESOURCE_ALREADY_EXISTS"
    assert out["read_back"] == {"alpha": "0.5"}
    assert out["alice_grants_admin"] == "PERMISSION_DENIED"
    assert out["permissions"] == {"bob": [False, "READ"], "carol": [False, "NO_PERMISSIONS"], "alice": [True, "MANAGE"]}
    alice = out
    return {**alice, "work": work}


def test_creator_manages_and_reader_cannot_write(mlflow_full_venv: Path, server: Server, world: dict[str, Any],
                                                 tmp_path: Path) -> None:
    out = as_user(mlflow_full_venv, server, tmp_path, "bob", f'''
run_id = "{world["run_id"]}"
out["read"] = client.get_run(run_id).data.metrics
out["search"] = [r.info.run_id for r in client.search_runs(["{world["experiment_id"]}"])]
out["artifact"] = open(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="notes/secret.txt")).read()
out["log_metric"] = code(client.log_metric, run_id, "loss", 9.0)
out["set_tag"] = code(client.set_tag, run_id, "k", "v")
out["delete_run"] = code(client.delete_run, run_id)
out["create_run"] = code(client.create_run, "{world["experiment_id"]}")
out["upload"] = code(client.log_text, run_id, "x", "bob.txt")
out["model"] = client.get_registered_model("alice-model").name
out["rename"] = code(client.rename_registered_model, "alice-model", "bobs-now")
out["own_experiment"] = mlflow.create_experiment("bob-exp")
with mlflow.start_run(experiment_id=out["own_experiment"]) as run:
    mlflow.log_metric("m", 1.0)
out["own_run"] = run.info.status
''')
    assert out["read"] == {"loss": 0.25} and out["search"] == [world["run_id"]]
    assert out["artifact"] == "secret data"
    for write in ("log_metric", "set_tag", "delete_run", "create_run", "rename"):
        assert out[write] == "PERMISSION_DENIED", (write, out[write])
    assert out["upload"] == "HTTP 403"
    assert out["model"] == "alice-model"
    assert out["own_run"] == "RUNNING" or out["own_run"] == "FINISHED"


def test_user_without_read_sees_nothing_of_another_experiment(mlflow_full_venv: Path, server: Server,
                                                              world: dict[str, Any], tmp_path: Path) -> None:
    exp, run_id = world["experiment_id"], world["run_id"]
    out = as_user(mlflow_full_venv, server, tmp_path, "carol", f'''
out["experiments"] = [e.name for e in client.search_experiments()]
out["search"] = [r.info.run_id for r in client.search_runs(["{exp}"])]
out["search_all"] = [r.info.run_id for r in mlflow.search_runs(search_all_experiments=True, output_format="list")]
out["get_run"] = code(client.get_run, "{run_id}")
out["get_experiment"] = code(client.get_experiment, "{exp}")
out["by_name"] = code(client.get_experiment_by_name, "alice-exp")
out["history"] = code(client.get_metric_history, "{run_id}", "loss")
out["artifacts"] = code(client.list_artifacts, "{run_id}")
out["download"] = code(mlflow.artifacts.download_artifacts, run_id="{run_id}", artifact_path="notes/secret.txt")
out["proxied"] = code(mlflow.artifacts.download_artifacts, artifact_uri="{world["artifact_uri"]}/notes/secret.txt")
out["logged_model"] = code(client.get_logged_model, "{world["model_id"]}")
out["logged_models"] = [m.model_id for m in client.search_logged_models(experiment_ids=["{exp}"])]
out["models"] = [m.name for m in client.search_registered_models()]
out["versions"] = [v.name for v in client.search_model_versions()]
out["get_model"] = code(client.get_registered_model, "alice-model")
out["get_version"] = code(client.get_model_version, "alice-model", "1")
out["download_uri"] = code(client.get_model_version_download_uri, "alice-model", "1")
''')
    assert "alice-exp" not in out["experiments"]
    assert out["search"] == [] and run_id not in out["search_all"]
    for denied in ("get_run", "get_experiment", "history", "artifacts", "download", "proxied", "logged_model",
                   "get_model", "get_version", "download_uri"):
        assert out[denied] in ("PERMISSION_DENIED", "HTTP 403"), (denied, out[denied])
    assert out["by_name"] == "PERMISSION_DENIED"
    assert out["logged_models"] == [] and out["models"] == [] and out["versions"] == []
    # the web UI's endpoints: narrowed the same way, never a row of alice's experiment
    carol = basic("carol", USERS["carol"])
    ui = "/ajax-api/2.0/proj"
    for path in (f"/runs/table?experiment_ids={exp}", f"/runs/export.csv?experiment_ids={exp}",
                 f"/runs/groups?experiment_ids={exp}&group_by=params.alpha",
                 f"/artifacts/preview?run_id={run_id}&path=notes/secret.txt",
                 f"/metrics/sampled?run_ids={run_id}&metric_key=loss", f"/runs/compare?run_ids={run_id},{run_id}",
                 f"/runs/record?run_id={run_id}", "/registry/history?name=alice-model",
                 "/registry/lineage?name=alice-model&version=1"):
        status, _, body = raw(server, "GET", ui + path, carol)
        assert status == 403 and json.loads(body)["error_code"] == "PERMISSION_DENIED", (path, status, body)
    for path in ("/runs/table", "/runs/table?top_level=true", "/runs/keys", "/experiments/summary",
                 "/runs/export.csv"):
        status, _, body = raw(server, "GET", ui + path, carol)
        assert status in (200, 403) and run_id.encode() not in body and b"alpha" not in body, (path, body[:300])
    status, _, body = raw(server, "GET", f"{ui}/runs/table?experiment_ids={exp}", basic("bob", USERS["bob"]))
    assert status == 200 and run_id.encode() in body  # bob may read it


def test_artifacts_of_one_experiment_never_reached_through_another(server: Server, world: dict[str, Any],
                                                                   mlflow_full_venv: Path, tmp_path: Path) -> None:
    """carol owns an experiment; alice's run's files under carol's experiment's path are not found, and the
    path's climbing forms are refused."""
    mine = as_user(mlflow_full_venv, server, tmp_path, "carol", 'out["exp"] = mlflow.create_experiment("carol-exp")')
    carol = basic("carol", USERS["carol"])
    for path in (f"{mine['exp']}/{world['run_id']}/artifacts/notes/secret.txt",
                 f"{mine['exp']}/../{world['experiment_id']}/{world['run_id']}/artifacts/notes/secret.txt",
                 f"{mine['exp']}/%2e%2e/{world['experiment_id']}/{world['run_id']}/artifacts/notes/secret.txt"):
        status, _, body = raw(server, "GET", f"/api/2.0/mlflow-artifacts/artifacts/{path}", carol)
        assert status in (400, 403, 404), (path, status, body)
        assert b"secret data" not in body


def _routes() -> list[tuple[str, str]]:
    """Every (path, method) `proj server --auth` serves, from its own route table (so a new endpoint is in
    this list the day it is added), with path parameters filled in."""
    import tempfile

    from starlette.routing import Route

    from proj.server.app import build_app, server_auth
    from proj.server.auth import rules
    from proj.server.state import ServerState

    with tempfile.TemporaryDirectory() as tmp:
        state = ServerState(tmp)
        app = build_app(state, server_auth(state, "READ"))
        found = []
        for route in app.routes:
            if not isinstance(route, Route) or rules.is_open(route.path):
                continue
            path = route.path.replace("{path:path}", "0/r/artifacts/x").replace("{tag_key:path}", "k")
            path = path.replace("{model_id}", "m-1")
            for method in sorted(route.methods or ()):
                if method != "HEAD":
                    found.append((path, method, route.path))
        state.store().close()
    return found


def test_every_route_has_a_rule() -> None:
    from proj.server.auth import rules

    missing = [(template, method) for _, method, template in _routes() if rules.rule_for(template, method) is None]
    assert missing == [], f"routes without an auth rule (add them to server/auth/rules.py): {missing}"


def test_every_route_refuses_missing_and_wrong_credentials(server: Server, world: dict[str, Any]) -> None:
    routes = _routes()
    assert len(routes) > 100  # the MLflow API, artifacts, the UI's endpoints and the auth API
    wrong = [basic("alice", "not-her-password"), basic("nobody", "x"), "Bearer proj_000000000000_nope",
             "Basic !!!", "Negotiate abc"]
    for path, method, _ in routes:
        body = b"{}" if method in ("POST", "PATCH", "PUT", "DELETE") else None
        for auth in (None, *wrong):
            status, headers, answer = raw(server, method, path, auth, body)
            assert status == 401, (method, path, auth, status, answer)
            assert json.loads(answer)["error_code"] == "UNAUTHENTICATED"
            assert headers.get("WWW-Authenticate") == 'Basic realm="mlflow"'
    for open_path in ("/health", "/version", "/", "/api/3.0/mlflow/server-info"):
        assert raw(server, "GET", open_path)[0] == 200, open_path


def test_api_tokens(mlflow_full_venv: Path, server: Server, store_dir: Path, world: dict[str, Any],
                    tmp_path: Path) -> None:
    store = str(store_dir / "store")

    def token(*args: str) -> str:
        made = proj_cli("server", "token", "create", "--user", "alice", "--backend-store-uri", store, *args)
        assert made.returncode == 0, made.stderr
        assert "shown once" in made.stderr
        return made.stdout.strip()

    full, read_only, scoped = token(), token("--read-only"), token("--experiment", world["experiment_id"])
    auth_store = SqliteAuthStore.beside(store_dir / "store")
    _, expired = auth_store.create_token("alice", expires=time.time() - 1, read_only=False, experiment_id=None)
    # one client process (importing mlflow is most of a script's time): alice makes a second experiment, then
    # each token in turn is the only credential (the client reads MLFLOW_TRACKING_TOKEN on every request)
    tokens = {"full": full, "read_only": read_only, "scoped": scoped, "expired": expired}
    results = as_user(mlflow_full_venv, server, tmp_path, "alice", f'''
other = mlflow.create_experiment("alice-2")
del os.environ["MLFLOW_TRACKING_USERNAME"], os.environ["MLFLOW_TRACKING_PASSWORD"]
run_id = "{world["run_id"]}"
for name, value in {tokens!r}.items():
    os.environ["MLFLOW_TRACKING_TOKEN"] = value
    out[name] = {{"read": code(client.get_run, run_id), "write": code(client.set_tag, run_id, "via", "token"),
                 "other": code(client.get_experiment, other),
                 "create": code(client.create_experiment, "made-by-token-" + os.urandom(4).hex()),
                 "models": code(client.search_registered_models)}}
''')
    assert results["full"] == {"read": "no error", "write": "no error", "other": "no error", "create": "no error",
                               "models": "no error"}
    assert results["read_only"] == {"read": "no error", "write": "PERMISSION_DENIED", "other": "no error",
                                    "create": "PERMISSION_DENIED", "models": "no error"}
    assert results["scoped"] == {"read": "no error", "write": "no error", "other": "PERMISSION_DENIED",
                                 "create": "PERMISSION_DENIED", "models": "no error"}
    assert set(results["expired"].values()) == {"UNAUTHENTICATED"}
    # a revoked token is refused from the next request on (the server's cache re-reads the token each time)
    token_id = full.split("_")[1]
    listed = proj_cli("server", "token", "list", "--backend-store-uri", store)
    assert token_id in listed.stdout and full not in listed.stdout  # the secret is never shown again
    assert proj_cli("server", "token", "revoke", token_id, "--backend-store-uri", store).returncode == 0
    assert raw(server, "GET", f"/api/2.0/mlflow/runs/get?run_id={world['run_id']}", f"Bearer {full}")[0] == 401
    assert "revoked" in proj_cli("server", "token", "list", "--backend-store-uri", store).stdout
    stored = (store_dir / "store" / "auth.db").read_bytes()
    assert full.encode() not in stored and full.split("_", 2)[2].encode() not in stored


def test_failed_logins_are_limited(store_dir: Path, tmp_path: Path) -> None:
    root = tmp_path / "limited"
    made = proj_cli("server", "user", "add", "dave", "--backend-store-uri", str(root), stdin="dave-password\n")
    assert made.returncode == 0, made.stderr
    with proj_server(root, tmp_path, "--auth") as limited:
        good, bad = basic("dave", "dave-password"), basic("dave", "guess")
        assert raw(limited, "GET", "/api/2.0/mlflow/experiments/search", good)[0] == 200
        statuses = [raw(limited, "GET", "/api/2.0/mlflow/experiments/search", bad)[0] for _ in range(10)]
        assert statuses == [401] * 10
        status, headers, body = raw(limited, "GET", "/api/2.0/mlflow/experiments/search", bad)
        assert status == 429 and json.loads(body)["error_code"] == "REQUEST_LIMIT_EXCEEDED"
        assert 1 <= int(headers["Retry-After"]) <= 60
        # the right password from that address waits too: guessing cannot go on past the limit
        assert raw(limited, "GET", "/api/2.0/mlflow/experiments/search", good)[0] == 429
    audit = proj_cli("server", "audit", "--backend-store-uri", str(root))
    assert audit.stdout.count("\tunauthenticated\t") == 10 and "\trate-limited\t" in audit.stdout


def test_audit_log(server: Server, store_dir: Path, world: dict[str, Any], mlflow_full_venv: Path,
                   tmp_path: Path) -> None:
    as_user(mlflow_full_venv, server, tmp_path, "carol", f'out["x"] = code(client.get_run, "{world["run_id"]}")')
    out = proj_cli("server", "audit", "--since", "1h", "--limit", "1000000", "--backend-store-uri",
                   str(store_dir / "store"))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    grants = [line for line in lines if "\tgrant\t" in line]
    assert any("\tadmin\t" in g and f"experiment:{world['experiment_id']}" in g and "\tbob\t" in g
               and "\tREAD" in g for g in grants)
    assert any("creator" in g and "\talice\t" in g for g in grants)  # the creator's MANAGE
    denied = [line for line in lines if "\tdenied\t" in line and "\tcarol\t" in line]
    assert any(f"experiment:{world['experiment_id']}" in d and "/runs/get" in d for d in denied)
    assert "audit denied actor=carol" in server.output()  # and one log line each
    future = proj_cli("server", "audit", "--since", "2999-01-01", "--backend-store-uri", str(store_dir / "store"))
    assert future.returncode == 0 and future.stdout == ""


def test_user_add_refuses_an_empty_password(tmp_path: Path) -> None:
    out = proj_cli("server", "user", "add", "eve", "--backend-store-uri", str(tmp_path / "s"), stdin="\n")
    assert out.returncode != 0 and "empty password is refused" in out.stderr and "Traceback" not in out.stderr
    listed = proj_cli("server", "user", "list", "--backend-store-uri", str(tmp_path / "s"))
    assert "eve" not in listed.stdout


SAME_AS_MLFLOW = '''
import requests
from mlflow.server import get_app_client

base = os.environ["MLFLOW_TRACKING_URI"]


def become(name, password):
    os.environ["MLFLOW_TRACKING_USERNAME"], os.environ["MLFLOW_TRACKING_PASSWORD"] = name, password


auth = get_app_client("basic-auth", tracking_uri=base)
auth.create_user("reader", "reader-pw-12345")
auth.create_user("writer", "writer-pw-12345")
out["duplicate user"] = code(auth.create_user, "reader", "x-long-password")
out["no such user"] = code(auth.get_user, "nobody")
exp = client.create_experiment("owned-by-admin")
run_id = client.create_run(exp).info.run_id
auth.grant_user_permission("writer", "experiment", exp, "EDIT")
become("reader", "reader-pw-12345")
out["read (default READ)"] = code(client.get_run, run_id)
out["search"] = len(client.search_runs([exp]))
out["write"] = code(client.log_metric, run_id, "m", 1.0)
out["delete"] = code(client.delete_experiment, exp)
out["grant"] = code(auth.grant_user_permission, "reader", "experiment", exp, "MANAGE")
out["create user"] = code(auth.create_user, "third", "third-pw-12345")
out["own experiment"] = code(client.create_experiment, "readers-own")
become("writer", "writer-pw-12345")
out["writer logs"] = code(client.log_metric, run_id, "m", 2.0)
out["writer deletes"] = code(client.delete_run, run_id)
become("reader", "wrong-password")
out["wrong password"] = code(client.get_run, run_id)
del os.environ["MLFLOW_TRACKING_USERNAME"], os.environ["MLFLOW_TRACKING_PASSWORD"]
out["no credentials"] = code(client.get_run, run_id)
bare = requests.get(f"{base}/api/2.0/mlflow/experiments/get", params={"experiment_id": exp})
out["401 header"] = [bare.status_code, bare.headers.get("WWW-Authenticate")]
out["health"] = requests.get(f"{base}/health").status_code
'''

# One client process for both servers (importing mlflow is most of a script's time): the script runs on each in
# turn from the same starting environment, with its own client and ``out``.
ON_EACH_SERVER = '''
start = dict(os.environ)
for name, url in {servers!r}.items():
    os.environ.clear()
    os.environ.update(start, MLFLOW_TRACKING_URI=url)
    mlflow.set_tracking_uri(url)
    scope = dict(globals(), client=MlflowClient(url), out={{}})
    exec({script!r}, scope)
    out[name] = scope["out"]
'''


def test_same_answers_as_mlflow_basic_auth(mlflow_full_venv: Path, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """One client script against `mlflow server --app-name basic-auth` and `proj server --auth` (default READ):
    the same outcome, error code by error code."""
    made = proj_cli("server", "user", "add", "admin", "--admin", "--backend-store-uri", str(tmp_path / "proj"),
                    stdin="admin-pw-12345\n")
    assert made.returncode == 0, made.stderr
    config = tmp_path / "basic_auth.ini"
    config.write_text(f"[mlflow]\ndefault_permission = READ\ndatabase_uri = sqlite:///{tmp_path / 'basic_auth.db'}\n"
                      "admin_username = admin\nadmin_password = admin-pw-12345\n"
                      "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n")
    monkeypatch.setenv("MLFLOW_AUTH_CONFIG_PATH", str(config))
    monkeypatch.setenv("MLFLOW_FLASK_SERVER_SECRET_KEY", "test-secret-key")
    env = {"MLFLOW_TRACKING_USERNAME": "admin", "MLFLOW_TRACKING_PASSWORD": "admin-pw-12345",
           "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"}
    # without its job runner (helpers.servers.MLFLOW_SERVER_ENV) MLflow's auth app starts in well under a minute;
    # the long wait is for a machine busy with the rest of the suite
    with mlflow_server(mlflow_full_venv, tmp_path / "mlflow", "--app-name", "basic-auth", timeout=600) as theirs, \
            proj_server(tmp_path / "proj", tmp_path, "--auth") as ours:
        both = client_json(mlflow_full_venv, PRELUDE + ON_EACH_SERVER.format(
            script=SAME_AS_MLFLOW, servers={"mlflow": theirs.url, "proj": ours.url}), theirs.url, tmp_path, env=env)
    expected, got = both["mlflow"], both["proj"]
    assert got == expected
    assert expected["write"] == "PERMISSION_DENIED" and expected["wrong password"] == "UNAUTHENTICATED"
