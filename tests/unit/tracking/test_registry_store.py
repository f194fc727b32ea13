"""The model registry in the real SQLite store: MLflow's semantics, messages and error codes for registered models,
versions, stages, aliases, tags and searches; proj's append-only history, protection and concurrent registration."""
from __future__ import annotations

import json
import multiprocessing
import re
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from helpers.stores import BACKENDS, make_store, psycopg_error, raw, read_only
from proj.errors import AlreadyExists, InvalidState, NotFound, UsageError
from proj.tracking.registry_records import RegistryEvent
from proj.tracking.sqlite import SqliteStore
from proj.tracking.sqlite_schema import REGISTRY_SCHEMA


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> SqliteStore:
    return make_store(request, tmp_path)  # type: ignore[return-value]


def versions_of(store: SqliteStore, name: str) -> list[int]:
    return sorted(v.version for v in store.search_model_versions(f"name = '{name}'")[0])


def kinds(events: list[RegistryEvent]) -> list[tuple[str, int | None, str | None, str | None, str | None]]:
    return [(e.kind, e.version, e.key, e.old, e.new) for e in events]


def test_registered_model_create_get_and_mlflows_errors(store: SqliteStore) -> None:
    made = store.create_registered_model("fraud", "first cut", {"team": "risk"}, user="ana")
    assert (made.name, made.description, made.tags, made.user_id) == ("fraud", "first cut", {"team": "risk"}, "ana")
    assert made.creation_time == made.last_updated_time and made.latest_versions == [] and made.aliases == {}
    assert store.get_registered_model("fraud") == made
    with pytest.raises(AlreadyExists, match=r"^Registered Model \(name=fraud\) already exists\.$") as dup:
        store.create_registered_model("fraud")
    assert dup.value.error_code == "RESOURCE_ALREADY_EXISTS"
    with pytest.raises(NotFound, match=r"^Registered Model with name=nope not found$") as missing:
        store.get_registered_model("nope")
    assert missing.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    for bad, message in (("", "Missing value for required parameter 'name'."),
                         ("a/b", "Invalid model name 'a/b'. Names cannot contain '/' or ':'."),
                         ("x:y", "Invalid model name 'x:y'. Names cannot contain '/' or ':'."),
                         ("..", "This name would resolve to '..'")):
        with pytest.raises(UsageError, match=re.escape(message)) as err:
            store.create_registered_model(bad)
        assert err.value.error_code == "INVALID_PARAMETER_VALUE"
    with pytest.raises(UsageError, match=re.escape("'key' exceeds the maximum length of 250 characters")):
        store.create_registered_model("other", tags={"k" * 251: "v"})
    with pytest.raises(UsageError, match=re.escape("Invalid value \"a\\\\b\" for parameter 'key'")):
        store.create_registered_model("other", tags={"a\\b": "v"})
    assert store.search_registered_models()[0] == [made]  # nothing of the refused ones was written


def test_versions_count_up_per_model_and_a_deleted_number_is_never_reused(store: SqliteStore) -> None:
    store.create_registered_model("a")
    store.create_registered_model("b")
    first = store.create_model_version("a", "runs:/r1/model", "r1", tags={"k": "v"}, description="d",
                                       storage_location="/store/registry/blobs/x", files_sha256="f" * 64)
    assert (first.version, first.current_stage, first.status, first.run_id, first.tags, first.description) == \
        (1, "None", "READY", "r1", {"k": "v"}, "d")
    assert (first.storage_location, first.files_sha256) == ("/store/registry/blobs/x", "f" * 64)
    assert store.create_model_version("a", "runs:/r2/model").version == 2
    assert store.create_model_version("b", "/some/dir").version == 1  # numbering is per model
    assert store.get_model_version("b", 1).storage_location == "/some/dir"  # no copy given: the source itself
    assert store.get_registered_model("a").last_updated_time == store.get_model_version("a", 2).creation_time
    store.delete_model_version("a", 2)
    with pytest.raises(NotFound, match=r"^Model Version \(name=a, version=2\) not found$"):
        store.get_model_version("a", 2)
    assert store.create_model_version("a", "runs:/r3/model").version == 3
    assert versions_of(store, "a") == [1, 3]
    assert store.get_model_version("a", "3").version == 3  # type: ignore[arg-type] # the protocol's strings too
    with pytest.raises(UsageError, match=re.escape("Parameter 'version' must be an integer, got 'one'.")):
        store.get_model_version("a", "one")  # type: ignore[arg-type]
    with pytest.raises(NotFound, match="Registered Model with name=nope not found"):
        store.create_model_version("nope", "runs:/r/model")
    with pytest.raises(UsageError, match="Missing value for required parameter 'source'"):
        store.create_model_version("a", "")


def _register(root: str, barrier: "multiprocessing.synchronize.Barrier", out: "multiprocessing.Queue[int]") -> None:
    store = SqliteStore(Path(root))  # each writer its own process and connection, as 8 server workers
    barrier.wait()
    out.put(store.create_model_version("shared", "runs:/r/model").version)


