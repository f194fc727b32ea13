"""The model registry through a real `proj server` with the pinned MLflow client: register_model from a logged
model, stages (archive_existing_versions), aliases, tags, descriptions, searches, rename, delete, loading by
models:/NAME@alias, /Stage, /latest and /N; MLflow's error codes over raw HTTP; 8 writers registering versions
of one model at once (1..N, no gap, no duplicate); every change recorded as an event, with its reason."""
from __future__ import annotations

import json
import shutil
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import pytest

from helpers.servers import Server, client_json, proj_server
from proj import registry
from proj.tracking.open import open_store
from proj.tracking.registry_records import RegistryEvent

pytestmark = [pytest.mark.mlflow, pytest.mark.network, pytest.mark.slow, pytest.mark.xdist_group("proj-server")]

PRELUDE = '''

def code(fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
    except MlflowException as e:
        return [e.error_code, e.message]
    return "no error"
'''


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("proj-server-registry")


@pytest.fixture(scope="module")
def server(store_dir: Path) -> Iterator[Server]:
    # two worker processes: registrations from several clients meet in SQLite, not only in one process
    with proj_server(store_dir / "store", store_dir, "--workers", "2") as running:
        yield running


def client(venv: Path, server: Server, tmp_path: Path, body: str) -> Any:
    return client_json(venv, PRELUDE + body, server.url, tmp_path,
                      env={"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"}, timeout=800)


