"""Experiments: create, get, get-by-name, search, update (rename), delete, restore, set and delete tags."""
from __future__ import annotations

from proj.errors import AlreadyExists, NotFound, UsageError
from proj.server.protocol import json as mj
from proj.server.protocol import validate as v
from proj.server.protocol.call import Call, JsonDict
from proj.server.protocol.errors import ApiError
from proj.tracking.records import ACTIVE_ONLY, VIEW_TYPES

# ViewType's enum numbers, which a client may send instead of the names
_VIEW_NUMBERS = {"1": "ACTIVE_ONLY", "2": "DELETED_ONLY", "3": "ALL"}


def view_type(call: Call, key: str) -> str:
    value = call.body.get(key)
    if value is None or value == "":
        return ACTIVE_ONLY
    value = _VIEW_NUMBERS.get(str(value), str(value))
    if value not in VIEW_TYPES:
        raise UsageError(v.invalid_value(key, value, f"must be one of {', '.join(VIEW_TYPES)}"))
    return value


def _experiment_id(call: Call) -> str:
    value = v.string(call.body, "experiment_id", need=True)
    assert value is not None
    return value


def create(call: Call) -> JsonDict:
    name = v.experiment_name(call.body.get("name"))
    location = v.string(call.body, "artifact_location") or None
    tags = v.key_values(v.objects(call.body, "tags"), "tags", v.MAX_EXPERIMENT_TAG_VAL_LENGTH)
    return {"experiment_id": call.store.create_experiment(name, location, tags)}


def get(call: Call) -> JsonDict:
    return {"experiment": mj.experiment(call.store.get_experiment(_experiment_id(call)))}


def get_by_name(call: Call) -> JsonDict:
    name = v.string(call.body, "experiment_name", need=True)
    assert name is not None
    found = call.store.get_experiment_by_name(name)
    if found is None:
        raise NotFound(f"Could not find experiment with name '{name}'")
    return {"experiment": mj.experiment(found)}


def search(call: Call) -> JsonDict:
    body = call.body
    order_by = [str(o) for o in v.array(body, "order_by")]
    found, token = call.store.search_experiments(
        view_type=view_type(call, "view_type"), max_results=v.max_results(body, 1000),
        filter_string=v.string(body, "filter") or None, order_by=order_by,
        page_token=v.string(body, "page_token") or None)
    out: JsonDict = {"experiments": [mj.experiment(e) for e in found]} if found else {}
    if token:
        out["next_page_token"] = token
    return out


def update(call: Call) -> JsonDict:
    exp_id = _experiment_id(call)
    new_name = v.string(call.body, "new_name")
    if new_name:
        try:
            call.store.rename_experiment(exp_id, v.experiment_name(new_name))
        except AlreadyExists as exc:  # MLflow's server answers a rename onto a taken name with BAD_REQUEST
            raise ApiError(exc.message, "BAD_REQUEST") from None
    return {}


def delete(call: Call) -> JsonDict:
    call.store.delete_experiment(_experiment_id(call))
    return {}


def restore(call: Call) -> JsonDict:
    call.store.restore_experiment(_experiment_id(call))
    return {}


def set_tag(call: Call) -> JsonDict:
    exp_id = _experiment_id(call)
    key = v.name(call.body.get("key"), "key")
    value = v.text(call.body.get("value"), "value", v.MAX_EXPERIMENT_TAG_VAL_LENGTH)
    call.store.set_experiment_tag(exp_id, key, value)
    return {}


def delete_tag(call: Call) -> JsonDict:
    exp_id = _experiment_id(call)
    key = v.string(call.body, "key", need=True)
    assert key is not None
    call.store.delete_experiment_tag(exp_id, key)
    return {}
