"""Runs: create, get, update, delete, restore, tags, params, metrics, log-batch, inputs, outputs, search, log-model."""
from __future__ import annotations

import json
import time
from typing import Any

from proj.errors import UsageError
from proj.server.protocol import json as mj
from proj.server.protocol import validate as v
from proj.server.protocol.call import Call, JsonDict
from proj.server.protocol.experiments import view_type
from proj.tracking.mlflow_tags import LOG_MODEL_HISTORY
from proj.tracking.records import (
    DEFAULT_EXPERIMENT_ID,
    MLFLOW_STATUSES,
    DatasetRecord,
    MetricPoint,
    ModelMetric,
    ModelOutput,
    RunInput,
)

_STATUS_NUMBERS = {"1": "RUNNING", "2": "SCHEDULED", "3": "FINISHED", "4": "FAILED", "5": "KILLED"}


def _status(value: Any) -> str | None:
    if value is None or value == "":
        return None
    status = _STATUS_NUMBERS.get(str(value), str(value))
    if status not in MLFLOW_STATUSES:
        raise UsageError(v.invalid_value("status", value, f"must be one of {', '.join(MLFLOW_STATUSES)}"))
    return status


def _now_ms() -> int:
    return int(time.time() * 1000)


def create(call: Call) -> JsonDict:
    body = call.body
    experiment_id = v.string(body, "experiment_id") or DEFAULT_EXPERIMENT_ID
    tags = v.key_values(v.objects(body, "tags"), "tags", v.MAX_TAG_VAL_LENGTH, cut=True)
    start = v.integer(body, "start_time")
    run_name = v.string(body, "run_name") or None
    record = call.store.create_client_run(experiment_id, v.string(body, "user_id") or None,
                                          mj.seconds(start if start is not None else _now_ms()), tags, run_name)
    return {"run": mj.run(record)}


def get(call: Call) -> JsonDict:
    return {"run": mj.run(call.store.get_run(v.run_id(call.body)))}


def update(call: Call) -> JsonDict:
    body = call.body
    end = v.integer(body, "end_time")
    record = call.store.update_run(v.run_id(body), status=_status(body.get("status")), end_time=mj.seconds(end),
                                   run_name=v.string(body, "run_name") or None)
    return {"run_info": mj.run_info(record)}


def delete(call: Call) -> JsonDict:
    call.store.delete_run(v.run_id(call.body))
    return {}


def restore(call: Call) -> JsonDict:
    call.store.restore_run(v.run_id(call.body))
    return {}


def set_tag(call: Call) -> JsonDict:
    body = call.body
    run_id = v.run_id(body)
    key = v.name(body.get("key"), "key")
    call.store.set_tag(run_id, key, v.text(body.get("value"), "value", v.MAX_TAG_VAL_LENGTH, cut=True))
    return {}


def delete_tag(call: Call) -> JsonDict:
    key = v.string(call.body, "key", need=True)
    assert key is not None
    call.store.delete_tag(v.run_id(call.body), key)
    return {}


def _point(item: dict[str, Any], path: str) -> MetricPoint:
    prefix = f"{path}." if path else ""
    key = v.name(item.get("key"), f"{prefix}name")  # MLflow's messages call a metric's key its name
    if item.get("value") is None:
        raise v.missing(f"{prefix}value")
    timestamp = v.integer(item, "timestamp", path=f"{prefix}timestamp")
    if timestamp is None:
        raise v.missing(f"{prefix}timestamp")
    if timestamp < 0:
        raise UsageError(v.invalid_value(f"{prefix}timestamp", timestamp, f"metric '{key}'. Timestamp must be a "
                                                                          "nonnegative long (64-bit integer) "))
    step = v.integer(item, "step", 0, path=f"{prefix}step")
    assert step is not None
    value = v.double(item.get("value"), f"{prefix}value", f"(timestamp={timestamp}). ")
    return MetricPoint(key, value, step, timestamp / 1000.0)


def _model_metrics(call: Call, run_id: str, items: list[tuple[MetricPoint, dict[str, Any]]]) -> None:
    """Metrics logged with a ``model_id`` are the logged model's metrics too (MLflow 3)."""
    by_model: dict[str, list[ModelMetric]] = {}
    for point, item in items:
        model_id = item.get("model_id")
        if model_id:
            by_model.setdefault(str(model_id), []).append(ModelMetric(
                point.key, point.value, point.step, point.timestamp, run_id=run_id,
                dataset_name=item.get("dataset_name") or None, dataset_digest=item.get("dataset_digest") or None))
    for model_id, metrics in by_model.items():
        call.store.log_model_metrics(model_id, metrics)


def _log(call: Call, run_id: str, points: list[tuple[MetricPoint, dict[str, Any]]],
         params: list[tuple[str, str]] = [], tags: dict[str, str] | None = None) -> None:  # noqa: B006
    store = call.store
    metrics = [p for p, _ in points]
    if any(item.get("model_id") for _, item in points):
        with store.transaction():  # the run's points and the model's links land together or not at all
            store.log_client_batch(run_id, metrics=metrics, params=params, tags=tags)
            _model_metrics(call, run_id, points)
    else:
        store.log_client_batch(run_id, metrics=metrics, params=params, tags=tags)


