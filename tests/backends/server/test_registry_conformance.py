"""Conformance of the model registry: the official MLflow client runs the same registry workflows against
`proj server` and `mlflow server` (register_model from logged models, stages, aliases, tags, descriptions,
searches, rename, delete, loading by models:/ URIs, errors), and raw registry requests get the same status,
error code and wire JSON from both; answers normalised as in test_conformance (ids, times, hosts)."""
from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from backends.server.test_conformance import (  # noqa: F401 - mlflow_peer, servers: the real servers, reused
    Servers,
    answers,
    assert_same,
    differences,
    mlflow_peer,
    normalise,
    servers,
)
from helpers.servers import Server

pytestmark = [pytest.mark.mlflow, pytest.mark.network, pytest.mark.slow, pytest.mark.xdist_group("mlflow-server")]

REGISTRY = '''
import numpy as np
from sklearn.linear_model import LinearRegression
X = np.array([[0.0], [1.0], [2.0]])
exp = mlflow.set_experiment("conf-registry").experiment_id
out["experiment_id"] = exp
runs = []
for slope in (2.0, 3.0):
    with mlflow.start_run(run_name=f"slope-{slope}") as run:
        mlflow.sklearn.log_model(LinearRegression().fit(X, slope * X[:, 0]), name="model",
                                 pip_requirements=["scikit-learn"])
    runs.append(run.info.run_id)
out["run_ids"] = runs
v1 = mlflow.register_model(f"runs:/{runs[0]}/model", "conf-reg")
v2 = mlflow.register_model(f"runs:/{runs[1]}/model", "conf-reg", tags={"origin": "fluent"})
out["registered"] = [d(v1), d(v2)]
out["model"] = d(client.get_registered_model("conf-reg"))
out["stage 1"] = d(client.transition_model_version_stage("conf-reg", "1", "Staging"))
out["stage 1 prod"] = d(client.transition_model_version_stage("conf-reg", "1", "production"))
out["stage 2 archive"] = d(client.transition_model_version_stage("conf-reg", "2", "Production",
                                                                 archive_existing_versions=True))
out["after archive"] = [d(mv) for mv in client.search_model_versions("name = 'conf-reg'")]
client.set_registered_model_alias("conf-reg", "champion", "1")
client.set_registered_model_alias("conf-reg", "champion", "2")
client.set_registered_model_alias("conf-reg", "challenger", "1")
out["by alias"] = d(client.get_model_version_by_alias("conf-reg", "champion"))
out["by latest alias"] = d(client.get_model_version_by_alias("conf-reg", "latest"))
out["model with aliases"] = d(client.get_registered_model("conf-reg"))
out["latest"] = [d(mv) for mv in client.get_latest_versions("conf-reg")]
out["latest staging"] = [d(mv) for mv in client.get_latest_versions("conf-reg", stages=["Staging"])]
out["latest production"] = [d(mv) for mv in client.get_latest_versions("conf-reg", stages=["production"])]
client.set_registered_model_tag("conf-reg", "team", "vision")
client.set_registered_model_tag("conf-reg", "gone", "x")
client.delete_registered_model_tag("conf-reg", "gone")
client.delete_registered_model_tag("conf-reg", "never-set")
client.set_model_version_tag("conf-reg", "1", "validated", "yes")
client.set_model_version_tag("conf-reg", "2", "gone", "x")
client.delete_model_version_tag("conf-reg", "2", "gone")
out["described"] = d(client.update_registered_model("conf-reg", description="the classifier"))
out["version described"] = d(client.update_model_version("conf-reg", "1", description="first"))
out["get version"] = d(client.get_model_version("conf-reg", "1"))
out["download uri"] = client.get_model_version_download_uri("conf-reg", "1")


def predict(uri):
    return round(float(mlflow.pyfunc.load_model(uri).predict(np.array([[10.0]]))[0]), 6)


out["load"] = {uri: predict(uri) for uri in ["models:/conf-reg@champion", "models:/conf-reg@challenger",
                                             "models:/conf-reg/Production", "models:/conf-reg/Archived",
                                             "models:/conf-reg/latest", "models:/conf-reg/1"]}
for i in range(4):
    client.create_registered_model(f"conf-page-{i}", tags={"i": str(i), "parity": "even" if i % 2 == 0 else "odd"},
                                   description=f"model {i}")
pages, token = [], None
while True:
    page = client.search_registered_models(filter_string="name LIKE 'conf-page-%'", order_by=["name DESC"],
                                           max_results=3, page_token=token)
    pages.append([m.name for m in page])
    token = page.token
    if not token:
        break
out["model pages"] = pages
for f in ["name = 'conf-reg'", "name LIKE 'conf-%'", "name ILIKE 'CONF-PAGE-%'", "tags.parity = 'even'",
          "name != 'conf-reg'", "tags.i = '3'", "name LIKE 'conf-page-%' and tags.parity != 'odd'"]:
    out["models " + f] = sorted(m.name for m in client.search_registered_models(filter_string=f))
out["models full"] = [d(m) for m in client.search_registered_models(filter_string="name = 'conf-reg'")]
for f in ["name = 'conf-reg'", "run_id = '<run0>'", "tags.validated = 'yes'", "version_number > 1",
          "name = 'conf-reg' and version_number = 2", "run_id IN ('<run0>', '<run1>')",
          "name LIKE 'conf-%'", "tags.origin = 'fluent'"]:
    given = f.replace("<run0>", runs[0]).replace("<run1>", runs[1])  # the answer's key stays free of ids
    out["versions " + f] = [(mv.name, mv.version) for mv in client.search_model_versions(given)]
out["versions order"] = [mv.version for mv in client.search_model_versions("name = 'conf-reg'",
                                                                          order_by=["version_number ASC"])]
client.rename_registered_model("conf-page-3", "conf-renamed")
out["renamed"] = d(client.get_registered_model("conf-renamed"))
client.delete_registered_model_alias("conf-reg", "challenger")
client.delete_registered_model_alias("conf-reg", "never-set")
client.delete_model_version("conf-reg", "1")
out["after version delete"] = d(client.get_registered_model("conf-reg"))
v3 = mlflow.register_model(f"runs:/{runs[0]}/model", "conf-reg")
out["number after delete"] = v3.version
client.delete_registered_model("conf-renamed")
out["errors"] = {
    "unknown model": code(client.get_registered_model, "conf-no-such"),
    "unknown version": code(client.get_model_version, "conf-reg", "99"),
    "deleted version": code(client.get_model_version, "conf-reg", "1"),
    "delete deleted version": code(client.delete_model_version, "conf-reg", "1"),
    "duplicate": code(client.create_registered_model, "conf-reg"),
    "rename to taken": code(client.rename_registered_model, "conf-page-0", "conf-reg"),
    "reserved latest": code(client.set_registered_model_alias, "conf-reg", "Latest", "2"),
    "reserved version alias": code(client.set_registered_model_alias, "conf-reg", "v12", "2"),
    "alias to unknown version": code(client.set_registered_model_alias, "conf-reg", "x", "99"),
    "unknown alias": code(client.get_model_version_by_alias, "conf-reg", "nope"),
    "bad stage": code(client.transition_model_version_stage, "conf-reg", "2", "Bogus"),
    "slash": code(client.create_registered_model, "a/b"),
    "colon": code(client.create_registered_model, "a:b"),
    "version of unknown model": code(client.create_model_version, "conf-no-such", "s3://bucket/key"),
    "deleted model": code(client.get_registered_model, "conf-renamed"),
    "bad filter": code(client.search_registered_models, filter_string="nope = 'x'"),
    "bad version filter": code(client.search_model_versions, filter_string="nope = 'x'"),
    "bad order": code(client.search_registered_models, order_by=["nope DESC"]),
    "load unknown alias": code(mlflow.pyfunc.load_model, "models:/conf-reg@nope"),
    "load unknown stage": code(mlflow.pyfunc.load_model, "models:/conf-reg/Staging"),
}
'''