def test_eight_concurrent_writers_get_versions_1_to_8_without_gaps_or_duplicates(tmp_path: Path) -> None:
    root = tmp_path / "store"
    SqliteStore(root).create_registered_model("shared")
    ctx = multiprocessing.get_context("spawn")
    barrier, out = ctx.Barrier(8), ctx.Queue()
    writers = [ctx.Process(target=_register, args=(str(root), barrier, out)) for _ in range(8)]
    for w in writers:
        w.start()
    for w in writers:
        w.join(120)
        assert w.exitcode == 0
    got = sorted(out.get(timeout=10) for _ in range(8))
    assert got == list(range(1, 9))
    assert versions_of(SqliteStore(root), "shared") == list(range(1, 9))
    created = [e.version or 0 for e in SqliteStore(root).registry_events("shared") if e.kind == "version_created"]
    assert sorted(created) == list(range(1, 9))  # one event per version, none lost


def test_stages_transition_archive_existing_and_latest_versions(store: SqliteStore) -> None:
    store.create_registered_model("m")
    for _ in range(3):
        store.create_model_version("m", "runs:/r/model")
    assert store.transition_model_version_stage("m", 1, "production").current_stage == "Production"  # any case
    store.transition_model_version_stage("m", 2, "Production")
    moved = store.transition_model_version_stage("m", 3, "PRODUCTION", archive_existing=True, reason="v3 wins")
    assert moved.current_stage == "Production"
    assert [store.get_model_version("m", v).current_stage for v in (1, 2, 3)] == ["Archived", "Archived", "Production"]
    latest = store.get_latest_versions("m")
    assert [(v.version, v.current_stage) for v in latest] == [(2, "Archived"), (3, "Production")]
    assert [v.version for v in store.get_latest_versions("m", ["production"])] == [3]
    assert store.get_latest_versions("m", ["Staging"]) == []
    assert [v.version for v in store.get_registered_model("m").latest_versions] == [2, 3]
    with pytest.raises(UsageError, match=re.escape("Invalid Model Version stage: Live. Value must be one of None, "
                                                   "Staging, Production, Archived.")):
        store.transition_model_version_stage("m", 1, "Live")
    with pytest.raises(UsageError, match="cannot archive existing model versions because 'Archived' is not an "
                                         "Active stage"):
        store.transition_model_version_stage("m", 1, "Archived", archive_existing=True)
    with pytest.raises(UsageError, match="Invalid Model Version stage: Live"):
        store.get_latest_versions("m", ["Live"])
    stage_events = [(e.version, e.old, e.new, e.reason) for e in store.registry_events("m") if e.kind == "stage"]
    assert [(v, o, n) for v, o, n, _ in stage_events] == [(1, "None", "Production"), (2, "None", "Production"),
                                                          (1, "Production", "Archived"), (2, "Production", "Archived"),
                                                          (3, "None", "Production")]
    assert [r for *_, r in stage_events][2:] == ["v3 wins", "v3 wins", "v3 wins"]


def test_aliases_set_move_resolve_and_leave_with_their_version(store: SqliteStore) -> None:
    store.create_registered_model("m")
    for _ in range(3):
        store.create_model_version("m", "runs:/r/model")
    store.set_registered_model_alias("m", "champion", 1, user="ana")
    store.set_registered_model_alias("m", "champion", 1)  # already there: no event
    store.set_registered_model_alias("m", "challenger", 2)
    store.set_registered_model_alias("m", "champion", 2, user="bo", reason="better auc")  # moves it
    assert store.get_registered_model("m").aliases == {"challenger": 2, "champion": 2}
    assert store.get_model_version_by_alias("m", "champion").version == 2
    assert store.get_model_version("m", 2).aliases == ["challenger", "champion"]
    assert store.get_model_version("m", 1).aliases == []
    assert store.get_model_version_by_alias("m", "latest").version == 3 == \
        store.get_model_version_by_alias("m", "LATEST").version
    with pytest.raises(UsageError, match=r"^Registered model alias gone not found\.$") as err:
        store.get_model_version_by_alias("m", "gone")
    assert err.value.error_code == "INVALID_PARAMETER_VALUE"  # as MLflow's, not RESOURCE_DOES_NOT_EXIST
    with pytest.raises(NotFound, match=r"Model Version \(name=m, version=9\) not found"):
        store.set_registered_model_alias("m", "champion", 9)
    store.delete_model_version("m", 2)
    assert store.get_registered_model("m").aliases == {}
    store.delete_registered_model_alias("m", "never-set")  # MLflow: not an error, and nothing recorded
    alias_events = [(e.kind, e.key, e.old, e.new, e.user, e.reason) for e in store.registry_events("m")
                    if e.kind.startswith("alias")]
    assert alias_events == [("alias_set", "champion", None, "1", "ana", None),
                            ("alias_set", "challenger", None, "2", alias_events[1][4], None),
                            ("alias_set", "champion", "1", "2", "bo", "better auc"),
                            ("alias_deleted", "challenger", "2", None, alias_events[3][4], None),
                            ("alias_deleted", "champion", "2", None, alias_events[4][4], None)]
    assert all(e[4] for e in alias_events)  # who: the caller's user, else the account proj runs as
    for bad, message in (("latest", "'latest' alias name (case insensitive) is reserved."),
                         ("V12", "Version alias name 'V12' is reserved."),
                         ("no way", "Invalid alias name: 'no way'. Names may only contain alphanumerics"),
                         ("", "Registered model alias name cannot be empty."),
                         ("a" * 256, "'Registered model alias name' exceeds the maximum length of 255")):
        with pytest.raises(UsageError, match=re.escape(message)):
            store.set_registered_model_alias("m", bad, 1)
    store.create_registered_model("empty")
    with pytest.raises(NotFound, match=r"^Latest version not found for model empty\.$"):
        store.get_model_version_by_alias("empty", "latest")