def log_metric(call: Call) -> JsonDict:
    run_id = v.run_id(call.body)
    _log(call, run_id, [(_point(call.body, ""), call.body)])
    return {}


def log_param(call: Call) -> JsonDict:
    body = call.body
    run_id = v.run_id(body)
    key = v.name(body.get("key"), "key")
    _log(call, run_id, [], params=[(key, v.text(body.get("value"), "value", v.MAX_PARAM_VAL_LENGTH, cut=True))])
    return {}


def log_batch(call: Call) -> JsonDict:
    body = call.body
    v.request_size(call.size)
    run_id = v.run_id(body)
    metric_items = v.objects(body, "metrics")
    param_items = v.objects(body, "params")
    tag_items = v.objects(body, "tags")
    v.batch_limits(len(metric_items), len(param_items), len(tag_items))
    points = [(_point(item, f"metrics[{i}]"), item) for i, item in enumerate(metric_items)]
    params: list[tuple[str, str]] = []
    for i, item in enumerate(param_items):
        key = v.name(item.get("key"), f"params[{i}].key")
        params.append((key, v.text(item.get("value"), f"params[{i}].value", v.MAX_PARAM_VAL_LENGTH, cut=True)))
    tags = v.key_values(tag_items, "tags", v.MAX_TAG_VAL_LENGTH, cut=True)
    _log(call, run_id, points, params=params, tags=tags or None)
    return {}


def _dataset_input(item: dict[str, Any], index: int) -> RunInput:
    path = f"datasets[{index}]"
    dataset = item.get("dataset")
    if not isinstance(dataset, dict):
        raise v.missing(f"{path}.dataset")
    fields = {}
    for key in ("name", "digest", "source_type", "source"):
        value = v.string(dataset, key, need=True, path=f"{path}.dataset.{key}")
        assert value is not None
        fields[key] = value
    record = DatasetRecord(**fields, schema=v.string(dataset, "schema") or None,
                           profile=v.string(dataset, "profile") or None)
    tags = v.key_values([t for t in v.objects(item, "tags")], f"{path}.tags", 500, need_value=True)
    return RunInput(record, tags)


def log_inputs(call: Call) -> JsonDict:
    body = call.body
    run_id = v.run_id(body)
    datasets = [_dataset_input(item, i) for i, item in enumerate(v.objects(body, "datasets"))]
    models = [ModelOutput(str(v.required(m, "model_id", f"models[{i}].model_id")))
              for i, m in enumerate(v.objects(body, "models"))]
    call.store.log_inputs(run_id, datasets, models)
    return {}


def log_outputs(call: Call) -> JsonDict:
    body = call.body
    run_id = v.run_id(body)
    models = []
    for i, item in enumerate(v.objects(body, "models")):
        model_id = str(v.required(item, "model_id", f"models[{i}].model_id"))
        models.append(ModelOutput(model_id, v.integer(item, "step", 0, path=f"models[{i}].step") or 0))
    call.store.log_outputs(run_id, models)
    return {}


def search(call: Call) -> JsonDict:
    body = call.body
    experiment_ids = [str(e) for e in v.array(body, "experiment_ids")]
    order_by = [str(o) for o in v.array(body, "order_by")]
    found, token = call.store.search_client_runs(
        experiment_ids, filter_string=v.string(body, "filter") or None, view_type=view_type(call, "run_view_type"),
        max_results=v.max_results(body, 1000), order_by=order_by, page_token=v.string(body, "page_token") or None)
    out: JsonDict = {"runs": [mj.run(r) for r in found]} if found else {}
    if token:
        out["next_page_token"] = token
    return out


# The parts of an MLmodel that MLflow 2 keeps in the run's model history tag (Model.get_tags_dict)
_HISTORY_KEYS = ("run_id", "utc_time_created", "artifact_path", "model_uuid")


def log_model(call: Call) -> JsonDict:
    """MLflow 2's runs/log-model: the model's summary appended to the run's ``mlflow.log-model.history`` tag."""
    body = call.body
    run_id = v.run_id(body)
    text = v.string(body, "model_json", need=True)
    assert text is not None
    try:
        model = json.loads(text)
    except ValueError:
        raise UsageError(f"Malformed model info. {text[:200]} is not a valid JSON.") from None
    if not isinstance(model, dict):
        raise UsageError(f"Malformed model info. {text[:200]} is not a JSON object.")
    missing = {"artifact_path", "flavors", "utc_time_created", "run_id"} - set(model)
    if missing:
        raise UsageError(f"Model json is missing mandatory fields: {sorted(missing)}")
    summary: dict[str, Any] = {k: model[k] for k in _HISTORY_KEYS if k in model}
    flavors = model.get("flavors") or {}
    summary["flavors"] = {name: ({k: c for k, c in conf.items() if k != "config"} if isinstance(conf, dict) else conf)
                          for name, conf in flavors.items()}
    store = call.store
    with store.transaction():  # read, append and write the history as one step (two clients may log at once)
        run = store.get_run(run_id)
        previous = run.tags.get(LOG_MODEL_HISTORY)
        history = json.loads(previous) if previous else []
        value = json.dumps([*history, summary])
        v.length(LOG_MODEL_HISTORY, v.MAX_TAG_VAL_LENGTH, value)
        store.set_tag(run_id, LOG_MODEL_HISTORY, value)
    return {}