def test_registry(servers: Servers, mlflow_full_venv: Path) -> None:  # noqa: F811
    got = answers(servers, mlflow_full_venv, "registry", REGISTRY)
    # on purpose: proj gives the version's own copy of its files, MLflow the logged model's artifacts (the
    # loads through either, compared in "load", answer the same)
    assert re.fullmatch(r"mlflow-artifacts:/registry/[0-9a-f]{64}", got["proj"]["download uri"])
    assert re.fullmatch(r"mlflow-artifacts:/<exp\d>/models/<id\d+>/artifacts", got["mlflow"]["download uri"])
    assert_same(got, proj_better={"download uri": got["proj"]["download uri"]})


POINTERS = '''
client.create_registered_model("conf-pointers")
mv = client.create_model_version("conf-pointers", "s3://bucket/models/one", description="outside")
out["pointer"] = d(mv)
out["pointer uri"] = client.get_model_version_download_uri("conf-pointers", mv.version)
out["copy of version"] = d(client.create_model_version("conf-pointers", f"models:/conf-pointers/{mv.version}"))
out["versions"] = [d(v) for v in client.search_model_versions("name = 'conf-pointers'")]
for source in ["/tmp/local/model", "file:///tmp/local/model", "s3://bucket/../up", "runs:/" + "0" * 32 + "/model",
               "models:/m-" + "0" * 32, "models:/conf-pointers/99", "mlflow-artifacts:/0/" + "0" * 32 + "/artifacts/m"]:
    out["source " + source] = code(client.create_model_version, "conf-pointers", source)
'''