def test_tags_descriptions_and_their_events(store: SqliteStore) -> None:
    store.create_registered_model("m")
    store.create_model_version("m", "runs:/r/model")
    store.set_registered_model_tag("m", "team", "risk")
    store.set_registered_model_tag("m", "team", "risk")  # same value: no event
    store.set_registered_model_tag("m", "team", "fraud")
    store.delete_registered_model_tag("m", "team")
    store.delete_registered_model_tag("m", "team")  # gone already: MLflow ignores it
    store.set_model_version_tag("m", 1, "validated", "yes")
    store.delete_model_version_tag("m", 1, "missing")
    assert store.get_model_version("m", 1).tags == {"validated": "yes"}
    assert store.get_registered_model("m").tags == {}
    store.update_registered_model("m", "about m")
    store.update_model_version("m", 1, "about v1")
    assert store.get_registered_model("m").description == "about m"
    assert store.get_model_version("m", 1).description == "about v1"
    with pytest.raises(UsageError, match="Tag value cannot be None"):
        store.set_model_version_tag("m", 1, "k", None)  # type: ignore[arg-type]
    with pytest.raises(NotFound, match=r"Model Version \(name=m, version=5\) not found"):
        store.set_model_version_tag("m", 5, "k", "v")
    assert kinds(store.registry_events("m"))[2:] == [
        ("tag_set", None, "team", None, "risk"), ("tag_set", None, "team", "risk", "fraud"),
        ("tag_deleted", None, "team", "fraud", None), ("tag_set", 1, "validated", None, "yes"),
        ("description", None, None, None, "about m"), ("description", 1, None, None, "about v1")]


def test_rename_moves_versions_aliases_and_history_along(store: SqliteStore) -> None:
    store.create_registered_model("old")
    store.create_model_version("old", "runs:/r/model")
    store.set_registered_model_alias("old", "champion", 1)
    store.create_registered_model("taken")
    with pytest.raises(AlreadyExists, match=r"^Registered Model \(name=taken\) already exists\.$"):
        store.rename_registered_model("old", "taken")
    with pytest.raises(UsageError, match="Missing value for required parameter 'new_name'"):
        store.rename_registered_model("old", "")
    before = store.registry_events("old")[-1].time
    time.sleep(0.01)  # distinct event times (not asserted): `until` below falls between the two
    renamed = store.rename_registered_model("old", "new", reason="naming scheme")
    assert renamed.name == "new" and renamed.aliases == {"champion": 1}
    assert store.get_model_version_by_alias("new", "champion").name == "new"
    with pytest.raises(NotFound, match="Registered Model with name=old not found"):
        store.get_registered_model("old")
    history = store.registry_events("new")
    assert [e.kind for e in history] == ["model_created", "version_created", "alias_set", "renamed"]
    assert [e.model for e in history] == ["old", "old", "old", "old"]  # the name at the time of each event
    assert (history[-1].old, history[-1].new, history[-1].reason) == ("old", "new", "naming scheme")
    assert [e.kind for e in store.registry_events("old", until=before)] == ["model_created", "version_created",
                                                                             "alias_set"]  # asked by the name it had
    assert store.create_model_version("new", "runs:/r/model").version == 2


def test_delete_model_keeps_its_history_and_a_new_model_of_that_name_starts_again(store: SqliteStore) -> None:
    store.create_registered_model("m", tags={"t": "1"})
    store.create_model_version("m", "runs:/r/model", tags={"k": "v"})
    store.set_registered_model_alias("m", "champion", 1)
    store.delete_registered_model("m", reason="retired")
    with pytest.raises(NotFound):
        store.get_registered_model("m")
    assert store.search_model_versions()[0] == []
    gone = store.registry_events("m")
    assert gone[-1].kind == "model_deleted" and gone[-1].reason == "retired"
    store.create_registered_model("m")
    assert store.create_model_version("m", "runs:/r2/model").version == 1  # as MLflow: the rows went with it
    assert store.get_registered_model("m").tags == {} and store.get_registered_model("m").aliases == {}
    assert [e.kind for e in store.registry_events("m")] == ["model_created", "version_created"]  # the new one's
    assert [e.kind for e in store.registry_events("m", until=gone[-1].time)][-1] == "model_deleted"
    with pytest.raises(NotFound, match="Registered Model with name=never not found"):
        store.registry_events("never")


