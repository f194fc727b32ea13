"""MLflow 3 logged models through `proj server` with the pinned client: create, get, finalize, search by name,
tags, params, metrics linked by model_id; and mlflow.sklearn.log_model then pyfunc.load_model("runs:/...")."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest

from helpers.servers import Server, client_json, proj_server

pytestmark = [pytest.mark.mlflow, pytest.mark.network, pytest.mark.slow, pytest.mark.xdist_group("proj-server")]

PRELUDE = '''
from mlflow.entities import Metric


def code(fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
    except MlflowException as e:
        return e.error_code
    return "no error"
'''


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    work = tmp_path_factory.mktemp("proj-server-models")
    with proj_server(work / "store", work) as running:
        yield running


def client(venv: Path, server: Server, tmp_path: Path, body: str) -> Any:
    return client_json(venv, PRELUDE + body, server.url, tmp_path)


def test_logged_model_lifecycle(mlflow_full_venv: Path, server: Server, tmp_path: Path) -> None:
    out = client(mlflow_full_venv, server, tmp_path, '''
from mlflow.entities import LoggedModelStatus
eid = client.create_experiment("models-exp")
run = client.create_run(eid)
rid = run.info.run_id
model = client.create_logged_model(eid, name="clf", source_run_id=rid, params={"depth": "3"},
                                   tags={"team": "a"}, model_type="sklearn")
mid = model.model_id
out["created"] = [mid.startswith("m-"), model.name, model.status.to_proto(), model.source_run_id == rid,
                  model.artifact_location, model.params, model.tags, model.model_type]
client.set_logged_model_tags(mid, {"stage": "dev"})
client.delete_logged_model_tag(mid, "team")
client.log_model_params(mid, {"lr": "0.1"})
client.log_batch(rid, metrics=[Metric("acc", 0.9, 1000, 0, model_id=mid)])
mlflow.log_metric("auc", 0.8, run_id=rid, model_id=mid)
client.finalize_logged_model(mid, LoggedModelStatus.READY)
got = client.get_logged_model(mid)
out["got"] = [got.status.to_proto(), got.tags, got.params, sorted((m.key, m.value, m.run_id == rid) for m in got.metrics)]
other = client.create_logged_model(eid, name="other")
found = client.search_logged_models([eid], filter_string="name = 'clf'")
out["search"] = [[m.model_id == mid for m in found], len(client.search_logged_models([eid]))]
out["by_ready"] = [m.name for m in client.search_logged_models([eid], filter_string="status = 'READY'")]
client.delete_logged_model(other.model_id)
out["after_delete"] = [m.name for m in client.search_logged_models([eid])]
out["unknown"] = code(client.get_logged_model, "m-" + "0" * 32)
''')
    created = out["created"]
    assert created[:4] == [True, "clf", 1, True]
    assert created[4].startswith("mlflow-artifacts:/") and created[4].endswith("/artifacts") and "/models/" in created[4]
    assert created[5:] == [{"depth": "3"}, {"team": "a"}, "sklearn"]
    assert out["got"] == [2, {"stage": "dev"}, {"depth": "3", "lr": "0.1"}, [["acc", 0.9, True], ["auc", 0.8, True]]]
    assert out["search"] == [[True], 2]
    assert out["by_ready"] == ["clf"]
    assert out["after_delete"] == ["clf"]
    assert out["unknown"] == "RESOURCE_DOES_NOT_EXIST"


def test_sklearn_log_model_and_load_by_run_uri(mlflow_full_venv: Path, server: Server, tmp_path: Path) -> None:
    """The MLflow 3 flow end to end: the model's artifacts go up through the server, runs:/<id>/model resolves
    through a logged-model search by name, and the model loads and predicts."""
    out = client(mlflow_full_venv, server, tmp_path, '''
import numpy as np
from sklearn.linear_model import LinearRegression
X = np.array([[0.0], [1.0], [2.0]])
model = LinearRegression().fit(X, np.array([1.0, 3.0, 5.0]))
with mlflow.start_run() as run:
    info = mlflow.sklearn.log_model(model, name="model")
loaded = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model")
out["predict"] = [round(float(v), 6) for v in loaded.predict(np.array([[3.0]]))]
out["model_uri"] = info.model_uri.startswith("models:/m-")
out["by_model_uri"] = [round(float(v), 6) for v in mlflow.pyfunc.load_model(info.model_uri).predict(np.array([[4.0]]))]
out["status"] = client.get_logged_model(info.model_id).status.to_proto()
''')
    assert out == {"predict": [7.0], "model_uri": True, "by_model_uri": [9.0], "status": 2}
