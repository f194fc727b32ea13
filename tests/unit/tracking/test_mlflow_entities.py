"""MLflow's entities in the real SQLite store: experiments, client runs, log-batch, histories, inputs/outputs,
logged models; MLflow's errors (codes and messages), view types, pages, NaN/inf, concurrent writers."""
from __future__ import annotations

import math
import os
import re
import threading
from pathlib import Path

import pytest

from helpers.stores import BACKENDS, make_store, raw
from proj.errors import AlreadyExists, InvalidState, NotFound, UsageError
from proj.tracking.records import (
    ACTIVE_ONLY,
    ALL,
    DELETED_ONLY,
    MODEL_READY,
    DatasetRecord,
    MetricPoint,
    ModelMetric,
    ModelOutput,
    NewRun,
    ParamRecord,
    RunInput,
    millis,
)
from proj.tracking.sqlite import SqliteStore
from proj.tracking.store import RunStore


def proj_run(experiment: str = "e") -> NewRun:
    return NewRun(experiment, None, {"uri": "/p", "kind": "local"}, "p", "main", "python t.py",
                  [ParamRecord("alpha", "0.1", 0.1, "float", "user")], {}, "local")


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> SqliteStore:
    return make_store(request, tmp_path)  # type: ignore[return-value]


def test_a_new_store_has_the_default_experiment_as_id_0(store: SqliteStore) -> None:
    default = store.get_experiment("0")
    assert (default.name, default.lifecycle_stage, default.artifact_location) == ("Default", "active",
                                                                                    "mlflow-artifacts:/0")
    run = store.create_run(proj_run("Default"), pid=os.getpid())
    assert (run.experiment_id, run.lifecycle_stage) == ("0", "active")
    assert run.artifact_uri == f"mlflow-artifacts:/0/{run.id}/artifacts"  # proj's own runs have one too
    assert store.create_experiment("next") == "1"


def test_experiments_create_get_rename_and_their_errors(store: SqliteStore) -> None:
    eid = store.create_experiment("exp", tags={"team": "a"})
    got = store.get_experiment(eid)
    assert (got.name, got.tags, got.artifact_location) == ("exp", {"team": "a"}, f"mlflow-artifacts:/{eid}")
    assert store.get_experiment_by_name("exp") == got and store.get_experiment_by_name("nope") is None
    with pytest.raises(AlreadyExists, match=r"^Experiment\(name=exp\) already exists") as dup:
        store.create_experiment("exp")
    assert dup.value.error_code == "RESOURCE_ALREADY_EXISTS"
    for bad, message in (("", "Invalid experiment name: ''"), ("x" * 501, "exceeds the maximum length of 500")):
        with pytest.raises(UsageError, match=re.escape(message)) as err:
            store.create_experiment(bad)
        assert err.value.error_code == "INVALID_PARAMETER_VALUE"
    with pytest.raises(NotFound, match="^No Experiment with id=99 exists$") as gone:
        store.get_experiment("99")
    assert gone.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(UsageError, match="^Invalid experiment ID 'abc'. Experiment ID must be a valid integer.$") as bad:
        store.get_experiment("abc")  # not a number: a bad value, as MLflow tells it apart from a missing one
    assert bad.value.error_code == "INVALID_PARAMETER_VALUE"
    explicit = store.create_experiment("elsewhere", artifact_location="s3://bucket/root")
    assert store.get_experiment(explicit).artifact_location == "s3://bucket/root"
    store.rename_experiment(eid, "renamed")
    assert store.get_experiment(eid).name == "renamed"
    assert store.get_experiment(eid).last_update_time >= got.last_update_time
    with pytest.raises(AlreadyExists):
        store.rename_experiment(eid, "elsewhere")
    store.delete_experiment(eid)
    with pytest.raises(InvalidState, match=r"^Cannot rename a non-active experiment\.$"):
        store.rename_experiment(eid, "again")
    with pytest.raises(AlreadyExists, match="deleted"):  # a deleted experiment keeps its name
        store.create_experiment("renamed")