def production_at(events: list[RegistryEvent]) -> list[int]:
    """Replay stage events: the versions in Production after them (what `proj models history --at` answers)."""
    stage: dict[int, str] = {}
    for e in events:
        if e.kind == "version_created" and e.version is not None:
            stage[e.version] = "None"
        elif e.kind == "stage" and e.version is not None and e.new is not None:
            stage[e.version] = e.new
        elif e.kind == "version_deleted" and e.version is not None:
            stage.pop(e.version, None)
        elif e.kind == "model_deleted":
            stage.clear()
    return sorted(v for v, s in stage.items() if s == "Production")


def test_history_answers_which_version_was_in_production_at_a_past_time(store: SqliteStore) -> None:
    store.create_registered_model("m")
    for _ in range(3):
        store.create_model_version("m", "runs:/r/model")
    marks: list[float] = []
    for version in (1, 2, 3):
        store.transition_model_version_stage("m", version, "Production", archive_existing=True)
        marks.append(store.registry_events("m")[-1].time)
        time.sleep(0.01)  # distinct event times (not asserted)
    store.delete_model_version("m", 3)
    assert [production_at(store.registry_events("m", until=t)) for t in marks] == [[1], [2], [3]]
    assert production_at(store.registry_events("m")) == []
    assert production_at(store.registry_events("m", until=marks[0] - 1)) == []  # before anything moved
    assert {e.version for e in store.registry_events("m", version=1)} == {1}


def test_protected_alias_and_stage_need_a_reason_and_nothing_changes_without_one(store: SqliteStore) -> None:
    store.create_registered_model("m")
    for _ in range(2):
        store.create_model_version("m", "runs:/r/model")
    store.set_registered_model_alias("m", "champion", 1)
    store.set_protected("m", "champion", True)
    store.set_protected("m", "production", True)  # a stage, in any case
    assert store.get_registered_model("m").protected == ["Production", "champion"]
    count = len(store.registry_events("m"))
    with pytest.raises(InvalidState, match=r"'champion' of registered model 'm' is protected; give a reason") as err:
        store.set_registered_model_alias("m", "champion", 2)
    assert err.value.error_code == "INVALID_PARAMETER_VALUE"
    for refused in (lambda: store.delete_registered_model_alias("m", "champion"),
                    lambda: store.transition_model_version_stage("m", 2, "Production"),
                    lambda: store.delete_model_version("m", 1),  # holds the protected alias
                    lambda: store.delete_registered_model("m"),
                    lambda: store.set_protected("m", "champion", False),
                    lambda: store.set_registered_model_alias("m", "champion", 2, reason="  ")):
        with pytest.raises(InvalidState, match="is protected"):
            refused()
    assert store.get_registered_model("m").aliases == {"champion": 1}
    assert store.get_model_version("m", 2).current_stage == "None"
    assert len(store.registry_events("m")) == count  # refused changes leave no event either
    store.set_registered_model_alias("m", "champion", 2, reason="A/B test won")
    store.transition_model_version_stage("m", 2, "Production", reason="ship it")
    store.set_registered_model_alias("m", "challenger", 1)  # not protected: no reason needed
    store.transition_model_version_stage("m", 1, "Staging")
    last = store.registry_events("m")
    assert [(e.kind, e.key, e.reason) for e in last[count:]] == [
        ("alias_set", "champion", "A/B test won"), ("stage", "Production", "ship it"),
        ("alias_set", "challenger", None), ("stage", "Staging", None)]
    store.set_protected("m", "champion", False, reason="policy change")
    assert store.get_registered_model("m").protected == ["Production"]
    assert [e.kind for e in store.registry_events("m") if e.kind.endswith("protected")] == \
        ["protected", "protected", "unprotected"]
    with pytest.raises(UsageError, match="Invalid alias or stage name to protect"):
        store.set_protected("m", "bad name", True)


