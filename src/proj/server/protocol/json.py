"""MLflow's JSON mapping of proj's records: int64 as numbers, times in ms, ids as strings, empty fields omitted."""
from __future__ import annotations

import math
from typing import Any

import orjson

from proj.tracking.mlflow_tags import system_tags
from proj.tracking.records import (
    DatasetRecord,
    ExperimentRecord,
    LoggedModelRecord,
    MetricPoint,
    ModelMetric,
    RunInput,
    RunRecord,
    json_number,
    millis,
)

JsonDict = dict[str, Any]


def ms(seconds: float | None) -> int | None:
    """Seconds (proj's records) as MLflow's integer milliseconds."""
    return None if seconds is None else millis(seconds)


def seconds(millis: int | float | None) -> float | None:
    return None if millis is None else millis / 1000.0


number = json_number  # a double as protobuf's JSON writes it (NaN and the infinities as MLflow's strings)


def dumps(payload: Any) -> bytes:
    return orjson.dumps(payload)


def _pairs(items: dict[str, str]) -> list[JsonDict]:
    return [{"key": k, "value": v} for k, v in items.items()]


def _compact(data: JsonDict) -> JsonDict:
    """Proto2's JSON leaves out unset fields: None and empty lists go."""
    return {k: v for k, v in data.items() if v is not None and v != []}


def experiment(exp: ExperimentRecord) -> JsonDict:
    return _compact({
        "experiment_id": exp.id,
        "name": exp.name,
        "artifact_location": exp.artifact_location,
        "lifecycle_stage": exp.lifecycle_stage,
        "last_update_time": ms(exp.last_update_time),
        "creation_time": ms(exp.creation_time),
        "tags": _pairs(exp.tags),
    })


def metric(point: MetricPoint) -> JsonDict:
    return {"key": point.key, "value": number(point.value), "timestamp": ms(point.timestamp), "step": point.step}


def metrics(points: list[MetricPoint]) -> list[JsonDict]:
    """Many points at once (a history page of up to 25,000): the same mapping as ``metric``, inlined, because
    this loop is most of a long history's answer time."""
    finite = math.isfinite
    return [{"key": p.key, "value": p.value if finite(p.value) else number(p.value),
             "timestamp": millis(p.timestamp), "step": p.step} for p in points]


def metric_with_run(run_id: str, point: MetricPoint) -> JsonDict:
    return {**metric(point), "run_id": run_id}


def model_metric(point: ModelMetric, model_id: str) -> JsonDict:
    return _compact({"key": point.key, "value": number(point.value), "timestamp": ms(point.timestamp),
                     "step": point.step, "dataset_name": point.dataset_name,
                     "dataset_digest": point.dataset_digest, "model_id": model_id, "run_id": point.run_id})


def run_tags(run: RunRecord) -> dict[str, str]:
    """The tags a run shows: a proj run's system tags under the ones it logged (which win). A run an MLflow
    client opened shows exactly the tags it logged, as `mlflow server` answers (no ``mlflow.user`` added)."""
    if not run.entry_point and not run.command:
        return run.tags
    return {**system_tags(run), **run.tags}


def run_info(run: RunRecord) -> JsonDict:
    # built field by field rather than through _compact: a search page maps up to thousands of these
    info: JsonDict = {"run_uuid": run.id, "run_id": run.id}
    if run.name is not None:
        info["run_name"] = run.name
    info["experiment_id"] = run.experiment_id
    info["user_id"] = run.user or ""
    info["status"] = run.status
    info["start_time"] = millis(run.start_time)
    if run.end_time:
        info["end_time"] = millis(run.end_time)
    if run.artifact_uri:
        info["artifact_uri"] = run.artifact_uri
    info["lifecycle_stage"] = run.lifecycle_stage
    return info


def _dataset(ds: DatasetRecord) -> JsonDict:
    return _compact({"name": ds.name, "digest": ds.digest, "source_type": ds.source_type, "source": ds.source,
                     "schema": ds.schema, "profile": ds.profile})


def dataset_input(item: RunInput) -> JsonDict:
    return _compact({"tags": _pairs(item.tags), "dataset": _dataset(item.dataset)})


def run(record: RunRecord) -> JsonDict:
    """A run as ``runs/get`` answers it (info, data, inputs, outputs), as `mlflow server` writes it."""
    data: JsonDict = {}
    if record.metrics:
        data["metrics"] = metrics(list(record.metrics.values()))
    if record.params:
        data["params"] = [{"key": p.key, "value": p.value} for p in record.params]
    tags = run_tags(record)
    if tags:
        data["tags"] = [{"key": k, "value": v} for k, v in tags.items()]
    inputs = {"dataset_inputs": [dataset_input(d) for d in record.datasets]} if record.datasets else {}
    outputs = ({"model_outputs": [{"model_id": o.model_id, "step": o.step} for o in record.outputs]}
               if record.outputs else {})
    return {"info": run_info(record), "data": data, "inputs": inputs, "outputs": outputs}


def logged_model(model: LoggedModelRecord) -> JsonDict:
    info = _compact({
        "model_id": model.model_id,
        "experiment_id": model.experiment_id,
        "name": model.name,
        "creation_timestamp_ms": ms(model.creation_time),
        "last_updated_timestamp_ms": ms(model.last_updated_time),
        "artifact_uri": model.artifact_location,
        "status": model.status,
        "model_type": model.model_type,
        "source_run_id": model.source_run_id,
        "status_message": model.status_message,
        "tags": _pairs(model.tags),
    })
    data = _compact({"params": _pairs(model.params),
                     "metrics": [model_metric(m, model.model_id) for m in model.metrics]})
    return {"info": info, "data": data}