def test_delete_and_restore_take_the_runs_along(store: SqliteStore) -> None:
    eid = store.create_experiment("exp")
    client = store.create_client_run(eid, "ann", None, {}, None)
    proj = store.create_run(proj_run("exp"), pid=os.getpid())
    store.delete_experiment(eid)
    assert store.get_experiment(eid).lifecycle_stage == "deleted"
    assert {store.get_run(r.id).lifecycle_stage for r in (client, proj)} == {"deleted"}
    assert store.list_runs() == []  # proj's own listing hides deleted runs
    with pytest.raises(NotFound):  # MLflow: deleting twice finds no active experiment
        store.delete_experiment(eid)
    with pytest.raises(InvalidState, match="'exp' .* is deleted"):  # `proj run -e exp` into it is refused
        store.create_run(proj_run("exp"), pid=os.getpid())
    with pytest.raises(InvalidState, match=f"The experiment {eid} must be in the 'active' state"):
        store.create_client_run(eid, None, None, {}, None)
    store.restore_experiment(eid)
    assert {store.get_run(r.id).lifecycle_stage for r in (client, proj)} == {"active"}
    with pytest.raises(NotFound):
        store.restore_experiment(eid)  # not deleted any more
    with pytest.raises(InvalidState, match="Cannot delete the default experiment '0'"):
        store.delete_experiment("0")


def test_experiment_tags(store: SqliteStore) -> None:
    eid = store.create_experiment("exp")
    store.set_experiment_tag(eid, "k", "v1")
    store.set_experiment_tag(eid, "k", "v2")
    assert store.get_experiment(eid).tags == {"k": "v2"}
    store.delete_experiment_tag(eid, "k")
    with pytest.raises(NotFound, match=f"^No tag with name: k in experiment with id {eid}$"):
        store.delete_experiment_tag(eid, "k")
    store.delete_experiment(eid)
    with pytest.raises(InvalidState, match="must be in the 'active' state"):
        store.set_experiment_tag(eid, "k", "v")


def test_search_experiments_filters_orders_views_and_pages(store: SqliteStore) -> None:
    ids = [store.create_experiment(f"exp-{i:02d}", tags={"parity": "even" if i % 2 == 0 else "odd"})
           for i in range(12)]
    store.delete_experiment(ids[0])
    raw(store, "UPDATE experiments SET created = 1000")  # ties: the same creation time for all

    def names(**kwargs: object) -> list[str]:
        found, _ = store.search_experiments(**kwargs)  # type: ignore[arg-type]
        return [e.name for e in found]

    assert names(filter_string="name = 'exp-03'") == ["exp-03"]
    assert names(filter_string="attributes.name LIKE 'exp-1%'") == ["exp-10", "exp-11"]
    assert names(filter_string="name ILIKE 'EXP-1%'", order_by=["name DESC"]) == ["exp-11", "exp-10"]
    odd = names(filter_string="name != 'exp-01' AND tags.parity = 'odd'", order_by=["name"])
    assert odd == ["exp-03", "exp-05", "exp-07", "exp-09", "exp-11"]
    assert names(filter_string="creation_time = 1000000", order_by=["name"])[:2] == ["Default", "exp-01"]
    assert "exp-00" not in names() and names(view_type=DELETED_ONLY) == ["exp-00"]
    assert len(names(view_type=ALL)) == 13  # Default too
    # Default order with ties: ascending ids; pages cover every experiment once
    seen: list[str] = []
    token = None
    while True:
        page, token = store.search_experiments(view_type=ALL, max_results=5, page_token=token)
        seen += [e.id for e in page]
        if token is None:
            break
    assert seen == sorted(seen, key=int) and len(seen) == 13
    for bad in ({"page_token": "not-a-token"}, {"filter_string": "params.a = '1'"}, {"order_by": ["tags.parity"]},
                {"max_results": 0}, {"view_type": "SOME"}):
        with pytest.raises(UsageError):
            store.search_experiments(**bad)  # type: ignore[arg-type]