def test_search_registered_models_filters_orders_and_pages_as_mlflow(store: SqliteStore) -> None:
    for name, team in (("Fraud-A", "risk"), ("fraud-b", "risk"), ("churn", "growth"), ("prompt-1", None)):
        store.create_registered_model(name, tags={"team": team} if team else None)
    store.set_registered_model_tag("prompt-1", "mlflow.prompt.is_prompt", "true")

    def names(filter_string: str | None = None, order_by: tuple[str, ...] = (), **kw: object) -> list[str]:
        return [m.name for m in store.search_registered_models(filter_string, order_by=order_by, **kw)[0]]  # type: ignore[arg-type]

    assert names() == ["Fraud-A", "churn", "fraud-b"]  # name ascending (byte order); prompts left out
    assert names("name LIKE 'fraud%'") == ["fraud-b"]  # LIKE is case-sensitive
    assert names("name ILIKE 'fraud%'") == ["Fraud-A", "fraud-b"]
    assert names("name = 'churn'") == ["churn"] == names('attribute.name = "churn"')
    assert names("name != 'churn' AND tags.team = 'risk'") == ["Fraud-A", "fraud-b"]
    assert names("name IN ('churn', 'fraud-b')") == ["churn", "fraud-b"]
    assert names("tags.`team` LIKE 'gr%'") == ["churn"]
    assert names("tags.`mlflow.prompt.is_prompt` = 'true'") == ["prompt-1"]
    assert names("tags.`mlflow.prompt.is_prompt` = 'false'") == ["Fraud-A", "churn", "fraud-b"]
    assert names("name = 'churn' AND") == ["churn"]  # MLflow's parser lets a trailing AND pass
    assert names(order_by=("name DESC",)) == ["fraud-b", "churn", "Fraud-A"]
    store.update_registered_model("churn", "touched last")
    assert names(order_by=("timestamp DESC",))[0] == "churn"
    assert names(order_by=("last_updated_timestamp ASC",))[-1] == "churn"
    first, token = store.search_registered_models(max_results=2)
    assert [m.name for m in first] == ["Fraud-A", "churn"] and token
    rest, end = store.search_registered_models(max_results=2, page_token=token)
    assert [m.name for m in rest] == ["fraud-b"] and end is None
    for bad, message in (
            ("version_number = 1", "Invalid attribute key 'version_number' specified. Valid keys are '{'name'}'"),
            ("params.a = '1'", "Invalid entity type 'params'. Valid entity types are ('attribute', 'tag', 'tags')"),
            ("name > 'a'", "Invalid comparator for attribute: >"),
            ("tags.team IN ('a')", "Expected a quoted string value for tag (e.g. 'my-value'). Got value ("),
            ("tags.team < 'a'", "Invalid comparator for tag: <"),
            ("name = 'a' OR name = 'b'", "Invalid clause(s) in filter string: OR"),
            ("name", "Invalid clause(s) in filter string: name"),
            ("tags.team = risk", "Parameter value is either not quoted or unidentified quote types used for string "
                                 "value risk. Use either single or double quotes."),
            ("name = 1", "Expected a quoted string value or a list of quoted string values for attributes. Got value 1")):
        with pytest.raises(UsageError, match=re.escape(message)):
            names(bad)
    with pytest.raises(UsageError, match=re.escape("Invalid order by key 'version_number' specified.")):
        names(order_by=("version_number",))
    with pytest.raises(UsageError, match=re.escape("`order_by` contains duplicate fields")):
        names(order_by=("timestamp", "last_updated_timestamp DESC"))
    with pytest.raises(UsageError, match=re.escape("Invalid ordering key in order_by clause 'name UP'.")):
        names(order_by=("name UP",))
    with pytest.raises(UsageError, match="It must be at most 1000, but got value 1001"):
        store.search_registered_models(max_results=1001)


def test_search_model_versions_filters_orders_and_pages_as_mlflow(store: SqliteStore) -> None:
    store.create_registered_model("a")
    store.create_registered_model("b")
    store.create_model_version("a", "runs:/r1/model", "r1", tags={"ok": "yes"})
    store.create_model_version("a", "/local/dir", "r2")
    store.create_model_version("b", "runs:/r1/other", "r1")

    def found(filter_string: str | None = None, order_by: tuple[str, ...] = ()) -> list[tuple[str, int]]:
        return [(v.name, v.version) for v in store.search_model_versions(filter_string, order_by=order_by)[0]]

    assert found() == [("b", 1), ("a", 2), ("a", 1)]  # MLflow's default: last updated first
    assert found("name = 'a'", ("version_number ASC",)) == [("a", 1), ("a", 2)]
    assert found("run_id = 'r1'") == [("b", 1), ("a", 1)]
    assert found("run_id IN ('r2', 'zz')") == [("a", 2)]
    assert found("name = 'a' AND version_number > 1") == [("a", 2)]
    assert found("version_number = '2'") == [("a", 2)]  # MLflow takes the number's text too
    assert found("source_path LIKE 'runs:/r1/%'", ("name ASC", "version_number DESC")) == [("a", 1), ("b", 1)]
    assert found("tags.ok = 'yes'") == [("a", 1)]
    assert found("name IN ('a', 'b') AND run_id != 'r1'") == [("a", 2)]
    assert found(order_by=("attribute.creation_timestamp ASC",)) == [("a", 1), ("a", 2), ("b", 1)]
    store.update_model_version("a", 1, "touched")
    assert found()[0] == ("a", 1)
    page, token = store.search_model_versions(max_results=2)
    assert len(page) == 2 and token and len(store.search_model_versions(max_results=2, page_token=token)[0]) == 1
    store.delete_model_version("a", 2)
    assert found("name = 'a'") == [("a", 1)]  # a deleted version is not found
    for bad, message in (
            ("version_number = 1.5", "Invalid value for numeric attribute 'version_number': 1.5"),
            ("version_number IN ('1')", "Only ['name', 'run_id'] attributes support comparison with a list"),
            ("version_number LIKE '1'", "Invalid comparator for attribute version_number: LIKE"),
            ("source_path IN ('x')", "Only ['name', 'run_id'] attributes support comparison with a list"),
            ("run_id > 'a'", "Invalid comparator for attribute: >"),
            ("name <> 'a'", "Invalid comparator for attribute: <>"),
            ("version_number == 1", "Invalid comparator for attribute version_number: =="),
            ("stage = 'None'", "Invalid attribute key 'stage' specified."),
            ("version_number = 'x'", "Invalid value for numeric attribute 'version_number': 'x'")):
        with pytest.raises(UsageError, match=re.escape(message)):
            found(bad)
    with pytest.raises(UsageError, match=re.escape("Invalid attribute key 'run_id' specified. Valid keys are")):
        found(order_by=("run_id",))
    with pytest.raises(UsageError, match="It must be a positive integer"):
        store.search_model_versions(max_results=0)


