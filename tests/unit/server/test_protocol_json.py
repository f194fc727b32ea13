"""MLflow's JSON mapping of proj's records (server.protocol.json): ms times, NaN strings, empty fields left out."""
from __future__ import annotations

import math

import orjson

from proj.server.protocol import json as mj
from proj.tracking.records import (
    DatasetRecord,
    ExperimentRecord,
    LoggedModelRecord,
    MetricPoint,
    ModelMetric,
    ModelOutput,
    ParamRecord,
    RunInput,
    RunRecord,
)


def _run(**overrides: object) -> RunRecord:
    fields: dict[str, object] = dict(
        id="a" * 32, experiment="Default", name="brave-owl-1", status="FINISHED", start_time=1700000000.1234,
        end_time=1700000001.5, user="ann", host="box", pid=None, source={}, project_name=None, entry_point="",
        command="", experiment_id="0", artifact_uri="mlflow-artifacts:/0/" + "a" * 32 + "/artifacts")
    fields.update(overrides)
    return RunRecord(**fields)  # type: ignore[arg-type]


def test_times_are_rounded_milliseconds() -> None:
    assert mj.ms(1700000000.1234) == 1700000000123
    assert mj.ms(1.0005) == 1000 or mj.ms(1.0005) == 1001  # float rounding either way, always an int
    assert isinstance(mj.ms(2.5), int)
    assert mj.ms(None) is None


def test_non_finite_values_as_mlflow_server_writes_them() -> None:
    assert mj.number(math.nan) == "NaN"
    assert mj.number(math.inf) == "Infinity"
    assert mj.number(-math.inf) == "-Infinity"
    assert mj.number(0.5) == 0.5
    point = mj.metric(MetricPoint("loss", math.nan, 3, 12.0))
    assert point == {"key": "loss", "value": "NaN", "timestamp": 12000, "step": 3}
    assert orjson.loads(mj.dumps(point))["value"] == "NaN"  # orjson would write null for a float NaN


def test_client_run_info_and_empty_fields_left_out() -> None:
    out = mj.run(_run(end_time=None, tags={"mlflow.runName": "brave-owl-1"}))
    info = out["info"]
    assert info["run_id"] == info["run_uuid"] == "a" * 32
    assert info["start_time"] == 1700000000123 and "end_time" not in info
    assert info["experiment_id"] == "0" and info["lifecycle_stage"] == "active"
    assert out["data"]["tags"] == [{"key": "mlflow.runName", "value": "brave-owl-1"}]  # as the client logged it
    assert "metrics" not in out["data"] and "params" not in out["data"]
    assert out["inputs"] == {} and out["outputs"] == {}


def test_run_data_inputs_outputs() -> None:
    record = _run(params=[ParamRecord("alpha", "0.1", 0.1, "float", "user")],
                  metrics={"loss": MetricPoint("loss", 0.25, 7, 2.0)}, tags={"mlflow.runName": "mine", "t": "1"},
                  datasets=[RunInput(DatasetRecord("d", "abc", "local", '{"uri": "x"}'), {"mlflow.data.context":
                                                                                          "train"})],
                  outputs=[ModelOutput("m-" + "1" * 32, 4)])
    out = mj.run(record)
    assert out["data"]["params"] == [{"key": "alpha", "value": "0.1"}]
    assert out["data"]["metrics"] == [{"key": "loss", "value": 0.25, "timestamp": 2000, "step": 7}]
    tags = {t["key"]: t["value"] for t in out["data"]["tags"]}
    assert tags["mlflow.runName"] == "mine" and tags["t"] == "1"  # the run's own tags win over system tags
    assert out["inputs"]["dataset_inputs"] == [{
        "tags": [{"key": "mlflow.data.context", "value": "train"}],
        "dataset": {"name": "d", "digest": "abc", "source_type": "local", "source": '{"uri": "x"}'}}]
    assert out["outputs"] == {"model_outputs": [{"model_id": "m-" + "1" * 32, "step": 4}]}


def test_proj_run_shows_its_system_tags() -> None:
    record = _run(entry_point="main", command="python train.py", source={"uri": "/src", "commit": "c" * 40},
                  env={"backend": "virtualenv"})
    tags = {t["key"]: t["value"] for t in mj.run(record)["data"]["tags"]}
    assert tags["mlflow.project.entryPoint"] == "main"
    assert tags["mlflow.source.git.commit"] == "c" * 40
    assert tags["mlflow.project.env"] == "virtualenv"
    assert tags["proj.run"] == "1"


def test_experiment_and_logged_model() -> None:
    exp = mj.experiment(ExperimentRecord("3", "e", "mlflow-artifacts:/3", creation_time=1.5, last_update_time=2.0,
                                         tags={"k": "v"}))
    assert exp == {"experiment_id": "3", "name": "e", "artifact_location": "mlflow-artifacts:/3",
                   "lifecycle_stage": "active", "creation_time": 1500, "last_update_time": 2000,
                   "tags": [{"key": "k", "value": "v"}]}
    model = LoggedModelRecord("m-" + "2" * 32, "3", "model", "mlflow-artifacts:/3/models/m/artifacts", 1.0, 2.0,
                              source_run_id="r", params={"p": "1"},
                              metrics=[ModelMetric("acc", 0.9, 0, 3.0, run_id="r")])
    out = mj.logged_model(model)
    assert out["info"]["creation_timestamp_ms"] == 1000 and out["info"]["status"] == "LOGGED_MODEL_PENDING"
    assert "tags" not in out["info"] and "model_type" not in out["info"]
    assert out["data"]["params"] == [{"key": "p", "value": "1"}]
    assert out["data"]["metrics"] == [{"key": "acc", "value": 0.9, "timestamp": 3000, "step": 0,
                                       "model_id": "m-" + "2" * 32, "run_id": "r"}]


def test_history_pages_map_points_as_one_metric_does() -> None:
    points = [MetricPoint("h", v, i, 1.0 + i / 1000) for i, v in enumerate([0.5, math.nan, math.inf, -math.inf, 2.0])]
    assert mj.metrics(points) == [mj.metric(p) for p in points]
    assert [m["value"] for m in mj.metrics(points)] == [0.5, "NaN", "Infinity", "-Infinity", 2.0]
