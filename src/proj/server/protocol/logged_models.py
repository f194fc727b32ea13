"""MLflow 3 logged models: create, get, finalize, delete, search, tags and params."""
from __future__ import annotations

from typing import Any

from proj.errors import UsageError
from proj.server.protocol import json as mj
from proj.server.protocol import validate as v
from proj.server.protocol.call import Call, JsonDict
from proj.tracking.records import MODEL_STATUSES

_STATUS_NUMBERS = {"1": "LOGGED_MODEL_PENDING", "2": "LOGGED_MODEL_READY", "3": "LOGGED_MODEL_UPLOAD_FAILED"}


def _model_id(call: Call) -> str:
    return call.path.get("model_id") or str(v.required(call.body, "model_id"))


def _pairs(call: Call, key: str, limit: int) -> dict[str, str]:
    return v.key_values(v.objects(call.body, key), key, limit)


def create(call: Call) -> JsonDict:
    body = call.body
    experiment_id = v.string(body, "experiment_id", need=True)
    assert experiment_id is not None
    model = call.store.create_logged_model(
        experiment_id, name=v.string(body, "name") or None, source_run_id=v.string(body, "source_run_id") or None,
        tags=_pairs(call, "tags", v.MAX_TAG_VAL_LENGTH), params=_pairs(call, "params", v.MAX_PARAM_VAL_LENGTH),
        model_type=v.string(body, "model_type") or None)
    return {"model": mj.logged_model(model)}


def get(call: Call) -> JsonDict:
    return {"model": mj.logged_model(call.store.get_logged_model(_model_id(call)))}


def finalize(call: Call) -> JsonDict:
    raw = v.required(call.body, "status")
    status = _STATUS_NUMBERS.get(str(raw), str(raw))
    if status not in MODEL_STATUSES:
        raise UsageError(v.invalid_value("status", raw, f"must be one of {', '.join(MODEL_STATUSES)}"))
    return {"model": mj.logged_model(call.store.finalize_logged_model(_model_id(call), status))}


def delete(call: Call) -> JsonDict:
    call.store.delete_logged_model(_model_id(call))
    return {}


def _order_by(items: list[dict[str, Any]]) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for i, item in enumerate(items):
        field = v.string(item, "field_name", need=True, path=f"order_by[{i}].field_name")
        entry: dict[str, object] = {"field_name": field, "ascending": v.boolean(item, "ascending", True)}
        for key in ("dataset_name", "dataset_digest"):
            if item.get(key):
                entry[key] = item[key]
        out.append(entry)
    return out


def search(call: Call) -> JsonDict:
    body = call.body
    experiment_ids = [str(e) for e in v.array(body, "experiment_ids")]
    found, token = call.store.search_logged_models(
        experiment_ids, filter_string=v.string(body, "filter") or None, max_results=v.max_results(body, 50),
        order_by=_order_by(v.objects(body, "order_by")) or None, page_token=v.string(body, "page_token") or None)
    out: JsonDict = {"models": [mj.logged_model(m) for m in found]} if found else {}
    if token:
        out["next_page_token"] = token
    return out


def set_tags(call: Call) -> JsonDict:
    model_id = _model_id(call)
    store = call.store
    store.set_logged_model_tags(model_id, _pairs(call, "tags", v.MAX_TAG_VAL_LENGTH))
    return {"model": mj.logged_model(store.get_logged_model(model_id))}


def delete_tag(call: Call) -> JsonDict:
    key = call.path.get("tag_key") or str(v.required(call.body, "tag_key"))
    call.store.delete_logged_model_tag(_model_id(call), key)
    return {}


def log_params(call: Call) -> JsonDict:
    call.store.log_logged_model_params(_model_id(call), _pairs(call, "params", v.MAX_PARAM_VAL_LENGTH))
    return {}