def test_client_runs_names_tags_and_artifact_uris(store: SqliteStore) -> None:
    eid = store.create_experiment("exp")
    run = store.create_client_run(eid, "ann", 1700000000.5, {"k": "v"}, None)
    assert re.fullmatch(r"[a-z]+-[a-z]+-\d{1,3}", run.name or "")
    assert run.tags == {"k": "v", "mlflow.runName": run.name}
    assert (run.user, run.host, run.pid, run.status, run.start_time) == ("ann", "", None, "RUNNING", 1700000000.5)
    assert run.artifact_uri == f"mlflow-artifacts:/{eid}/{run.id}/artifacts"
    named = store.create_client_run(eid, None, None, {"mlflow.runName": "from-tag"}, None)
    assert named.name == "from-tag"
    with pytest.raises(UsageError, match="Both 'run_name' argument and 'mlflow.runName' tag are specified"):
        store.create_client_run(eid, None, None, {"mlflow.runName": "a"}, "b")
    with pytest.raises(NotFound, match="No Experiment with id=77 exists"):
        store.create_client_run("77", None, None, {}, None)
    explicit = store.create_experiment("s3", artifact_location="s3://b/r/")
    assert store.create_client_run(explicit, None, None, {}, "x").artifact_uri.startswith("s3://b/r/")


def test_update_delete_restore_and_tags_of_a_run(store: SqliteStore) -> None:
    run = store.create_client_run("0", "ann", None, {}, "first")
    updated = store.update_run(run.id, status="FINISHED", end_time=1800000000.0, run_name="second")
    assert (updated.status, updated.end_time, updated.name, updated.tags["mlflow.runName"]) == (
        "FINISHED", 1800000000.0, "second", "second")
    store.update_run(run.id, status="SCHEDULED")  # MLflow's fifth status
    with pytest.raises(UsageError, match="Invalid run status 'DONE'"):
        store.update_run(run.id, status="DONE")
    store.set_tag(run.id, "mlflow.runName", "third")
    assert store.get_run(run.id).name == "third"
    store.delete_tag(run.id, "mlflow.runName")
    with pytest.raises(NotFound, match=f"^No tag with name: mlflow.runName in run with id {run.id}$"):
        store.delete_tag(run.id, "mlflow.runName")
    with pytest.raises(NotFound, match="^Run with id=feed not found$"):
        store.update_run("feed", status="FAILED")
    store.delete_run(run.id)
    deleted = store.get_run(run.id)  # MLflow's get_run still answers for a deleted run
    assert deleted.lifecycle_stage == "deleted"
    message = f"The run {run.id} must be in the 'active' state. Current state is deleted."
    for call in (lambda: store.set_tag(run.id, "a", "b"), lambda: store.update_run(run.id, status="FAILED"),
                 lambda: store.log_client_batch(run.id, [MetricPoint("m", 1.0, 0, 1.0)])):
        with pytest.raises(InvalidState, match=re.escape(message)) as err:
            call()
        assert err.value.error_code == "INVALID_PARAMETER_VALUE"
    store.restore_run(run.id)
    assert store.get_run(run.id).lifecycle_stage == "active"


def test_log_batch_params_are_immutable_and_a_refused_batch_writes_nothing(store: SqliteStore) -> None:
    run = store.create_client_run("0", None, None, {}, None)
    store.log_client_batch(run.id, [MetricPoint("m", 1.0, 0, 1.0)], [("p", "1")], {"t": "a"})
    store.log_client_batch(run.id, params=[("p", "1")])  # the same value again is fine
    with pytest.raises(InvalidState, match=re.escape(
            f"Changing param values is not allowed. Param with key='p' was already logged with value='1' for run "
            f"ID='{run.id}'. Attempted logging new value '2'.")):
        store.log_client_batch(run.id, [MetricPoint("m", 5.0, 9, 2.0)], [("p", "2"), ("q", "x")], {"t": "b"})
    after = store.get_run(run.id)
    assert [(p.key, p.value) for p in after.params] == [("p", "1")]
    assert after.tags["t"] == "a" and len(store.metric_history(run.id, "m")) == 1  # nothing of the batch
    with pytest.raises(UsageError, match="Duplicate parameter keys have been submitted: \\['r'\\]"):
        store.log_client_batch(run.id, params=[("r", "1"), ("r", "2")])
    store.log_client_batch(run.id, tags={"mlflow.runName": "renamed"})
    assert store.get_run(run.id).name == "renamed"


