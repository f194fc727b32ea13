"""A store written before MLflow's entities (the schema of commit bf22519) migrates in one transaction and
keeps every run; read-only handles read it as it is; ``sqlite:///`` tracking URIs name a store's directory."""
from __future__ import annotations

import math
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from proj.errors import UsageError
from proj.paths import store_root
from proj.tracking.sqlite import SqliteStore

# The layout as proj wrote it at bf22519 (frozen here: the test must keep building the old store).
OLD_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE experiments (id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL, created REAL NOT NULL);
CREATE TABLE runs (
  id TEXT PRIMARY KEY, experiment_id INTEGER NOT NULL REFERENCES experiments(id), name TEXT,
  status TEXT NOT NULL, failure_phase TEXT, failure_reason TEXT, exit_code INTEGER,
  start_time REAL NOT NULL, end_time REAL, user TEXT, host TEXT, pid INTEGER, pid_start TEXT,
  source_json TEXT NOT NULL, source_commit TEXT, project_name TEXT, entry_point TEXT, command TEXT,
  env_json TEXT NOT NULL DEFAULT '{}', parent_run_id TEXT, ingest_offset INTEGER NOT NULL DEFAULT 0,
  child_pid INTEGER, child_start TEXT, inputs_json TEXT NOT NULL DEFAULT '{}', reproduces_run_id TEXT,
  mlflow_run_id TEXT, request_json TEXT);
CREATE INDEX runs_by_time ON runs(start_time DESC);
CREATE TABLE params (run_id TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
  typed_json TEXT NOT NULL, type TEXT NOT NULL, source TEXT NOT NULL, PRIMARY KEY (run_id, key));
CREATE TABLE tags (run_id TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (run_id, key));
CREATE TABLE metrics (run_id TEXT NOT NULL, key TEXT NOT NULL, value REAL, step INTEGER NOT NULL,
  timestamp REAL NOT NULL);
CREATE TABLE locks (run_id TEXT PRIMARY KEY, format TEXT NOT NULL, sha256 TEXT NOT NULL, text TEXT NOT NULL);
INSERT INTO meta VALUES ('schema_version', '1'), ('schema_revision', '0123456789abcdef');
INSERT INTO experiments VALUES (1, 'Default', 10.0), (2, 'other', 20.0);
INSERT INTO runs (id, experiment_id, name, status, start_time, end_time, user, host, source_json, entry_point, command)
  VALUES ('aa00000000000000000000000000000a', 1, 'first', 'FINISHED', 100.0, 101.0, 'u', 'h', '{}', 'main', 'x'),
         ('bb00000000000000000000000000000b', 2, 'second', 'FAILED', 200.0, 201.0, 'u', 'h', '{}', 'main', 'x');
INSERT INTO params VALUES ('aa00000000000000000000000000000a', 'alpha', '0.1', '0.1', 'float', 'user');
INSERT INTO tags VALUES ('bb00000000000000000000000000000b', 't', 'v');
INSERT INTO metrics VALUES ('aa00000000000000000000000000000a', 'loss', 0.9, 0, 1.0),
  ('aa00000000000000000000000000000a', 'loss', 0.2, 2, 3.0), ('aa00000000000000000000000000000a', 'loss', 0.5, 1, 9.0),
  ('bb00000000000000000000000000000b', 'gap', NULL, 0, 1.0);
"""
A, B = "aa00000000000000000000000000000a", "bb00000000000000000000000000000b"


def old_store(root: Path) -> Path:
    root.mkdir(parents=True)
    with closing(sqlite3.connect(root / "proj.db")) as db:
        db.executescript(OLD_SCHEMA)
    return root


def columns(root: Path, table: str) -> set[str]:
    with closing(sqlite3.connect(root / "proj.db")) as db:
        return {r[1] for r in db.execute(f"PRAGMA table_info({table})")}


def test_an_old_store_migrates_and_keeps_every_run(tmp_path: Path) -> None:
    root = old_store(tmp_path / "store")
    store = SqliteStore(root)
    default, other = store.get_experiment("0"), store.get_experiment_by_name("other")
    assert default.name == "Default" and default.creation_time == 10.0  # renumbered to MLflow's 0
    assert other is not None and other.id == "2" and other.last_update_time == 20.0
    first, second = store.get_run(A), store.get_run(B)
    assert (first.experiment_id, first.experiment, second.experiment_id) == ("0", "Default", "2")
    assert first.artifact_uri == f"mlflow-artifacts:/0/{A}/artifacts" and first.lifecycle_stage == "active"
    assert first.metrics["loss"].value == 0.2  # latest_metrics filled from the history: highest step wins
    assert math.isnan(second.metrics["gap"].value) and second.tags == {"t": "v"}
    assert [p.value for p in first.params] == ["0.1"]
    assert [r.id for r in store.list_runs()] == [B, A]
    found, _ = store.search_client_runs(["0", "2"], "metrics.loss < 0.3")
    assert [r.id for r in found] == [A]
    assert store.create_experiment("new") == "3"
    store.close()
    SqliteStore(root).close()  # opening again is a no-op: the revision matches


def test_a_failing_migration_leaves_the_old_store_as_it_was(tmp_path: Path) -> None:
    root = old_store(tmp_path / "store")
    with closing(sqlite3.connect(root / "proj.db")) as db:  # renumbering Default fails half way through
        db.execute("CREATE TRIGGER refuse BEFORE UPDATE OF id ON experiments BEGIN SELECT RAISE(ABORT, 'no'); END")
    with pytest.raises(sqlite3.Error, match="no"):
        SqliteStore(root)
    assert "lifecycle_stage" not in columns(root, "runs") and "lifecycle_stage" not in columns(root, "experiments")
    with closing(sqlite3.connect(root / "proj.db")) as db:
        assert db.execute("SELECT name FROM sqlite_master WHERE name = 'latest_metrics'").fetchone() is None
        assert db.execute("SELECT count(*) FROM runs").fetchone()[0] == 2


def test_a_read_only_handle_reads_an_old_store_without_migrating_it(tmp_path: Path) -> None:
    root = old_store(tmp_path / "store")
    store = SqliteStore(root, readonly=True)
    run = store.get_run(A)
    assert run.metrics["loss"].value == 0.2 and run.lifecycle_stage == "active" and run.datasets == []
    assert run.artifact_uri == f"mlflow-artifacts:/1/{A}/artifacts"  # ids as they are until a writer migrates
    found, _ = store.search_runs("metrics.loss > 0.1")
    assert [r.id for r in found] == [A]
    assert [e.name for e in store.search_experiments()[0]] == ["other", "Default"]
    store.close()
    assert "lifecycle_stage" not in columns(root, "runs")  # nothing was written


def test_sqlite_tracking_uris_name_the_store_directory(tmp_path: Path) -> None:
    assert store_root(f"sqlite:///{tmp_path}/s/proj.db") == tmp_path / "s"  # four slashes: absolute
    assert store_root("sqlite:///rel/proj.db", cwd=tmp_path) == tmp_path / "rel"  # three: relative
    assert store_root("sqlite:///proj.db", cwd=tmp_path) == tmp_path
    for bad in ("sqlite:///mlflow.db", f"sqlite:///{tmp_path}/other.db", "sqlite://", "sqlite:///"):
        with pytest.raises(UsageError, match=r"a sqlite URI names proj's store file, proj\.db") as err:
            store_root(bad, cwd=tmp_path)
        assert bad in str(err.value)
    with pytest.raises(UsageError, match="is not supported"):  # other schemes keep today's refusal
        store_root("postgresql://h/db", cwd=tmp_path)