def raw(server: Server, method: str, path: str, body: dict[str, Any] | None = None,
        prefix: str = "/api/2.0/mlflow") -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(server.url + prefix + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"} if data else {})
    try:
        with urllib.request.urlopen(request, timeout=60) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def events(store_dir: Path, name: str) -> list[RegistryEvent]:
    """The registry's events for ``name``, read from the server's store by a second, read-only handle."""
    store = open_store(str(store_dir / "store"), create=False)
    try:
        return store.registry_events(name)
    finally:
        store.close()


WORKFLOW = '''
import numpy as np
from sklearn.linear_model import LinearRegression
X = np.array([[0.0], [1.0], [2.0]])
runs = []
for slope in (2.0, 3.0, 4.0):
    with mlflow.start_run() as run:
        # pip_requirements given: no requirement inference (a subprocess per model, minutes on a busy machine)
        mlflow.sklearn.log_model(LinearRegression().fit(X, slope * X[:, 0]), name="model",
                                 pip_requirements=["scikit-learn"])
    runs.append(run.info.run_id)
versions = [mlflow.register_model(f"runs:/{rid}/model", "reg-clf") for rid in runs]
out["versions"] = [[mv.version, mv.status, mv.current_stage, mv.run_id == rid, mv.source.startswith("models:/m-")]
                   for mv, rid in zip(versions, runs)]
client.transition_model_version_stage("reg-clf", "1", "Production")
client.transition_model_version_stage("reg-clf", "2", "production", archive_existing_versions=True)
client.transition_model_version_stage("reg-clf", "3", "Staging")
out["stages"] = {mv.version: mv.current_stage for mv in client.search_model_versions("name = 'reg-clf'")}
client.set_registered_model_alias("reg-clf", "champion", "1")
client.set_registered_model_alias("reg-clf", "champion", "3")  # moves
client.set_registered_model_alias("reg-clf", "challenger", "2")
out["by_alias"] = [client.get_model_version_by_alias("reg-clf", "champion").version,
                   sorted(client.get_model_version_by_alias("reg-clf", "champion").aliases)]
model = client.get_registered_model("reg-clf")
out["aliases"] = dict(sorted(model.aliases.items()))
out["latest"] = sorted((mv.current_stage, mv.version) for mv in model.latest_versions)


def predict(uri):
    return round(float(mlflow.pyfunc.load_model(uri).predict(np.array([[10.0]]))[0]), 6)


out["load"] = {uri: predict(uri) for uri in ["models:/reg-clf@champion", "models:/reg-clf@challenger",
                                             "models:/reg-clf/Production", "models:/reg-clf/Staging",
                                             "models:/reg-clf/latest", "models:/reg-clf/1"]}
out["download_uri"] = client.get_model_version_download_uri("reg-clf", "1").startswith("mlflow-artifacts:/")
client.set_registered_model_tag("reg-clf", "team", "vision")
client.set_model_version_tag("reg-clf", "1", "validated", "yes")
client.delete_model_version_tag("reg-clf", "1", "validated")
client.set_model_version_tag("reg-clf", "2", "validated", "yes")
client.update_registered_model("reg-clf", description="a line")
client.update_model_version("reg-clf", "2", description="v2 text")
mv2 = client.get_model_version("reg-clf", "2")
out["v2"] = [mv2.description, mv2.tags, list(mv2.aliases), mv2.current_stage]
out["model"] = [client.get_registered_model("reg-clf").description, client.get_registered_model("reg-clf").tags]
out["latest_prod"] = [mv.version for mv in client.get_latest_versions("reg-clf", stages=["Production"])]
out["search tag"] = [mv.version for mv in client.search_model_versions("name = 'reg-clf' and tags.validated = 'yes'")]
out["search run"] = [mv.version for mv in client.search_model_versions(f"run_id = '{runs[0]}'")]
client.create_registered_model("reg-other", tags={"team": "nlp"})
out["models"] = [m.name for m in client.search_registered_models(order_by=["name DESC"])]
out["models like"] = [m.name for m in client.search_registered_models("name LIKE 'reg-o%'")]
out["models tag"] = [m.name for m in client.search_registered_models("tags.team = 'vision'")]
page = client.search_registered_models(max_results=1, order_by=["name ASC"])
out["page"] = [[m.name for m in page], bool(page.token),
               [m.name for m in client.search_registered_models(max_results=1, order_by=["name ASC"],
                                                               page_token=page.token)]]
client.rename_registered_model("reg-other", "reg-renamed")
out["renamed"] = client.get_registered_model("reg-renamed").tags
out["rename to taken"] = code(client.rename_registered_model, "reg-clf", "reg-renamed")
client.delete_registered_model_alias("reg-clf", "challenger")
client.delete_model_version("reg-clf", "1")
out["after delete"] = sorted(mv.version for mv in client.search_model_versions("name = 'reg-clf'"))
out["next after delete"] = mlflow.register_model(f"runs:/{runs[0]}/model", "reg-clf").version
client.delete_registered_model("reg-renamed")
out["errors"] = {
    "unknown model": code(client.get_registered_model, "no-such-model"),
    "unknown version": code(client.get_model_version, "reg-clf", "99"),
    "deleted version": code(client.get_model_version, "reg-clf", "1"),
    "duplicate model": code(client.create_registered_model, "reg-clf"),
    "reserved latest": code(client.set_registered_model_alias, "reg-clf", "latest", "2"),
    "reserved v9": code(client.set_registered_model_alias, "reg-clf", "v9", "2"),
    "bad alias": code(client.set_registered_model_alias, "reg-clf", "bad alias", "2"),
    "alias to unknown version": code(client.set_registered_model_alias, "reg-clf", "x", "99"),
    "unknown alias": code(client.get_model_version_by_alias, "reg-clf", "nope"),
    "bad stage": code(client.transition_model_version_stage, "reg-clf", "2", "Bogus"),
    "archive from None": code(client.transition_model_version_stage, "reg-clf", "2", "None", True),
    "slash in name": code(client.create_registered_model, "a/b"),
    "version of unknown model": code(client.create_model_version, "no-such-model", "s3://b/k"),
    "deleted model": code(client.get_registered_model, "reg-renamed"),
}
'''


@pytest.mark.timeout(900)
def test_register_promote_alias_and_load(mlflow_full_venv: Path, server: Server, tmp_path: Path) -> None:
    out = client(mlflow_full_venv, server, tmp_path, WORKFLOW)
    assert out["versions"] == [["1", "READY", "None", True, True], ["2", "READY", "None", True, True],
                               ["3", "READY", "None", True, True]]
    assert out["stages"] == {"1": "Archived", "2": "Production", "3": "Staging"}
    assert out["by_alias"] == ["3", ["champion"]]
    assert out["aliases"] == {"challenger": "2", "champion": "3"}
    assert out["latest"] == [["Archived", "1"], ["Production", "2"], ["Staging", "3"]]
    assert out["load"] == {"models:/reg-clf@champion": 40.0, "models:/reg-clf@challenger": 30.0,
                           "models:/reg-clf/Production": 30.0, "models:/reg-clf/Staging": 40.0,
                           "models:/reg-clf/latest": 40.0, "models:/reg-clf/1": 20.0}
    assert out["download_uri"] is True
    assert out["v2"] == ["v2 text", {"validated": "yes"}, ["challenger"], "Production"]
    assert out["model"] == ["a line", {"team": "vision"}]
    assert out["latest_prod"] == ["2"]
    assert out["search tag"] == ["2"]
    assert out["search run"] == ["1"]
    assert out["models"] == ["reg-other", "reg-clf"]
    assert out["models like"] == ["reg-other"]
    assert out["models tag"] == ["reg-clf"]
    assert out["page"] == [["reg-clf"], True, ["reg-other"]]
    assert out["renamed"] == {"team": "nlp"}
    assert out["after delete"] == ["2", "3"]
    assert out["next after delete"] == "4"  # a deleted version's number is never reused
    errors = {k: v[0] if isinstance(v, list) else v for k, v in out["errors"].items()}
    assert errors == {
        "unknown model": "RESOURCE_DOES_NOT_EXIST", "unknown version": "RESOURCE_DOES_NOT_EXIST",
        "deleted version": "RESOURCE_DOES_NOT_EXIST", "duplicate model": "RESOURCE_ALREADY_EXISTS",
        "reserved latest": "INVALID_PARAMETER_VALUE", "reserved v9": "INVALID_PARAMETER_VALUE",
        "bad alias": "INVALID_PARAMETER_VALUE", "alias to unknown version": "RESOURCE_DOES_NOT_EXIST",
        "unknown alias": "INVALID_PARAMETER_VALUE", "bad stage": "INVALID_PARAMETER_VALUE",
        "archive from None": "INVALID_PARAMETER_VALUE", "slash in name": "INVALID_PARAMETER_VALUE",
        "version of unknown model": "RESOURCE_DOES_NOT_EXIST",
        "deleted model": "RESOURCE_DOES_NOT_EXIST"}
    assert out["rename to taken"][0] == "RESOURCE_ALREADY_EXISTS"
    # the client prefixes the server's message with its code
    messages = {k: v[1].split(": ", 1)[-1] for k, v in out["errors"].items() if isinstance(v, list)}
    assert messages["unknown model"] == "Registered Model with name=no-such-model not found"
    assert messages["unknown version"] == "Model Version (name=reg-clf, version=99) not found"
    assert messages["reserved latest"] == "'latest' alias name (case insensitive) is reserved."
    assert messages["reserved v9"] == "Version alias name 'v9' is reserved."
    assert messages["slash in name"] == "Invalid model name 'a/b'. Names cannot contain '/' or ':'."
    assert all("\n" not in m and "Traceback" not in m for m in messages.values())


RAW_CASES: list[tuple[str, str, dict[str, Any] | None, int, str]] = [
    ("POST", "/registered-models/create", {}, 400, "INVALID_PARAMETER_VALUE"),
    ("POST", "/registered-models/create", {"name": 5}, 400, "INVALID_PARAMETER_VALUE"),
    ("POST", "/registered-models/create", {"name": "   "}, 400, "INVALID_PARAMETER_VALUE"),
    ("POST", "/registered-models/create", {"name": "../up"}, 400, "INVALID_PARAMETER_VALUE"),
    ("GET", "/registered-models/get?name=raw-missing", None, 404, "RESOURCE_DOES_NOT_EXIST"),
    ("GET", "/registered-models/get", None, 400, "INVALID_PARAMETER_VALUE"),
    ("GET", "/model-versions/get?name=raw-missing&version=x", None, 400, "INVALID_PARAMETER_VALUE"),
    ("GET", "/registered-models/search?max_results=1001", None, 400, "INVALID_PARAMETER_VALUE"),
    ("GET", "/registered-models/search?filter=bogus%20%3D%201", None, 400, "INVALID_PARAMETER_VALUE"),
    ("GET", "/model-versions/search?filter=name%20%3C%3E%20%27x%27", None, 400, "INVALID_PARAMETER_VALUE"),
    ("POST", "/model-versions/create", {"name": "raw-missing"}, 400, "INVALID_PARAMETER_VALUE"),
    ("POST", "/model-versions/create", {"name": "raw-missing", "source": "/tmp/x"}, 400, "INVALID_PARAMETER_VALUE"),
    ("POST", "/model-versions/create", {"name": "raw-missing", "source": "s3://b/../k"}, 400,
     "INVALID_PARAMETER_VALUE"),
    ("POST", "/model-versions/create", {"name": "raw-missing", "source": "runs:/abc/model"}, 400,
     "INVALID_PARAMETER_VALUE"),
    ("POST", "/model-versions/create", {"name": "raw-missing", "source": "models:/m-" + "0" * 32}, 400,
     "INVALID_PARAMETER_VALUE"),
    ("POST", "/model-versions/transition-stage", {"name": "raw-missing", "version": "1"}, 400,
     "INVALID_PARAMETER_VALUE"),
    ("POST", "/registered-models/alias", {"name": "raw-missing", "alias": "a b", "version": "1"}, 400,
     "INVALID_PARAMETER_VALUE"),
    ("DELETE", "/registered-models/delete", {"name": "raw-missing"}, 404, "RESOURCE_DOES_NOT_EXIST"),
    ("PUT", "/registered-models/create", {"name": "x"}, 405, "ENDPOINT_NOT_FOUND"),
]


@pytest.mark.parametrize(("method", "path", "body", "status", "error_code"), RAW_CASES,
                         ids=[f"{c[0]} {c[1]} {json.dumps(c[2])}" for c in RAW_CASES])
def test_raw_errors(server: Server, method: str, path: str, body: dict[str, Any] | None, status: int,
                    error_code: str) -> None:
    got_status, payload = raw(server, method, path, body)
    assert (got_status, payload.get("error_code")) == (status, error_code), payload
    assert "\n" not in payload["message"] and "Traceback" not in payload["message"]


def test_raw_json_mapping(server: Server) -> None:
    """The wire shape `mlflow server` sends: versions as strings, times in ms, stage "None", run_id and run_link
    "" when the request had none (its handler stores the request's defaults), other unset fields out."""
    assert raw(server, "POST", "/registered-models/create", {"name": "raw-shape", "tags": [
        {"key": "k", "value": "v"}]})[0] == 200
    status, created = raw(server, "POST", "/model-versions/create", {"name": "raw-shape", "source": "s3://b/k",
                                                                     "description": "d"})
    assert status == 200
    mv = created["model_version"]
    assert isinstance(mv.pop("creation_timestamp"), int) and isinstance(mv.pop("last_updated_timestamp"), int)
    assert mv == {"name": "raw-shape", "version": "1", "current_stage": "None", "description": "d",
                  "source": "s3://b/k", "status": "READY", "run_id": "", "run_link": ""}
    status, got = raw(server, "GET", "/registered-models/get?name=raw-shape")
    rm = got["registered_model"]
    assert isinstance(rm.pop("creation_timestamp"), int) and isinstance(rm.pop("last_updated_timestamp"), int)
    assert [v["version"] for v in rm.pop("latest_versions")] == ["1"]
    assert rm == {"name": "raw-shape", "tags": [{"key": "k", "value": "v"}]}
    assert raw(server, "GET", "/model-versions/get-download-uri?name=raw-shape&version=1") == \
        (200, {"artifact_uri": "s3://b/k"})
    assert raw(server, "GET", "/registered-models/get-latest-versions?name=raw-shape&stages=Production") == (200, {})
    assert raw(server, "POST", "/registered-models/alias", {"name": "raw-shape", "alias": "a", "version": "1"}) \
        == (200, {})
    assert raw(server, "GET", "/registered-models/alias?name=raw-shape&alias=a")[1]["model_version"]["aliases"] \
        == ["a"]
    assert raw(server, "GET", "/registered-models/get?name=raw-shape", prefix="/ajax-api/2.0/mlflow")[0] == 200


WRITERS = 8
PER_WRITER = 3


def test_concurrent_registrations(server: Server, store_dir: Path) -> None:
    """8 writers register versions of one model at once (through two worker processes): every version number
    from 1 to 8*3 exactly once, each writer's answers distinct, the store's events one per version."""
    assert raw(server, "POST", "/registered-models/create", {"name": "raw-busy"})[0] == 200
    start = threading.Barrier(WRITERS)
    answers: list[list[Any]] = [[] for _ in range(WRITERS)]

    def writer(index: int) -> None:
        start.wait()
        for i in range(PER_WRITER):
            answers[index].append(raw(server, "POST", "/model-versions/create",
                                      {"name": "raw-busy", "source": f"s3://bucket/w{index}/{i}"}))

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(WRITERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    flat = [answer for per in answers for answer in per]
    assert [status for status, _ in flat] == [200] * WRITERS * PER_WRITER, flat
    numbers = sorted(int(payload["model_version"]["version"]) for _, payload in flat)
    assert numbers == list(range(1, WRITERS * PER_WRITER + 1))
    by_source = {payload["model_version"]["source"]: payload["model_version"]["version"] for _, payload in flat}
    assert len(by_source) == WRITERS * PER_WRITER
    _, searched = raw(server, "GET", "/model-versions/search?filter=name%3D%27raw-busy%27")
    assert {mv["source"]: mv["version"] for mv in searched["model_versions"]} == by_source
    created = [e for e in events(store_dir, "raw-busy") if e.kind == "version_created"]
    assert sorted(e.version for e in created if e.version is not None) == numbers


def test_changes_are_events_with_reasons(server: Server, store_dir: Path) -> None:
    """proj's history, over the wire: an alias moving records from -> to, and a ``reason`` in the body is kept."""
    assert raw(server, "POST", "/registered-models/create", {"name": "raw-history"})[0] == 200
    for source in ("s3://b/1", "s3://b/2"):
        assert raw(server, "POST", "/model-versions/create", {"name": "raw-history", "source": source})[0] == 200
    assert raw(server, "POST", "/registered-models/alias", {"name": "raw-history", "alias": "champion",
                                                           "version": "1"})[0] == 200
    assert raw(server, "POST", "/registered-models/alias", {"name": "raw-history", "alias": "champion",
                                                           "version": "2", "reason": "better recall"})[0] == 200
    assert raw(server, "POST", "/model-versions/transition-stage", {"name": "raw-history", "version": "2",
                                                                   "stage": "Production"})[0] == 200
    history = events(store_dir, "raw-history")
    aliases = [(e.key, e.old, e.new, e.reason) for e in history if e.kind == "alias_set"]
    assert aliases == [("champion", None, "1", None), ("champion", "1", "2", "better recall")]
    stages = [(e.version, e.old, e.new) for e in history if e.kind == "stage"]
    assert stages == [(2, "None", "Production")]


OUTLIVES = '''
import numpy as np
from sklearn.linear_model import LinearRegression
X = np.array([[0.0], [1.0], [2.0]])
with mlflow.start_run() as run:
    info = mlflow.sklearn.log_model(LinearRegression().fit(X, 5.0 * X[:, 0]), name="model",
                                    pip_requirements=["scikit-learn"])
mv = mlflow.register_model(f"runs:/{run.info.run_id}/model", "reg-outlives")
client.set_registered_model_alias("reg-outlives", "champion", mv.version)
out["uri"] = client.get_model_version_download_uri("reg-outlives", mv.version)
out["ids"] = [run.info.run_id, info.model_id]
'''

AFTER = '''
import numpy as np
out["load"] = round(float(mlflow.pyfunc.load_model("models:/reg-outlives@champion").predict(np.array([[2.0]]))[0]), 6)
out["get"] = client.get_model_version("reg-outlives", "1").source.startswith("models:/m-")
'''


def test_version_outlives_its_source(mlflow_full_venv: Path, server: Server, store_dir: Path, tmp_path: Path) -> None:
    """A version's download URI is its own content-addressed copy, served read-only: once the logged model and
    its run are deleted and their folders are gone, models:/NAME@alias still loads; the copy refuses writes."""
    out = client(mlflow_full_venv, server, tmp_path, OUTLIVES)
    digest = out["uri"].removeprefix("mlflow-artifacts:/registry/")
    assert len(digest) == 64 and int(digest, 16) >= 0, out["uri"]
    run_id, model_id = out["ids"]
    assert raw(server, "DELETE", f"/logged-models/{model_id}")[0] == 200
    assert raw(server, "POST", "/runs/delete", {"run_id": run_id})[0] == 200
    root = store_dir / "store"
    gone = [root / "logged_models" / model_id, *root.glob(f"**/{run_id}")]
    assert gone[0].is_dir(), sorted(p.name for p in root.iterdir())
    for folder in gone:
        shutil.rmtree(folder)
    assert client(mlflow_full_venv, server, tmp_path, AFTER) == {"load": 10.0, "get": True}
    request = urllib.request.Request(f"{server.url}/api/2.0/mlflow-artifacts/artifacts/registry/{digest}/MLmodel",
                                     data=b"changed", method="PUT")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=60)
    assert refused.value.code == 400 and "read-only" in json.loads(refused.value.read())["message"]


def test_protected_alias_and_stage_need_a_reason(server: Server, store_dir: Path) -> None:
    """proj's protection over the wire: moving a protected alias, or a version into a protected stage, without a
    ``reason`` is refused in one line (nothing changes); with one it goes through and the reason is recorded."""
    assert raw(server, "POST", "/registered-models/create", {"name": "raw-protected"})[0] == 200
    for source in ("s3://b/1", "s3://b/2"):
        assert raw(server, "POST", "/model-versions/create", {"name": "raw-protected", "source": source})[0] == 200
    assert raw(server, "POST", "/registered-models/alias", {"name": "raw-protected", "alias": "prod",
                                                           "version": "1"})[0] == 200
    registry.protect("raw-protected", alias="prod", tracking_uri=str(store_dir / "store"))
    registry.protect("raw-protected", stage="Production", tracking_uri=str(store_dir / "store"))
    move = {"name": "raw-protected", "alias": "prod", "version": "2"}
    status, refused = raw(server, "POST", "/registered-models/alias", move)
    assert (status, refused["error_code"]) == (400, "INVALID_PARAMETER_VALUE")
    assert "protected" in refused["message"] and "\n" not in refused["message"]
    stage = {"name": "raw-protected", "version": "2", "stage": "Production"}
    assert raw(server, "POST", "/model-versions/transition-stage", stage)[0] == 400
    assert raw(server, "POST", "/registered-models/alias", {**move, "reason": ""})[0] == 400
    assert raw(server, "GET", "/registered-models/alias?name=raw-protected&alias=prod")[1]["model_version"][
        "version"] == "1"
    assert raw(server, "POST", "/registered-models/alias", {**move, "reason": "rollout 42"})[0] == 200
    assert raw(server, "POST", "/model-versions/transition-stage", {**stage, "reason": "rollout 42"})[0] == 200
    assert raw(server, "GET", "/registered-models/alias?name=raw-protected&alias=prod")[1]["model_version"][
        "version"] == "2"
    history = events(store_dir, "raw-protected")
    assert [(e.kind, e.old, e.new, e.reason) for e in history if e.kind in ("alias_set", "stage")][-2:] == [
        ("alias_set", "1", "2", "rollout 42"), ("stage", "None", "Production", "rollout 42")]