def test_nan_and_infinities_round_trip(store: SqliteStore) -> None:
    run = store.create_client_run("0", None, None, {}, None)
    values = [math.nan, math.inf, -math.inf, 0.5]
    store.log_client_batch(run.id, [MetricPoint(f"k{i}", v, 0, 1.0) for i, v in enumerate(values)]
                           + [MetricPoint("h", v, s, 1.0 + s) for s, v in enumerate(values)])
    latest = store.get_run(run.id).metrics
    assert math.isnan(latest["k0"].value) and latest["k1"].value == math.inf and latest["k2"].value == -math.inf
    history, _ = store.metric_history_page(run.id, "h")
    assert math.isnan(history[0].value) and [p.value for p in history[1:]] == values[1:]
    assert math.isnan(store.metric_history(run.id, "h")[0].value)
    other = store.create_client_run("0", None, None, {}, None)
    store.log_client_batch(other.id, [MetricPoint("k1", 3.0, 0, 1.0)])
    found, _ = store.search_client_runs(["0"], "metrics.k1 > 2", order_by=["metrics.k1 DESC"])
    assert [r.id for r in found] == [run.id, other.id]  # +inf is the largest


def test_metric_history_pages_and_latest_point(store: SqliteStore) -> None:
    run = store.create_client_run("0", None, None, {}, None)
    points = [MetricPoint("loss", float(i), i, 100.0 + i) for i in range(60)]
    store.log_client_batch(run.id, points[30:])
    store.log_client_batch(run.id, points[:30])  # older steps logged later do not replace the latest
    assert store.get_run(run.id).metrics["loss"] == points[-1]
    store.log_client_batch(run.id, [MetricPoint("loss", -1.0, 59, 159.0)])  # same step and time: last one wins
    assert store.get_run(run.id).metrics["loss"].value == -1.0
    got: list[MetricPoint] = []
    token = None
    pages = 0
    while True:
        page, token = store.metric_history_page(run.id, "loss", max_results=25, page_token=token)
        got += page
        pages += 1
        if token is None:
            break
    assert pages == 3 and got == points + [MetricPoint("loss", -1.0, 59, 159.0)]
    for bad in ("%%%", "eyJvZmZzZXQiOiAxfQ=="):  # garbage, and a search token
        with pytest.raises(UsageError, match="page token"):
            store.metric_history_page(run.id, "loss", page_token=bad)
    same = [MetricPoint("flat", float(i), 0, 5.0) for i in range(10)]  # log_metric's default: step 0, one time
    store.log_client_batch(run.id, same)
    flat, token = store.metric_history_page(run.id, "flat", max_results=3)
    while token:
        page, token = store.metric_history_page(run.id, "flat", max_results=3, page_token=token)
        flat += page
    assert flat == same  # ties across page boundaries: in insertion order, none lost or repeated
    assert store.metric_history_page("abc", "loss") == ([], None)  # an unknown run has no points, as in MLflow


def test_history_wire_rows_are_the_same_pages_in_mlflows_json_terms(store: SqliteStore) -> None:
    """The server's fast path: the same points, pages and tokens as metric_history_page, with NaN and the
    infinities as MLflow's strings and times in rounded milliseconds, whatever the store's generic version says."""
    run = store.create_client_run("0", None, None, {}, None)
    values = [math.nan, math.inf, -math.inf, 0.1, -2.5e-300, 1e308]
    stamps = [1764600000.123, 1764600000.1234996, 1764600000.0005, 1.0, 2.0, 3.0]  # seconds, as records keep them
    store.log_client_batch(run.id, [MetricPoint("m", v, s, ts) for s, (v, ts) in enumerate(zip(values, stamps, strict=True))])
    wire_pages, page_pages = [], []
    for fetch, pages in ((store.metric_history_wire, wire_pages), (store.metric_history_page, page_pages)):
        token = None
        while True:
            page, token = fetch(run.id, "m", max_results=4, page_token=token)
            pages.append(page)
            if token is None:
                break
    assert [len(p) for p in wire_pages] == [len(p) for p in page_pages] == [4, 2]
    points = [p for page in page_pages for p in page]
    wire = [row[:3] for page in wire_pages for row in page]
    generic, _ = RunStore.metric_history_wire(store, run.id, "m", max_results=10)  # the interface's own version
    assert wire == [row[:3] for row in generic]
    assert wire == [(("NaN" if math.isnan(p.value) else "Infinity" if p.value == math.inf else
                      "-Infinity" if p.value == -math.inf else p.value), p.step, millis(p.timestamp))
                    for p in points]
    assert [row[2] for row in wire[3:]] == [1764600000001, 1764600000123, 1764600000123]  # half away from zero
    assert {row[0] for row in wire} >= {"NaN", "Infinity", "-Infinity", 0.1, 1e308}


