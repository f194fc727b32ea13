"""The tables and columns of MLflow's entities in proj.db, and the one-time steps of migrating a store to them."""
from __future__ import annotations

import sqlite3

from proj.tracking.records import DEFAULT_EXPERIMENT

# Tables MLflow's protocol needs besides proj's own (created by the same migration transaction).
ENTITY_SCHEMA = """
CREATE TABLE IF NOT EXISTS experiment_tags (experiment_id INTEGER NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
  PRIMARY KEY (experiment_id, key));
CREATE TABLE IF NOT EXISTS latest_metrics (run_id TEXT NOT NULL, key TEXT NOT NULL, value REAL, step INTEGER NOT NULL,
  timestamp REAL NOT NULL, PRIMARY KEY (run_id, key));
CREATE INDEX IF NOT EXISTS latest_metrics_by_key ON latest_metrics(key, value);
CREATE TABLE IF NOT EXISTS datasets (id INTEGER PRIMARY KEY, experiment_id INTEGER NOT NULL, name TEXT NOT NULL,
  digest TEXT NOT NULL, source_type TEXT NOT NULL, source TEXT NOT NULL, schema TEXT, profile TEXT,
  UNIQUE (experiment_id, name, digest));
CREATE TABLE IF NOT EXISTS run_inputs (run_id TEXT NOT NULL, dataset_id INTEGER NOT NULL, tags_json TEXT NOT NULL,
  PRIMARY KEY (run_id, dataset_id));
CREATE TABLE IF NOT EXISTS run_models (run_id TEXT NOT NULL, model_id TEXT NOT NULL, step INTEGER NOT NULL,
  direction TEXT NOT NULL, PRIMARY KEY (run_id, model_id, direction));
CREATE TABLE IF NOT EXISTS logged_models (model_id TEXT PRIMARY KEY, experiment_id INTEGER NOT NULL, name TEXT NOT NULL,
  artifact_location TEXT NOT NULL, creation_time REAL NOT NULL, last_updated_time REAL NOT NULL, status TEXT NOT NULL,
  status_message TEXT, model_type TEXT, source_run_id TEXT, lifecycle_stage TEXT NOT NULL DEFAULT 'active');
CREATE INDEX IF NOT EXISTS logged_models_by_experiment ON logged_models(experiment_id, creation_time);
CREATE TABLE IF NOT EXISTS logged_model_tags (model_id TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
  PRIMARY KEY (model_id, key));
CREATE TABLE IF NOT EXISTS logged_model_params (model_id TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
  PRIMARY KEY (model_id, key));
CREATE TABLE IF NOT EXISTS logged_model_metrics (model_id TEXT NOT NULL, key TEXT NOT NULL, value REAL,
  step INTEGER NOT NULL, timestamp REAL NOT NULL, run_id TEXT, dataset_name TEXT, dataset_digest TEXT);
CREATE INDEX IF NOT EXISTS logged_model_metrics_by_model ON logged_model_metrics(model_id, key);
CREATE INDEX IF NOT EXISTS runs_by_experiment ON runs(experiment_id, start_time);
CREATE INDEX IF NOT EXISTS metrics_by_time ON metrics(run_id, key, timestamp, step);
"""
# (table, column, declaration), appended to sqlite._ADDED_COLUMNS. NULL artifact locations mean the default
# (mlflow-artifacts:/<experiment id>, and <experiment location>/<run id>/artifacts for a run).
ENTITY_COLUMNS = (
    ("experiments", "lifecycle_stage", "TEXT NOT NULL DEFAULT 'active'"),
    ("experiments", "artifact_location", "TEXT"),
    ("experiments", "last_update_time", "REAL"),
    ("runs", "lifecycle_stage", "TEXT NOT NULL DEFAULT 'active'"),
    ("runs", "deleted_time", "REAL"),
    ("runs", "artifact_uri", "TEXT"),
)
# Tables a read-only handle of an older store gets as empty temporary stand-ins (latest_metrics is a view).
ENTITY_TABLES = ("experiment_tags", "datasets", "run_inputs", "run_models", "logged_models", "logged_model_tags",
                 "logged_model_params", "logged_model_metrics")
# The latest point per (run, key): highest step, then newest timestamp, then the last one inserted.
LATEST_FROM_HISTORY = """SELECT run_id, key, value, step, timestamp FROM (SELECT run_id, key, value, step, timestamp,
  ROW_NUMBER() OVER (PARTITION BY run_id, key ORDER BY step DESC, timestamp DESC, rowid DESC) AS n FROM metrics)
  WHERE n = 1"""


def migrate_entities(db: sqlite3.Connection, had_latest: bool, now: float) -> None:
    """The one-time data steps, inside the migration's transaction: fill latest_metrics from the history of a
    store that had none, and give the Default experiment MLflow's id 0 (its runs follow)."""
    if not had_latest:
        db.execute(f"INSERT OR REPLACE INTO latest_metrics {LATEST_FROM_HISTORY}")
    db.execute("UPDATE experiments SET last_update_time = created WHERE last_update_time IS NULL")
    default_experiment_id(db, now)


def default_experiment_id(db: sqlite3.Connection, now: float) -> None:
    """Make "Default" experiment 0, creating it if missing. Ids start at 1 (SQLite's rowid), so 0 is free
    unless a store was edited by hand; then that experiment moves to a fresh id first."""
    row = db.execute("SELECT id FROM experiments WHERE name = ?", (DEFAULT_EXPERIMENT,)).fetchone()
    if row is not None and row[0] == 0:
        return
    taken = db.execute("SELECT name FROM experiments WHERE id = 0").fetchone()
    if taken is not None:
        fresh = db.execute("SELECT max(id) + 1 FROM experiments").fetchone()[0]
        _renumber(db, 0, fresh)
    if row is None:
        db.execute("INSERT INTO experiments (id, name, created, last_update_time) "
                   "VALUES (0, ?, ?, ?)", (DEFAULT_EXPERIMENT, now, now))
    else:
        _renumber(db, row[0], 0)


def _renumber(db: sqlite3.Connection, old: int, new: int) -> None:
    db.execute("UPDATE experiments SET id = ? WHERE id = ?", (new, old))
    for table in ("runs", "experiment_tags", "datasets", "logged_models"):
        db.execute(f"UPDATE {table} SET experiment_id = ? WHERE experiment_id = ?", (new, old))
