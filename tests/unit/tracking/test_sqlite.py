"""The SQLite run store through its interface: ids, prefixes, filters, versions, ingestion."""
from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest

from helpers.stores import BACKENDS, make_store
from proj.collect.metrics import ingest_metrics_file, metrics_path
from proj.errors import RunNotFound, StoreError
from proj.tracking.records import FAILED, FINISHED, NewRun, ParamRecord
from proj.tracking.sqlite import SqliteStore


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> SqliteStore:
    return make_store(request, tmp_path)  # type: ignore[return-value]


def new(experiment: str = "e", commit: str | None = None) -> NewRun:
    return NewRun(experiment, None, {"uri": "/p", "kind": "local", "commit": commit}, "p", "main", "python t.py",
                  [ParamRecord("alpha", "0.1", 0.1, "float", "user")], {"t": "1"}, "local, from test")


def test_create_get_and_finish(store: SqliteStore) -> None:
    run = store.create_run(new(), pid=os.getpid())  # a live owner: a dead one's run reads as FAILED
    assert run.status == "RUNNING" and run.params[0].typed == 0.1 and run.tags == {"t": "1"}
    assert (store.root / "runs" / run.id / "artifacts").is_dir()
    assert (store.root / ".gitignore").read_text().splitlines()[-1] == "*"  # never shows up in git status
    store.finish_run(run.id, FAILED, exit_code=3, phase="execution", reason="boom")
    store.finish_run(run.id, FINISHED)  # a final status is final: this is ignored
    again = store.get_run(run.id)
    assert (again.status, again.exit_code, again.failure_phase) == ("FAILED", 3, "execution")


def test_prefixes_resolve_or_say_why_not(store: SqliteStore) -> None:
    ids = [store.create_run(new(), 1).id for _ in range(40)]
    assert store.get_run(ids[0][:10]).id == ids[0]
    first_chars = [i[0] for i in ids]
    shared = next(c for c in first_chars if first_chars.count(c) > 1)
    with pytest.raises(RunNotFound, match="ambiguous"):
        store.get_run(shared)
    with pytest.raises(RunNotFound, match="not found"):
        store.get_run("zz")


def test_list_filters(store: SqliteStore) -> None:
    a = store.create_run(new("one", commit="abc123" + "0" * 34), 1)
    b = store.create_run(new("two"), 1)
    store.finish_run(b.id, FINISHED)
    assert [r.id for r in store.list_runs(experiment="one")] == [a.id]
    assert [r.id for r in store.list_runs(status="finished")] == [b.id]
    assert [r.id for r in store.list_runs(commit="abc1")] == [a.id]
    assert [r.id for r in store.list_runs()] == [b.id, a.id]  # newest first


def test_metrics_ingest_exactly_once(store: SqliteStore) -> None:
    run = store.create_run(new(), 1)
    path = metrics_path(store, run.id)
    with open(path, "w") as fh:
        for i in range(1000):
            fh.write(json.dumps({"key": "m", "value": i, "step": i}) + "\n")
        fh.write('{"key": "m", "value": 10')  # a line still being written
    ingest_metrics_file(store, run.id)
    ingest_metrics_file(store, run.id)
    assert len(store.metric_history(run.id, "m")) == 1000
    with open(path, "a") as fh:
        fh.write('00, "step": 1000}\n')
    ingest_metrics_file(store, run.id)
    history = store.metric_history(run.id, "m")
    assert len(history) == 1001 and history[-1].value == 1000 and store.get_run(run.id).metrics["m"].step == 1000


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    SqliteStore(tmp_path).close()
    db = sqlite3.connect(tmp_path / "proj.db")
    db.execute("UPDATE meta SET value = '999' WHERE key = 'schema_version'")
    db.commit()
    db.close()
    with pytest.raises(StoreError, match="schema version 999"):
        SqliteStore(tmp_path)


def test_a_corrupt_database_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "proj.db").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="is damaged and cannot be used .*file is not a database"):
        SqliteStore(tmp_path)


def test_an_older_store_is_upgraded_in_place(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path)
    run = store.create_run(new(), 1)
    store.close()
    db = sqlite3.connect(tmp_path / "proj.db")
    db.execute("ALTER TABLE runs DROP COLUMN inputs_json")  # as a store written before the column existed
    db.execute("UPDATE meta SET value = 'old' WHERE key = 'schema_revision'")
    db.commit()
    db.close()
    upgraded = SqliteStore(tmp_path)
    assert upgraded.get_run(run.id).inputs == {}
    assert upgraded.create_run(new(), 1).status == "RUNNING"


def test_out_of_range_lines_are_skipped_not_fatal(store: SqliteStore) -> None:
    run = store.create_run(new(), 1)
    lines = [{"key": "a", "value": 1}, {"key": "b", "value": 2, "step": 10**30},
             {"key": "t", "value": 2, "timestamp": "inf"}, {"key": "c", "value": 3}]
    metrics_path(store, run.id).write_text("".join(json.dumps(line) + "\n" for line in lines))
    assert ingest_metrics_file(store, run.id) == 2  # two bad lines, counted
    assert sorted(store.get_run(run.id).metrics) == ["a", "c"]