def test_a_logged_model_source_resolves_to_its_artifacts_and_its_run(store: SqliteStore) -> None:
    experiment = store.create_experiment("e")
    logged = store.create_logged_model(experiment, "clf", source_run_id="run-1")
    store.create_registered_model("m")
    version = store.create_model_version("m", f"models:/{logged.model_id}")
    assert (version.storage_location, version.run_id, version.model_id) == \
        (logged.artifact_location, "run-1", logged.model_id)
    again = store.create_model_version("m", "models:/m/1")  # another version's files
    assert again.storage_location == logged.artifact_location
    with pytest.raises(NotFound, match=r"Unable to fetch model from model URI source artifact location "
                                       r"'models:/m-0+'.*not found"):
        store.create_model_version("m", "models:/m-" + "0" * 32)
    assert versions_of(store, "m") == [1, 2]


def test_a_change_and_its_event_commit_or_roll_back_together(store: SqliteStore, tmp_path: Path) -> None:
    store.create_registered_model("m")
    store.create_model_version("m", "runs:/r/model")
    count = len(store.registry_events("m"))
    with pytest.raises(RuntimeError, match="caller failed"):
        with store.transaction():  # as proj.registry checks and changes in one transaction
            store.set_registered_model_alias("m", "champion", 1)
            store.transition_model_version_stage("m", 1, "Staging")
            raise RuntimeError("caller failed")
    assert store.get_registered_model("m").aliases == {} and store.get_model_version("m", 1).current_stage == "None"
    assert len(store.registry_events("m")) == count
    reader = read_only(store)  # reading commands: history from a read-only handle
    assert [e.kind for e in reader.registry_events("m")] == ["model_created", "version_created"]
    assert [e.model for e in reader.registry_events()] == ["m", "m"]
    reader.close()


def test_events_are_append_only_in_the_database(store: SqliteStore, tmp_path: Path) -> None:
    store.create_registered_model("m")
    for statement in ("UPDATE registry_events SET kind = 'x'", "DELETE FROM registry_events"):
        with pytest.raises((sqlite3.IntegrityError, psycopg_error()), match="registry events are append-only"):
            raw(store, statement)
    assert [e.kind for e in store.registry_events("m")] == ["model_created"]


def test_an_older_store_reads_as_an_empty_registry_then_gains_its_tables(tmp_path: Path) -> None:
    root = tmp_path / "store"
    SqliteStore(root).close()
    db = sqlite3.connect(root / "proj.db")
    tables = [s.split("(")[0].split()[-1] for s in REGISTRY_SCHEMA.split(";") if "CREATE TABLE" in s]
    for name in ("registry_events_no_update", "registry_events_no_delete"):
        db.execute(f"DROP TRIGGER {name}")
    for table in tables:
        db.execute(f"DROP TABLE {table}")
    db.execute("UPDATE meta SET value = 'older' WHERE key = 'schema_revision'")
    db.commit()
    db.close()
    readonly = SqliteStore(root, readonly=True)
    assert readonly.search_registered_models() == ([], None) and readonly.search_model_versions() == ([], None)
    readonly.close()
    assert not {r[0] for r in sqlite3.connect(root / "proj.db").execute("SELECT name FROM sqlite_master")} & set(tables)
    migrated = SqliteStore(root)
    migrated.create_registered_model("m")
    assert migrated.create_model_version("m", "runs:/r/model").version == 1
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        sqlite3.connect(root / "proj.db").execute("DELETE FROM registry_events")


# ---- the same calls through MLflow's own SQL registry store (the pinned MLflow, in its side virtualenv) ----

