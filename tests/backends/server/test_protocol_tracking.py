"""`proj server` for real, driven by the pinned MLflow client: experiments, runs, params immutability, limits,
search (filters, order, pages, view types), metric history pages, inputs and outputs, MLflow 2's log-model."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest

from helpers.servers import Server, client_json, proj_server

pytestmark = [pytest.mark.mlflow, pytest.mark.network, pytest.mark.slow, pytest.mark.xdist_group("proj-server")]

PRELUDE = '''
import math
from mlflow.entities import Metric, Param, RunTag, ViewType


def code(fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
    except MlflowException as e:
        return e.error_code
    return "no error"
'''


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    work = tmp_path_factory.mktemp("proj-server")
    with proj_server(work / "store", work) as running:
        yield running


def client(venv: Path, server: Server, tmp_path: Path, body: str) -> Any:
    return client_json(venv, PRELUDE + body, server.url, tmp_path)


def test_experiments(mlflow_full_venv: Path, server: Server, tmp_path: Path) -> None:
    out = client(mlflow_full_venv, server, tmp_path, '''
eid = client.create_experiment("exp-a", tags={"team": "x"})
e = client.get_experiment(eid)
out["created"] = [e.name, e.artifact_location, e.lifecycle_stage, e.tags]
out["by_name"] = client.get_experiment_by_name("exp-a").experiment_id == eid
out["missing_by_name"] = client.get_experiment_by_name("no-such") is None
out["duplicate"] = code(client.create_experiment, "exp-a")
out["unknown"] = code(client.get_experiment, "987654")
for i in range(5):
    client.create_experiment(f"page-{i}")
first = client.search_experiments(max_results=2, filter_string="name LIKE 'page-%'", order_by=["name ASC"])
second = client.search_experiments(max_results=2, filter_string="name LIKE 'page-%'", order_by=["name ASC"],
                                   page_token=first.token)
out["pages"] = [[x.name for x in first], [x.name for x in second], bool(first.token)]
out["rename_taken"] = code(client.rename_experiment, eid, "page-0")
client.rename_experiment(eid, "exp-b")
out["renamed"] = client.get_experiment(eid).name
client.set_experiment_tag(eid, "stage", "dev")
client.delete_experiment_tag(eid, "team")
out["tags"] = client.get_experiment(eid).tags
client.delete_experiment(eid)
out["deleted"] = client.get_experiment(eid).lifecycle_stage
out["active_names"] = "exp-b" in [x.name for x in client.search_experiments()]
out["deleted_names"] = [x.name for x in client.search_experiments(view_type=ViewType.DELETED_ONLY)]
client.restore_experiment(eid)
out["restored"] = client.get_experiment(eid).lifecycle_stage
out["default"] = client.get_experiment("0").name
''')
    assert out["created"][0] == "exp-a"
    assert out["created"][1] == f"mlflow-artifacts:/{out['created'][1].rsplit('/', 1)[1]}"
    assert out["created"][2:] == ["active", {"team": "x"}]
    assert out["by_name"] and out["missing_by_name"]
    assert out["duplicate"] == "RESOURCE_ALREADY_EXISTS"
    assert out["unknown"] == "RESOURCE_DOES_NOT_EXIST"
    assert out["pages"] == [["page-0", "page-1"], ["page-2", "page-3"], True]
    assert out["rename_taken"] == "BAD_REQUEST"  # what mlflow server answers (not RESOURCE_ALREADY_EXISTS)
    assert out["renamed"] == "exp-b"
    assert out["tags"] == {"stage": "dev"}
    assert out["deleted"] == "deleted" and not out["active_names"] and out["deleted_names"] == ["exp-b"]
    assert out["restored"] == "active" and out["default"] == "Default"


def test_runs_params_metrics_tags(mlflow_full_venv: Path, server: Server, tmp_path: Path) -> None:
    out = client(mlflow_full_venv, server, tmp_path, '''
eid = client.create_experiment("runs-exp")
run = client.create_run(eid, run_name="first", tags={"t": "1"})
rid = run.info.run_id
out["created"] = [run.info.status, run.info.run_name, run.info.artifact_uri, run.info.experiment_id == eid]
client.log_param(rid, "alpha", "0.1")
client.log_param(rid, "alpha", "0.1")  # the same value again is fine
out["changed_param"] = code(client.log_param, rid, "alpha", "0.2")
out["changed_in_batch"] = code(client.log_batch, rid, params=[Param("beta", "1"), Param("alpha", "0.3")])
client.log_batch(rid, metrics=[Metric("loss", 1.0 / (i + 1), 1000 + i, i) for i in range(10)],
                 params=[Param("gamma", "g")], tags=[RunTag("phase", "train")])
client.log_metric(rid, "nan", math.nan)
client.log_metric(rid, "inf", math.inf)
client.set_tag(rid, "gone", "soon")
client.delete_tag(rid, "gone")
out["missing_tag"] = code(client.delete_tag, rid, "gone")
client.update_run(rid, name="renamed")
client.set_terminated(rid, "FAILED")
got = client.get_run(rid)
out["run"] = [got.info.status, got.info.run_name, got.info.end_time is not None, got.data.params,
              {k: v for k, v in got.data.metrics.items() if k == "loss"}, str(got.data.metrics["nan"]),
              str(got.data.metrics["inf"]), {k: v for k, v in got.data.tags.items() if not k.startswith("mlflow.user")}]
out["history"] = [[m.step, m.value, m.timestamp] for m in client.get_metric_history(rid, "loss")][:3]
out["unknown_run"] = code(client.get_run, "f" * 32)
out["log_to_unknown"] = code(client.log_metric, "f" * 32, "x", 1.0)
client.delete_run(rid)
out["deleted"] = client.get_run(rid).info.lifecycle_stage
out["log_to_deleted"] = code(client.log_param, rid, "late", "1")
client.restore_run(rid)
out["restored"] = client.get_run(rid).info.lifecycle_stage
''')
    assert out["created"][0] == "RUNNING" and out["created"][1] == "first" and out["created"][3]
    assert out["created"][2].startswith("mlflow-artifacts:/") and out["created"][2].endswith("/artifacts")
    assert out["changed_param"] == "INVALID_PARAMETER_VALUE"
    assert out["changed_in_batch"] == "INVALID_PARAMETER_VALUE"
    status, name, ended, params, loss, nan, inf, tags = out["run"]
    assert [status, name, ended] == ["FAILED", "renamed", True]
    assert params == {"alpha": "0.1", "gamma": "g"}  # nothing of the refused batch was written (no beta)
    assert loss == {"loss": 0.1}
    assert nan == "nan" and inf == "inf"
    assert tags == {"t": "1", "phase": "train", "mlflow.runName": "renamed"}
    assert out["history"] == [[0, 1.0, 1000], [1, 0.5, 1001], [2, 1 / 3, 1002]]
    assert out["missing_tag"] == "RESOURCE_DOES_NOT_EXIST"
    assert out["unknown_run"] == out["log_to_unknown"] == "RESOURCE_DOES_NOT_EXIST"
    assert out["deleted"] == "deleted" and out["log_to_deleted"] == "INVALID_PARAMETER_VALUE"
    assert out["restored"] == "active"


def test_limits(mlflow_full_venv: Path, server: Server, tmp_path: Path) -> None:
    out = client(mlflow_full_venv, server, tmp_path, '''
from mlflow.utils.rest_utils import call_endpoint
from mlflow.protos.service_pb2 import LogBatch
from mlflow.tracking._tracking_service.utils import _get_store
rid = client.create_run("0").info.run_id
store = _get_store()
def raw(proto, body):
    # straight to the server: the client would cut or split what it sends
    try:
        call_endpoint(store.get_host_creds(), f"/api/2.0/mlflow/{proto}", "POST", json.dumps(body),
                      LogBatch.Response())
        return "no error"
    except MlflowException as e:
        return [e.error_code, e.message[:300]]
metric = {"key": "m", "value": 1.0, "timestamp": 1, "step": 0}
out["1000_metrics"] = raw("runs/log-batch", {"run_id": rid, "metrics": [metric] * 1000})
out["1001_metrics"] = raw("runs/log-batch", {"run_id": rid, "metrics": [metric] * 1001})
out["101_params"] = raw("runs/log-batch", {"run_id": rid, "params": [{"key": f"p{i}", "value": "1"} for i in range(101)]})
out["101_tags"] = raw("runs/log-batch", {"run_id": rid, "tags": [{"key": f"t{i}", "value": "1"} for i in range(101)]})
params = [{"key": f"q{i}", "value": "1"} for i in range(100)]
out["total"] = raw("runs/log-batch", {"run_id": rid, "metrics": [metric] * 901, "params": params})
out["long_key"] = raw("runs/log-parameter", {"run_id": rid, "key": "k" * 251, "value": "1"})
out["long_param"] = raw("runs/log-parameter", {"run_id": rid, "key": "p", "value": "v" * 6001})
out["param_6000"] = raw("runs/log-parameter", {"run_id": rid, "key": "p6000", "value": "v" * 6000})
out["long_tag"] = raw("runs/set-tag", {"run_id": rid, "key": "t", "value": "v" * 8001})
out["bad_key"] = raw("runs/log-metric", {"run_id": rid, "key": "bad!key", "value": 1, "timestamp": 1})
out["dotdot_key"] = raw("runs/log-metric", {"run_id": rid, "key": "../x", "value": 1, "timestamp": 1})
out["bad_value"] = raw("runs/log-metric", {"run_id": rid, "key": "x", "value": "abc", "timestamp": 1})
out["no_timestamp"] = raw("runs/log-metric", {"run_id": rid, "key": "x", "value": 1})
out["stored"] = [len(client.get_metric_history(rid, "m")), sorted(client.get_run(rid).data.params)]
data = client.get_run(rid).data
out["cut"] = [len(data.params.get("p", "")), len(data.tags.get("t", ""))]  # cut to the limit, as MLflow does
''')
    assert out["1000_metrics"] == "no error" and out["param_6000"] == "no error"
    for case, words in [("1001_metrics", "at most 1000 metrics"), ("101_params", "at most 100 params"),
                        ("101_tags", "at most 100 tags"), ("total", "at most 1000 metrics, params, and tags"),
                        ("long_key", "exceeds the maximum length of 250"), ("bad_key", "Names may only contain"),
                        ("dotdot_key", "must not resolve"), ("bad_value", "valid double"),
                        ("no_timestamp", "Missing value for required parameter 'timestamp'")]:
        assert out[case][0] == "INVALID_PARAMETER_VALUE", (case, out[case])
        assert words in out[case][1], (case, out[case])
    assert out["long_param"] == out["long_tag"] == "no error"  # cut, with a warning in the server's log
    # 1000 copies of one point (key, value, step, timestamp) are one point, as in MLflow's SQL store (its
    # metrics' primary key): the same batch sent again is not counted twice
    assert out["stored"] == [1, ["p", "p6000"]] and out["cut"] == [6000, 8000]


def test_search_runs(mlflow_full_venv: Path, server: Server, tmp_path: Path) -> None:
    out = client(mlflow_full_venv, server, tmp_path, '''
eid = client.create_experiment("search-exp")
ids = {}
for i in range(7):
    r = client.create_run(eid, run_name=f"r{i}", tags={"parity": "even" if i % 2 == 0 else "odd"})
    client.log_batch(r.info.run_id, metrics=[Metric("loss", 10 - i, 0, 0)], params=[Param("alpha", str(i / 10))])
    ids[r.info.run_id] = f"r{i}"
    if i == 6:
        client.delete_run(r.info.run_id)
names = lambda runs: [ids[x.info.run_id] for x in runs]
out["filter"] = names(client.search_runs([eid], "metrics.loss < 7 and tags.parity = 'even'", order_by=["metrics.loss ASC"]))
out["param"] = names(client.search_runs([eid], "params.alpha != '0.0'", order_by=["params.alpha DESC"], max_results=2))
out["like"] = names(client.search_runs([eid], "attributes.run_name LIKE 'r%'", order_by=["attributes.run_name ASC"]))
page1 = client.search_runs([eid], order_by=["metrics.loss DESC"], max_results=4)
page2 = client.search_runs([eid], order_by=["metrics.loss DESC"], max_results=4, page_token=page1.token)
out["pages"] = [names(page1), names(page2), page2.token]
out["deleted"] = names(client.search_runs([eid], run_view_type=ViewType.DELETED_ONLY))
out["all"] = len(client.search_runs([eid], run_view_type=ViewType.ALL))
out["bad_filter"] = code(client.search_runs, [eid], "metrics.loss <<< 1")
out["fluent"] = len(mlflow.search_runs(experiment_ids=[eid], filter_string="params.alpha = '0.2'"))
''')
    assert out["filter"] == ["r4"]  # r6 (loss 4) is deleted; r4 loss 6 < 7 and even; r2 loss 8
    assert out["param"] == ["r5", "r4"]
    assert out["like"] == ["r0", "r1", "r2", "r3", "r4", "r5"]
    assert out["pages"] == [["r0", "r1", "r2", "r3"], ["r4", "r5"], None]
    assert out["deleted"] == ["r6"] and out["all"] == 7
    assert out["bad_filter"] == "INVALID_PARAMETER_VALUE"
    assert out["fluent"] == 1


def test_metric_history_pages(mlflow_full_venv: Path, server: Server, tmp_path: Path) -> None:
    """30,000 points: the client fetches them in pages of 25,000 and gets each once, in step order."""
    out = client(mlflow_full_venv, server, tmp_path, '''
import urllib.request
rid = client.create_run("0").info.run_id
for start in range(0, 30000, 1000):
    client.log_batch(rid, metrics=[Metric("curve", float(s), 5000 + s, s) for s in range(start, start + 1000)])
points = client.get_metric_history(rid, "curve")
out["history"] = [len(points), points[0].step, points[-1].step, sorted({p.step for p in points}) == list(range(30000))]
url = mlflow.get_tracking_uri() + "/api/2.0/mlflow/metrics/get-history?run_id=" + rid + "&metric_key=curve&max_results=25000"
with urllib.request.urlopen(url) as resp:
    page = json.loads(resp.read())
out["page"] = [len(page["metrics"]), bool(page.get("next_page_token"))]
bulk = (mlflow.get_tracking_uri() + "/api/2.0/mlflow/metrics/get-history-bulk-interval"
        f"?run_ids={rid}&metric_key=curve&max_results=100")
with urllib.request.urlopen(bulk) as resp:
    sampled = json.loads(resp.read())["metrics"]
out["bulk"] = [len(sampled) <= 200, sampled[0]["step"], sampled[-1]["step"], {m["run_id"] for m in sampled} == {rid}]
''')
    assert out["history"] == [30000, 0, 29999, True]
    assert out["page"] == [25000, True]
    assert out["bulk"] == [True, 0, 29999, True]


def test_inputs_outputs_and_log_model_history(mlflow_full_venv: Path, server: Server, tmp_path: Path) -> None:
    out = client(mlflow_full_venv, server, tmp_path, '''
import pandas as pd
from mlflow.entities import LoggedModelOutput
from mlflow.protos.service_pb2 import LogModel
from mlflow.utils.rest_utils import call_endpoint
from mlflow.tracking._tracking_service.utils import _get_store
eid = client.create_experiment("inputs-exp")
with mlflow.start_run(experiment_id=eid) as run:
    ds = mlflow.data.from_pandas(pd.DataFrame({"x": [1, 2, 3]}), source="/data/x.csv", name="xs")
    mlflow.log_input(ds, context="training")
    rid = run.info.run_id
model = client.create_logged_model(eid, name="m1", source_run_id=rid)
client.log_outputs(rid, [LoggedModelOutput(model.model_id, 3)])
got = client.get_run(rid)
di = got.inputs.dataset_inputs
out["inputs"] = [len(di), di[0].dataset.name, di[0].dataset.source_type, {t.key: t.value for t in di[0].tags}]
out["outputs"] = [[o.model_id == model.model_id, o.step] for o in got.outputs.model_outputs]
model_json = json.dumps({"artifact_path": "model", "flavors": {"python_function": {"loader_module": "x", "config": {"a": 1}}},
                         "utc_time_created": "2026-01-01 00:00:00", "run_id": rid})
for _ in range(2):
    call_endpoint(_get_store().get_host_creds(), "/api/2.0/mlflow/runs/log-model", "POST",
                  json.dumps({"run_id": rid, "model_json": model_json}), LogModel.Response())
history = json.loads(client.get_run(rid).data.tags["mlflow.log-model.history"])
out["history"] = [len(history), history[0]["artifact_path"], history[0]["flavors"]]
try:
    call_endpoint(_get_store().get_host_creds(), "/api/2.0/mlflow/runs/log-model", "POST",
                  json.dumps({"run_id": rid, "model_json": "{not json"}), LogModel.Response())
    out["bad_model"] = "no error"
except MlflowException as e:
    out["bad_model"] = e.error_code
''')
    assert out["inputs"] == [1, "xs", "local", {"mlflow.data.context": "training"}]
    assert out["outputs"] == [[True, 3]]
    assert out["history"] == [2, "model", {"python_function": {"loader_module": "x"}}]  # config left out, as MLflow
    assert out["bad_model"] == "INVALID_PARAMETER_VALUE"
