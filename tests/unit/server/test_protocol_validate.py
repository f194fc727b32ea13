"""Request validation as `mlflow server` does it (server.protocol.validate): MLflow's limits and messages."""
from __future__ import annotations

import math

import pytest

from proj.errors import UsageError
from proj.server.protocol import validate as v


def test_required_and_run_uuid_fallback() -> None:
    with pytest.raises(UsageError, match="Missing value for required parameter 'run_id'"):
        v.run_id({})
    assert v.run_id({"run_uuid": "abc"}) == "abc"
    assert v.run_id({"run_id": "x", "run_uuid": "y"}) == "x"
    with pytest.raises(UsageError) as info:
        v.run_id({"run_id": ""})
    assert info.value.error_code == "INVALID_PARAMETER_VALUE"


def test_integers_from_json_and_query_strings() -> None:
    assert v.integer({"n": 5}, "n") == 5
    assert v.integer({"n": "17"}, "n") == 17
    assert v.integer({"n": 3.0}, "n") == 3
    assert v.integer({}, "n", 9) == 9
    for bad in ("x", True, 1.5, 2**63):
        with pytest.raises(UsageError, match="for parameter 'n'"):
            v.integer({"n": bad}, "n")


def test_doubles_accept_protobuf_non_finite_strings() -> None:
    assert math.isnan(v.double("NaN", "value"))
    assert v.double("Infinity", "value") == math.inf
    assert v.double("-Infinity", "value") == -math.inf
    assert v.double(3, "value") == 3.0
    for bad in ("abc", None, True, "inf"):
        with pytest.raises(UsageError, match="Please specify value as a valid double"):
            v.double(bad, "value")


@pytest.mark.parametrize("key", ["a b", "x/y", "m:1", "with-dash.and_underscore"])
def test_valid_names(key: str) -> None:
    assert v.name(key, "key") == key


@pytest.mark.parametrize(("key", "message"), [
    ("bad!", "Names may only contain"), ("../up", "must not resolve to other names"), ("/abs", "resolve"),
    ("a//b", "resolve"), (".", "resolve"), ("k" * 251, "exceeds the maximum length of 250"),
])
def test_bad_names(key: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        v.name(key, "key")


def test_value_lengths(monkeypatch: pytest.MonkeyPatch) -> None:
    assert v.text("x" * 6000, "value", v.MAX_PARAM_VAL_LENGTH) == "x" * 6000
    # MLflow's server cuts over-long values by default (MLFLOW_TRUNCATE_LONG_VALUES), and refuses them without it
    assert v.text("x" * 6001, "value", v.MAX_PARAM_VAL_LENGTH, cut=True) == "x" * 6000
    assert v.text("y" * 9000, "value", v.MAX_TAG_VAL_LENGTH, cut=True) == "y" * 8000
    with pytest.raises(UsageError, match="5000"):  # what MLflow never cuts (experiment, registry tags)
        v.text("x" * 5001, "value", 5000)
    monkeypatch.setenv("MLFLOW_TRUNCATE_LONG_VALUES", "false")
    with pytest.raises(UsageError, match="'value' exceeds the maximum length of 6000 characters"):
        v.text("x" * 6001, "value", v.MAX_PARAM_VAL_LENGTH, cut=True)
    with pytest.raises(UsageError, match="8000"):
        v.text("x" * 8001, "value", v.MAX_TAG_VAL_LENGTH, cut=True)
    assert v.text(None, "value", 10) == ""
    assert v.text(5, "value", 10) == "5"


@pytest.mark.parametrize(("metrics", "params", "tags", "entity"), [
    (1001, 0, 0, "1000 metrics"), (0, 101, 0, "100 params"), (0, 0, 101, "100 tags"),
    (900, 100, 1, "1000 metrics, params, and tags"),
])
def test_batch_limits(metrics: int, params: int, tags: int, entity: str) -> None:
    with pytest.raises(UsageError, match=f"at most {entity}"):
        v.batch_limits(metrics, params, tags)


def test_batch_at_the_limits_is_fine() -> None:
    v.batch_limits(1000, 0, 0)
    v.batch_limits(800, 100, 100)


def test_repeated_query_parameter_given_once_is_a_list() -> None:
    assert v.array(v.QueryArgs(run_ids="a"), "run_ids") == ["a"]
    assert v.array(v.QueryArgs(run_ids=["a", "b"]), "run_ids") == ["a", "b"]
    with pytest.raises(UsageError):
        v.array({"run_ids": "a"}, "run_ids")  # a JSON body must send a list


def test_max_results_bounds() -> None:
    assert v.max_results({}, 1000) == 1000
    with pytest.raises(UsageError, match="at most 50000"):
        v.max_results({"max_results": 50001}, 1000)
    with pytest.raises(UsageError, match="positive"):
        v.max_results({"max_results": 0}, 1000)