_SETUP: list[tuple[Any, ...]] = [("create", "Fraud-A", {"team": "risk"}), ("create", "fraud-b", {"team": "risk"}),
          ("create", "churn", {"team": "growth"}), ("create", "prompt-1", {"mlflow.prompt.is_prompt": "true"}),
          ("version", "Fraud-A", "runs:/r1/model", "r1", {"ok": "yes"}), ("version", "Fraud-A", "/local/dir", "r2", {}),
          ("version", "churn", "runs:/r1/other", "r1", {}), ("version", "Fraud-A", "runs:/r3/model", "r3", {}),
          ("stage", "Fraud-A", 2, "Production", False), ("stage", "Fraud-A", 1, "staging", False),
          ("stage", "Fraud-A", 3, "Production", True), ("alias", "Fraud-A", "champion", 3),
          ("alias", "Fraud-A", "champion", 1), ("delete_version", "churn", 1)]
_CALLS: list[list[Any]] = [
    *[["models", f, [], 100] for f in (
        None, "name LIKE 'fraud%'", "name ILIKE 'fraud%'", "name = 'churn'", 'attribute.name = "churn"',
        "name != 'churn' AND tags.team = 'risk'", "name IN ('churn', 'fraud-b')", "name NOT IN ('churn')",
        "tags.`team` LIKE 'gr%'", "tags.`mlflow.prompt.is_prompt` = 'true'", "tags.`mlflow.prompt.is_prompt` = 'false'",
        "tags.team != 'risk'", "version_number = 1", "params.a = '1'", "name > 'a'", "tags.team IN ('a')",
        "tags.team < 'a'", "name = 'a' OR name = 'b'", "name = 1", "name = 'churn' and", "name", "tags.team = risk")],
    *[["models", None, o, 100] for o in (["name DESC"], ["timestamp DESC"], ["last_updated_timestamp"],
                                         ["version_number"], ["name UP"], ["tags.x"], ["`name` DESC"])],
    ["models", None, [], 2], ["models", None, [], 1001],
    *[["versions", f, []] for f in (
        None, "name = 'Fraud-A'", "run_id = 'r1'", "run_id IN ('r2', 'zz')", "name = 'Fraud-A' AND version_number > 1",
        "version_number = '2'", "source_path LIKE 'runs:/r1/%'", "tags.ok = 'yes'", "version_number = 1.5",
        "version_number IN ('1')", "version_number LIKE '1'", "source_path IN ('x')", "run_id > 'a'", "stage = 'x'",
        "version_number = 'x'", "version_number >= 2", "source_path = 1", "creation_timestamp > 1", "name <> 'x'",
        "tags.ok <> 'x'", "version_number == 1", "name not in ('churn')", "name ilike 'fraud-a'")],
    *[["versions", None, o] for o in (["version_number ASC"], ["attribute.creation_timestamp ASC"], ["run_id"],
                                      ["name ASC", "version_number DESC"])],
    ["latest", "Fraud-A", []], ["latest", "Fraud-A", ["production", "Staging"]], ["latest", "Fraud-A", ["Live"]],
    ["model", "Fraud-A"], ["model", "nope"], ["version", "Fraud-A", 9], ["version", "churn", 1],
    ["version", "Fraud-A", "one"], ["by_alias", "Fraud-A", "champion"], ["by_alias", "Fraud-A", "latest"],
    ["by_alias", "Fraud-A", "gone"], ["set_alias", "Fraud-A", "v1", 1], ["set_alias", "Fraud-A", "latest", 1],
    ["set_alias", "Fraud-A", "bad name", 1], ["stage", "Fraud-A", 1, "Live", False], ["create", "churn"],
    ["create", "a/b"], ["create", ".."], ["create", ""], ["rename", "fraud-b", ""],
]
# Left out where proj answers on purpose otherwise: orders MLflow refuses but proj offers (a registered model's
# creation_timestamp, attribute.name); MLflow's INTERNAL_ERROR (HTTP 500) for request errors (archive_existing_versions
# into a stage that is not active, duplicate order_by fields), INVALID_PARAMETER_VALUE in proj; a rename onto a taken
# name, where MLflow appends SQLAlchemy's whole IntegrityError to the sentence proj ends with.
_MLFLOW_SCRIPT = r'''
import json, logging, os, tempfile
logging.disable(logging.CRITICAL)
from mlflow.entities.model_registry import ModelVersionTag, RegisteredModelTag
from mlflow.exceptions import MlflowException
from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore
s = SqlAlchemyStore(os.environ["MLFLOW_TRACKING_URI"])
setup, calls = json.loads(os.environ["SETUP"]), json.loads(os.environ["CALLS"])
def version(v):
    return {"name": v.name, "version": int(v.version), "stage": v.current_stage, "source": v.source, "run_id": v.run_id,
            "tags": dict(v.tags), "aliases": sorted(v.aliases)}
for op, *a in setup:
    if op == "create": s.create_registered_model(a[0], [RegisteredModelTag(k, x) for k, x in a[1].items()])
    elif op == "version": s.create_model_version(a[0], a[1], a[2], [ModelVersionTag(k, x) for k, x in a[3].items()])
    elif op == "stage": s.transition_model_version_stage(*a)
    elif op == "alias": s.set_registered_model_alias(*a)
    elif op == "delete_version": s.delete_model_version(*a)
out = []
for op, *a in calls:
    try:
        if op == "models":
            page = s.search_registered_models(a[0], a[2], a[1] or None)
            got = [[m.name, sorted([k, int(x)] for k, x in m.aliases.items()), dict(m._tags),
                    [[int(v.version), v.current_stage] for v in m.latest_versions]] for m in page] + [bool(page.token)]
        elif op == "versions":
            got = [[v.name, int(v.version), v.current_stage] for v in s.search_model_versions(a[0], 1000, a[1] or None)]
        elif op == "latest":
            got = [version(v) for v in s.get_latest_versions(a[0], a[1] or None)]
        elif op == "model":
            m = s.get_registered_model(a[0])
            got = [m.name, dict(m._tags), [[int(v.version), v.current_stage] for v in m.latest_versions]]
        elif op == "version": got = version(s.get_model_version(a[0], a[1]))
        elif op == "by_alias": got = version(s.get_model_version_by_alias(a[0], a[1]))
        elif op == "set_alias": got = s.set_registered_model_alias(*a)
        elif op == "stage": got = version(s.transition_model_version_stage(*a))
        elif op == "create": got = s.create_registered_model(a[0]).name
        elif op == "rename": got = s.rename_registered_model(*a).name
        out.append(["ok", got])
    except MlflowException as e:
        out.append(["err", e.error_code, e.message])
print(json.dumps(out))
'''