def test_bulk_interval_keeps_first_last_and_a_spike(store: SqliteStore) -> None:
    run = store.create_client_run("0", None, None, {}, None)
    small = store.create_client_run("0", None, None, {}, None)
    points = [MetricPoint("acc", 1000.0 if step == 537 else step / 1000, step, float(step)) for step in range(1000)]
    store.log_client_batch(run.id, points)
    store.log_client_batch(small.id, points[:5])
    got = store.metric_history_bulk_interval([run.id, small.id], "acc", 20)
    mine = [p for rid, p in got if rid == run.id]
    assert len(mine) <= 20 and mine[0].step == 0 and mine[-1].step == 999
    assert [p.step for p in mine] == sorted(p.step for p in mine)
    assert any(p.value == 1000.0 for p in mine)  # the spike survives the sampling
    assert [p for rid, p in got if rid == small.id] == points[:5]  # fewer than asked: all of them
    ranged = store.metric_history_bulk_interval([run.id], "acc", 10, start_step=100, end_step=200)
    assert ranged[0][1].step == 100 and ranged[-1][1].step == 200 and len(ranged) <= 10
    assert [p.step for _, p in store.metric_history_bulk_interval([run.id], "acc", 1)] == [999]
    with pytest.raises(UsageError, match="Both start_step and end_step must be specified together"):
        store.metric_history_bulk_interval([run.id], "acc", 10, start_step=1)
    with pytest.raises(NotFound):
        store.metric_history_bulk_interval([run.id, "nope"], "acc", 10)


def test_inputs_and_outputs(store: SqliteStore) -> None:
    eid = store.create_experiment("exp")
    a, b = (store.create_client_run(eid, None, None, {}, None) for _ in range(2))
    dataset = DatasetRecord("train", "d1g3st", "local", '{"uri": "/data"}', '{"cols": 3}', None)
    store.log_inputs(a.id, [RunInput(dataset, {"mlflow.data.context": "training"})])
    store.log_inputs(b.id, [RunInput(dataset)])
    store.log_inputs(b.id, [RunInput(dataset, {"x": "y"})])  # logged again: one link, the first tags kept (MLflow)
    model = store.create_logged_model(eid, source_run_id=a.id)
    store.log_outputs(a.id, [ModelOutput(model.model_id, 3)])
    got = store.get_run(a.id)
    assert got.datasets == [RunInput(dataset, {"mlflow.data.context": "training"})]
    assert got.outputs == [ModelOutput(model.model_id, 3)]
    assert store.get_run(b.id).datasets == [RunInput(dataset)]
    assert raw(store, "SELECT count(*) FROM datasets")[0][0] == 1  # one per (experiment, name, digest)
    other = DatasetRecord("eval", "e4a1", "local", '{"uri": "/eval"}')
    store.log_inputs(b.id, [RunInput(other, {"mlflow.data.context": "eval"})])

    def found(text: str) -> set[str]:
        return {r.id for r in store.search_client_runs([eid], text)[0]}

    assert found("datasets.name = 'train'") == {a.id, b.id}
    assert found("datasets.name IN ('eval', 'nope')") == found("datasets.digest LIKE 'e4%'") == {b.id}
    assert found("datasets.context = 'training'") == {a.id}
    assert found("datasets.context = 'eval' and datasets.name = 'train'") == {b.id}  # each clause: any input
    assert found("datasets.name NOT IN ('train')") == {b.id}
    store.set_tag(a.id, "team", "x")
    assert found("tags.team IS NULL") == {b.id} and found("tags.team IS NOT NULL") == {a.id}
    assert found("params.p IS NULL") == {a.id, b.id}