def test_pointer_sources(servers: Servers, mlflow_full_venv: Path) -> None:  # noqa: F811
    """Sources the server does not hold (s3://...) are recorded as pointers, as MLflow records every source;
    the sources MLflow refuses are refused with its codes."""
    assert_same(answers(servers, mlflow_full_venv, "pointers", POINTERS))


def _raw(url: str, method: str, path: str, body: dict[str, Any] | None) -> list[Any]:
    """(status, the normalisable JSON answer) of one raw registry request."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url + "/api/2.0/mlflow" + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"} if data is not None else {})
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            status, payload = resp.status, resp.read()
    except urllib.error.HTTPError as e:
        status, payload = e.code, e.read()
    parsed = json.loads(payload)
    if isinstance(parsed, dict) and "error_code" in parsed:
        parsed = {"error_code": parsed["error_code"]}  # messages differ in wording where MLflow's leak SQL
    return [status, parsed]


RAW: list[tuple[str, str, dict[str, Any] | None]] = [
    ("POST", "/registered-models/create", {"name": "raw-conf", "tags": [{"key": "k", "value": "v"}]}),
    ("POST", "/registered-models/create", {"name": "raw-conf"}),
    ("POST", "/registered-models/create", {}),
    ("POST", "/registered-models/create", {"name": "  "}),
    ("POST", "/registered-models/create", {"name": "a/b"}),
    ("GET", "/registered-models/get?name=raw-conf", None),
    ("GET", "/registered-models/get?name=raw-none", None),
    ("GET", "/registered-models/get", None),
    ("POST", "/model-versions/create", {"name": "raw-conf", "source": "s3://b/1"}),
    ("POST", "/model-versions/create", {"name": "raw-conf", "source": "s3://b/2", "description": "two",
                                        "tags": [{"key": "a", "value": "b"}], "run_link": "http://x/y"}),
    ("POST", "/model-versions/create", {"name": "raw-conf"}),
    ("POST", "/model-versions/create", {"name": "raw-none", "source": "s3://b/1"}),
    ("GET", "/model-versions/get?name=raw-conf&version=1", None),
    ("GET", "/model-versions/get?name=raw-conf&version=x", None),
    ("GET", "/model-versions/get?name=raw-conf&version=9", None),
    ("POST", "/model-versions/transition-stage", {"name": "raw-conf", "version": "1", "stage": "staging"}),
    ("POST", "/model-versions/transition-stage", {"name": "raw-conf", "version": "2", "stage": "Staging",
                                                  "archive_existing_versions": True}),
    ("POST", "/model-versions/transition-stage", {"name": "raw-conf", "version": "2", "stage": "Bogus"}),
    ("POST", "/model-versions/transition-stage", {"name": "raw-conf", "version": "2"}),
    ("POST", "/registered-models/alias", {"name": "raw-conf", "alias": "champion", "version": "1"}),
    ("POST", "/registered-models/alias", {"name": "raw-conf", "alias": "latest", "version": "1"}),
    ("POST", "/registered-models/alias", {"name": "raw-conf", "alias": "V7", "version": "1"}),
    ("POST", "/registered-models/alias", {"name": "raw-conf", "alias": "a b", "version": "1"}),
    ("POST", "/registered-models/alias", {"name": "raw-conf", "alias": "x", "version": "9"}),
    ("GET", "/registered-models/alias?name=raw-conf&alias=champion", None),
    ("GET", "/registered-models/alias?name=raw-conf&alias=latest", None),
    ("GET", "/registered-models/alias?name=raw-conf&alias=nope", None),
    ("GET", "/registered-models/get?name=raw-conf", None),
    ("GET", "/model-versions/search?filter=name%3D%27raw-conf%27", None),
    ("GET", "/registered-models/search?filter=name%3D%27raw-conf%27", None),
    ("GET", "/registered-models/search?filter=name%3D%27raw-none%27", None),
    ("GET", "/registered-models/search?filter=bogus%3D1", None),
    ("POST", "/registered-models/get-latest-versions", {"name": "raw-conf"}),
    ("GET", "/registered-models/get-latest-versions?name=raw-conf&stages=Production", None),
    ("PATCH", "/registered-models/update", {"name": "raw-conf", "description": "new"}),
    ("PATCH", "/model-versions/update", {"name": "raw-conf", "version": "1", "description": "nd"}),
    ("POST", "/model-versions/set-tag", {"name": "raw-conf", "version": "1", "key": "k", "value": "v"}),
    ("POST", "/model-versions/set-tag", {"name": "raw-conf", "version": "1", "key": "e"}),
    ("DELETE", "/model-versions/delete-tag", {"name": "raw-conf", "version": "1", "key": "never"}),
    ("POST", "/registered-models/set-tag", {"name": "raw-conf", "key": "k2", "value": "v"}),
    ("DELETE", "/registered-models/delete-tag", {"name": "raw-conf", "key": "never"}),
    ("GET", "/model-versions/get-download-uri?name=raw-conf&version=1", None),
    ("GET", "/model-versions/get?name=raw-conf&version=1", None),
    ("POST", "/registered-models/rename", {"name": "raw-conf"}),
    ("POST", "/registered-models/rename", {"name": "raw-none", "new_name": "raw-other"}),
    ("DELETE", "/registered-models/alias", {"name": "raw-conf", "alias": "never"}),
    ("DELETE", "/registered-models/alias", {"name": "raw-conf", "alias": "champion"}),
    ("DELETE", "/model-versions/delete", {"name": "raw-conf", "version": "1"}),
    ("DELETE", "/model-versions/delete", {"name": "raw-conf", "version": "1"}),
    ("POST", "/model-versions/create", {"name": "raw-conf", "source": "s3://b/3"}),
    ("GET", "/registered-models/get?name=raw-conf", None),
    ("DELETE", "/registered-models/delete", {"name": "raw-conf"}),
    ("DELETE", "/registered-models/delete", {"name": "raw-conf"}),
]


def test_raw_registry_requests(servers: Servers) -> None:  # noqa: F811
    got = servers.both("raw registry requests", lambda server: normalise({
        f"{i:02d} {method} {path} {json.dumps(body)}": _raw(server.url, method, path, body)
        for i, (method, path, body) in enumerate(RAW)}))
    found = differences(got["proj"], got["mlflow"])
    assert not found, "proj server and mlflow server answered raw registry requests differently:\n" + "\n".join(found)


def _deliberate(server: Server) -> dict[str, Any]:
    body = {"name": "raw-diff", "version": "1", "stage": "None", "archive_existing_versions": True}
    _raw(server.url, "POST", "/registered-models/create", {"name": "raw-diff"})
    _raw(server.url, "POST", "/registered-models/create", {"name": "raw-diff-2"})
    _raw(server.url, "POST", "/model-versions/create", {"name": "raw-diff", "source": "s3://b/1"})
    request = urllib.request.Request(server.url + "/api/2.0/mlflow/registered-models/rename", method="POST",
                                     data=json.dumps({"name": "raw-diff-2", "new_name": "raw-diff"}).encode(),
                                     headers={"Content-Type": "application/json"})
    try:
        urllib.request.urlopen(request, timeout=30)
        rename: Any = "no error"
    except urllib.error.HTTPError as e:
        rename = json.loads(e.read())["message"]
    return {"archive": _raw(server.url, "POST", "/model-versions/transition-stage", body),
            "rename message lines": len(rename.splitlines()), "sql": bool(re.search("SQL", rename))}


def test_deliberate_differences(servers: Servers) -> None:  # noqa: F811
    """Where proj answers better than `mlflow server`, on purpose: a bad archive request is the client's
    error (400), not MLflow's INTERNAL_ERROR 500; a taken name on rename is one line, not MLflow's SQL."""
    answers_by = servers.both("deliberate differences", _deliberate)
    assert answers_by["mlflow"]["archive"] == [500, {"error_code": "INTERNAL_ERROR"}]
    assert answers_by["proj"]["archive"] == [400, {"error_code": "INVALID_PARAMETER_VALUE"}]
    assert answers_by["proj"]["rename message lines"] == 1 and not answers_by["proj"]["sql"]