def _proj_answers(store: SqliteStore) -> list[list[Any]]:
    from proj.errors import ProjError

    def version(v: Any) -> dict[str, Any]:
        return {"name": v.name, "version": v.version, "stage": v.current_stage, "source": v.source,
                "run_id": v.run_id, "tags": v.tags, "aliases": sorted(v.aliases)}

    for op, *a in _SETUP:
        if op == "create":
            store.create_registered_model(a[0], tags=a[1])
        elif op == "version":
            store.create_model_version(a[0], a[1], a[2], tags=a[3])
        elif op == "stage":
            store.transition_model_version_stage(*a)
        elif op == "alias":
            store.set_registered_model_alias(*a)
        elif op == "delete_version":
            store.delete_model_version(*a)
    out: list[list[Any]] = []
    for op, *a in _CALLS:
        try:
            got: Any
            if op == "models":
                models, token = store.search_registered_models(a[0], a[2], a[1])
                got = [[m.name, sorted([k, v] for k, v in m.aliases.items()), m.tags,
                        [[v.version, v.current_stage] for v in m.latest_versions]] for m in models] + [bool(token)]
            elif op == "versions":
                got = [[v.name, v.version, v.current_stage] for v in
                       store.search_model_versions(a[0], 1000, a[1])[0]]
            elif op == "latest":
                got = [version(v) for v in store.get_latest_versions(a[0], a[1])]
            elif op == "model":
                m = store.get_registered_model(a[0])
                got = [m.name, m.tags, [[v.version, v.current_stage] for v in m.latest_versions]]
            elif op == "version":
                got = version(store.get_model_version(a[0], a[1]))
            elif op == "by_alias":
                got = version(store.get_model_version_by_alias(a[0], a[1]))
            elif op == "set_alias":
                store.set_registered_model_alias(*a)
                got = None
            elif op == "stage":
                got = version(store.transition_model_version_stage(*a))
            elif op == "create":
                got = store.create_registered_model(a[0]).name
            else:
                got = store.rename_registered_model(*a).name
            out.append(["ok", got])
        except ProjError as exc:
            out.append(["err", exc.error_code, exc.message])
    return out


def _sets_sorted(answer: list[Any]) -> Any:
    """MLflow prints Python sets in hash order: compare their items sorted."""
    if answer[0] != "err":
        return json.loads(json.dumps(answer))
    message = re.sub(r"\{('[^']*'(?:, '[^']*')*)\}", lambda m: "{" + ", ".join(sorted(m.group(1).split(", "))) + "}",
                     str(answer[2]))
    return [answer[0], answer[1], message]


@pytest.mark.mlflow
@pytest.mark.slow
def test_the_store_answers_as_mlflows_own_sql_registry_store(tmp_path: Path, shared_cache: Path) -> None:
    from helpers.servers import build_mlflow_venv, run_client

    venv = build_mlflow_venv(shared_cache)
    expected = run_client(venv, _MLFLOW_SCRIPT, f"sqlite:///{tmp_path}/mlflow.db", tmp_path,
                          env={"SETUP": json.dumps(_SETUP), "CALLS": json.dumps(_CALLS)})
    got = _proj_answers(SqliteStore(tmp_path / "store"))
    differences = [(call, _sets_sorted(want), _sets_sorted(have)) for call, want, have in zip(_CALLS, expected, got, strict=True)
                   if _sets_sorted(want) != _sets_sorted(have)]
    assert differences == [], "\n".join(f"{c}\n  mlflow: {w}\n  proj:   {h}" for c, w, h in differences)