def test_search_client_runs(store: SqliteStore) -> None:
    eid = store.create_experiment("exp")
    runs = [store.create_client_run(eid, f"user{i % 2}", 1000.0, {"group": "g" + str(i % 3)}, f"run-{i}")
            for i in range(9)]
    for i, run in enumerate(runs[:6]):  # the last three have no loss
        store.log_client_batch(run.id, [MetricPoint("loss", i / 10, 0, 1.0)], [("alpha", str(i))])
    store.update_run(runs[0].id, status="FINISHED")
    store.delete_run(runs[8].id)
    proj = store.create_run(proj_run("exp"), pid=os.getpid())  # proj's own run shows through the protocol

    def ids(filter_string: str | None = None, **kwargs: object) -> list[str]:
        found, _ = store.search_client_runs([eid], filter_string, **kwargs)  # type: ignore[arg-type]
        return [r.id for r in found]

    assert ids(f"attributes.run_id IN ('{runs[1].id}', '{runs[2].id}')", order_by=["metrics.loss"]) == [
        runs[1].id, runs[2].id]
    assert ids("attributes.run_name = 'run-4'") == [runs[4].id]
    assert ids("tags.mlflow.runName = 'run-4'") == [runs[4].id]
    assert ids("attributes.status = 'FINISHED'") == [runs[0].id]
    assert ids("metrics.loss >= 0.3 and params.alpha != '5'", order_by=["metrics.loss DESC"]) == [
        runs[4].id, runs[3].id]
    assert ids("tags.group = 'g2' and attributes.user_id = 'user1'") == [runs[5].id]
    assert ids("params.alpha = '0.1'") == [proj.id]  # proj's typed params are searchable as MLflow's strings
    assert set(ids(f"attributes.artifact_uri LIKE 'mlflow-artifacts:/{eid}/%'")) == {
        r.id for r in runs[:8]} | {proj.id}
    ordered = ids(order_by=["metrics.loss DESC"])
    assert ordered[:6] == [r.id for r in reversed(runs[:6])]  # runs without the metric come last
    assert runs[8].id not in ordered and ids(view_type=DELETED_ONLY) == [runs[8].id]
    assert len(ids(view_type=ALL)) == 10 and ids(view_type=ACTIVE_ONLY) == ids()
    # pages over ties (same start time for the client runs): every run once, in one stable order
    seen: list[str] = []
    token = None
    while True:
        page, token = store.search_client_runs([eid], max_results=4, page_token=token, view_type=ALL)
        seen += [r.id for r in page]
        if token is None:
            break
    assert sorted(seen) == sorted([r.id for r in runs] + [proj.id]) and len(seen) == 10
    for order in (["metrics.loss DESC"], ["metrics.loss ASC", "params.alpha DESC"]):
        whole = ids(order_by=order, view_type=ALL)
        for size in (1, 2, 4, 6, 7):  # pages that end in, at and past the runs that have the metric
            paged: list[str] = []
            token = None
            while True:
                page, token = store.search_client_runs([eid], max_results=size, page_token=token, view_type=ALL,
                                                       order_by=order)
                paged += [r.id for r in page]
                if token is None:
                    break
            assert paged == whole, (order, size)
    assert ids(order_by=["metrics.loss ASC"])[:6] == [r.id for r in runs[:6]]
    full, _ = store.search_client_runs([eid], f"attributes.run_id = '{runs[1].id}'")
    assert full[0].tags == {"group": "g1", "mlflow.runName": "run-1"} and full[0].params[0].value == "1"
    assert full[0].metrics["loss"].value == 0.1
    assert store.search_client_runs([], None) == ([], None)
    for bad in ("metrics.loss ~ 1", "datasets.nope = 'x'", "datasets.name < 'x'", "metrics.loss IS NULL",
                "attributes.nope = 'x'"):
        with pytest.raises(UsageError):
            store.search_client_runs([eid], bad)
    with pytest.raises(UsageError, match="page token"):
        store.search_client_runs([eid], page_token="bad")


def test_logged_models(store: SqliteStore) -> None:
    eid = store.create_experiment("exp")
    run = store.create_client_run(eid, None, None, {}, None)
    model = store.create_logged_model(eid, "clf", run.id, {"t": "1"}, {"depth": "3"}, "sklearn")
    assert re.fullmatch(r"m-[0-9a-f]{32}", model.model_id) and model.status == "LOGGED_MODEL_PENDING"
    assert model.artifact_location == f"mlflow-artifacts:/{eid}/models/{model.model_id}/artifacts"
    assert (model.tags, model.params, model.source_run_id, model.model_type) == (
        {"t": "1"}, {"depth": "3"}, run.id, "sklearn")
    assert store.create_logged_model(eid).name  # a generated one
    with pytest.raises(UsageError, match="Invalid model name"):
        store.create_logged_model(eid, "a/b")
    ready = store.finalize_logged_model(model.model_id, MODEL_READY)
    assert ready.status == MODEL_READY and ready.last_updated_time >= model.last_updated_time
    store.set_logged_model_tags(model.model_id, {"t": "2", "u": "3"})
    store.delete_logged_model_tag(model.model_id, "u")
    with pytest.raises(NotFound, match=re.escape(f"No tag with key 'u' found for model with ID '{model.model_id}'.")):
        store.delete_logged_model_tag(model.model_id, "u")
    store.log_logged_model_params(model.model_id, {"lr": "0.1"})
    store.log_model_metrics(model.model_id, [ModelMetric("acc", 0.9, 1, 5.0, run.id, "train", "d1")])
    got = store.get_logged_model(model.model_id)
    assert got.tags == {"t": "2"} and got.params == {"depth": "3", "lr": "0.1"}
    assert got.metrics == [ModelMetric("acc", 0.9, 1, 5.0, run.id, "train", "d1")]
    other = store.create_logged_model(eid, "reg")
    store.log_model_metrics(other.model_id, [ModelMetric("acc", 0.95, 1, 5.0)])

    def names(filter_string: str | None = None, **kwargs: object) -> list[str]:
        found, _ = store.search_logged_models([eid], filter_string, **kwargs)  # type: ignore[arg-type]
        return [m.name for m in found]

    assert names("name = 'clf'") == ["clf"] and names("status = 'READY'") == ["clf"]
    assert names("params.depth = '3'") == ["clf"] and names("tags.t = '2' AND metrics.acc > 0.5") == ["clf"]
    assert names("metrics.acc > 0", order_by=[{"field_name": "metrics.acc", "ascending": False}]) == ["reg", "clf"]
    assert names(f"source_run_id = '{run.id}'") == ["clf"]
    page, token = store.search_logged_models([eid], max_results=2)
    rest, last = store.search_logged_models([eid], max_results=2, page_token=token)
    assert token and last is None and len(page) + len(rest) == 3
    with pytest.raises(UsageError, match="only `metrics.<name>` is allowed"):
        store.search_logged_models([eid], order_by=[{"field_name": "params.depth"}])
    store.delete_logged_model(other.model_id)
    with pytest.raises(NotFound, match=f"Logged model with ID '{other.model_id}' not found."):
        store.get_logged_model(other.model_id)
    assert store.get_logged_model(other.model_id, allow_deleted=True).lifecycle_stage == "deleted"
    assert "reg" not in names()


def test_concurrent_writers_lose_no_point(store: SqliteStore) -> None:
    run = store.create_client_run("0", None, None, {}, None)
    errors: list[BaseException] = []

    def writer(index: int) -> None:
        handle = store.reopen()
        try:
            for batch in range(20):
                handle.log_client_batch(run.id, [MetricPoint(f"w{index}", float(batch * 50 + i), batch * 50 + i,
                                                              float(batch)) for i in range(50)])
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            handle.close()

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    latest = store.get_run(run.id).metrics
    for i in range(8):
        history = store.metric_history(run.id, f"w{i}")
        assert [p.step for p in history] == list(range(1000))
        assert latest[f"w{i}"].step == 999


def test_proj_runs_keep_latest_metrics_and_deleted_runs_leave_proj_listings(store: SqliteStore) -> None:
    run = store.create_run(proj_run(), pid=os.getpid())
    other = store.create_run(proj_run(), pid=os.getpid())
    store.log_batch(run.id, [MetricPoint("loss", 0.5, 1, 1.0), MetricPoint("loss", 0.9, 0, 2.0)])  # proj's ingestion
    store.log_batch(other.id, [MetricPoint("loss", 0.1, 0, 1.0)])
    assert store.get_run(run.id).metrics["loss"].value == 0.5  # the highest step, whatever the arrival order
    found, _ = store.search_runs("metrics.loss > 0.2")
    assert [r.id for r in found] == [run.id]
    store.delete_run(run.id)
    assert [r.id for r in store.search_runs("metrics.loss > 0")[0]] == [other.id]
    assert [r.id for r in store.list_runs()] == [other.id] and store.get_run("last").id == other.id
    assert store.get_run(run.id[:8]).lifecycle_stage == "deleted"  # still readable by id, as MLflow's get_run
