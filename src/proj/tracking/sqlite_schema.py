"""The tables and columns of MLflow's entities in proj.db, and the one-time steps of migrating a store to them."""
from __future__ import annotations

import sqlite3

from proj.tracking.records import DEFAULT_EXPERIMENT

# The model registry (tracking.sqlite_registry). Models are keyed by a never-reused id, so a rename is one
# UPDATE and the events of a model follow it across renames; a deleted version keeps its row (its number is
# never reused); registry_events is append-only (see REGISTRY_TRIGGERS).
REGISTRY_SCHEMA = """
CREATE TABLE IF NOT EXISTS registered_models (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT UNIQUE NOT NULL,
  creation_time REAL NOT NULL, last_updated_time REAL NOT NULL, description TEXT, user_id TEXT);
CREATE TABLE IF NOT EXISTS registered_model_tags (model_id INTEGER NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
  PRIMARY KEY (model_id, key));
CREATE TABLE IF NOT EXISTS model_versions (model_id INTEGER NOT NULL, version INTEGER NOT NULL,
  creation_time REAL NOT NULL, last_updated_time REAL NOT NULL, source TEXT NOT NULL, run_id TEXT,
  logged_model_id TEXT, user_id TEXT, current_stage TEXT NOT NULL, description TEXT, status TEXT NOT NULL,
  status_message TEXT, run_link TEXT, storage_location TEXT, files_sha256 TEXT, deleted INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (model_id, version));
CREATE INDEX IF NOT EXISTS model_versions_by_run ON model_versions(run_id);
CREATE INDEX IF NOT EXISTS model_versions_by_stage ON model_versions(model_id, current_stage, version);
CREATE TABLE IF NOT EXISTS model_version_tags (model_id INTEGER NOT NULL, version INTEGER NOT NULL, key TEXT NOT NULL,
  value TEXT NOT NULL, PRIMARY KEY (model_id, version, key));
CREATE TABLE IF NOT EXISTS registered_model_aliases (model_id INTEGER NOT NULL, alias TEXT NOT NULL,
  version INTEGER NOT NULL, PRIMARY KEY (model_id, alias));
CREATE TABLE IF NOT EXISTS registry_protected (model_id INTEGER NOT NULL, key TEXT NOT NULL, PRIMARY KEY (model_id, key));
CREATE TABLE IF NOT EXISTS registry_events (id INTEGER PRIMARY KEY AUTOINCREMENT, time REAL NOT NULL, user TEXT,
  model_key INTEGER NOT NULL, model TEXT NOT NULL, version INTEGER, kind TEXT NOT NULL, key TEXT, old TEXT, new TEXT,
  reason TEXT);
CREATE INDEX IF NOT EXISTS registry_events_by_model ON registry_events(model_key, id);
CREATE INDEX IF NOT EXISTS registry_events_by_name ON registry_events(model);
"""
# Statements holding ";" inside, so run one by one (the migration splits the schemas on ";").
REGISTRY_TRIGGERS = (
    "CREATE TRIGGER IF NOT EXISTS registry_events_no_update BEFORE UPDATE ON registry_events"
    " BEGIN SELECT RAISE(ABORT, 'registry events are append-only'); END",
    "CREATE TRIGGER IF NOT EXISTS registry_events_no_delete BEFORE DELETE ON registry_events"
    " BEGIN SELECT RAISE(ABORT, 'registry events are append-only'); END",
)
# Tables MLflow's protocol needs besides proj's own (created by the same migration transaction).
ENTITY_SCHEMA = """
CREATE TABLE IF NOT EXISTS experiment_tags (experiment_id INTEGER NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
  PRIMARY KEY (experiment_id, key));
CREATE TABLE IF NOT EXISTS latest_metrics (run_id TEXT NOT NULL, key TEXT NOT NULL, value REAL, step INTEGER NOT NULL,
  timestamp REAL NOT NULL, PRIMARY KEY (run_id, key));
CREATE INDEX IF NOT EXISTS latest_metrics_by_key ON latest_metrics(key, value, run_id);
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
CREATE INDEX IF NOT EXISTS params_by_key ON params(key, value, run_id);
CREATE INDEX IF NOT EXISTS tags_by_key ON tags(key, value, run_id);
""" + REGISTRY_SCHEMA
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
                 "logged_model_params", "logged_model_metrics", "registered_models", "registered_model_tags",
                 "model_versions", "model_version_tags", "registered_model_aliases", "registry_protected",
                 "registry_events")
# The latest point per (run, key): highest step, then newest timestamp, then the last one inserted.
LATEST_FROM_HISTORY = """SELECT run_id, key, value, step, timestamp FROM (SELECT run_id, key, value, step, timestamp,
  ROW_NUMBER() OVER (PARTITION BY run_id, key ORDER BY step DESC, timestamp DESC, rowid DESC) AS n FROM metrics)
  WHERE n = 1"""


# The web UI's charts (tracking.sqlite_ui.ui_sampled): per (run, key), each run of BLOCK_POINTS consecutive points
# in insertion order summarised by its count, its extremes (the earliest point holding each, NaN left out) and its
# first and last point, kept by SqliteBase._insert_metrics in the points' transaction (schema step 3). A chart of
# 1,000,000 points reads ~1,000 of these rows instead of the points.
BLOCK_POINTS = 1024
BLOCKS_SCHEMA = """CREATE TABLE IF NOT EXISTS metric_blocks (run_id TEXT NOT NULL, key TEXT NOT NULL, block INTEGER NOT NULL,
  n INTEGER NOT NULL, min_value REAL, min_step INTEGER, min_ts REAL, max_value REAL, max_step INTEGER, max_ts REAL,
  first_step INTEGER NOT NULL, first_ts REAL NOT NULL, last_step INTEGER NOT NULL, last_ts REAL NOT NULL,
  PRIMARY KEY (run_id, key, block))"""
# Each (run, key)'s min and max beside its latest value (added columns, step 3): the runs table sorts by them
# walking these indexes, as it does by the latest value.
EXTREME_COLUMNS = (("latest_metrics", "min_value", "REAL"), ("latest_metrics", "max_value", "REAL"))
EXTREME_INDEXES = ("CREATE INDEX IF NOT EXISTS latest_metrics_by_min ON latest_metrics(key, min_value, run_id)",
                   "CREATE INDEX IF NOT EXISTS latest_metrics_by_max ON latest_metrics(key, max_value, run_id)")
# The one pass filling both from an existing history (SQLite and PostgreSQL alike; rowid is the insertion order).
_NUMBERED = ("SELECT run_id, key, value, step, timestamp, (row_number() OVER w - 1) / {size} AS block,"
             " row_number() OVER w AS i FROM metrics WINDOW w AS (PARTITION BY run_id, key ORDER BY rowid)")
BACKFILL_BLOCKS = (
    "INSERT INTO metric_blocks (run_id, key, block, n, min_value, min_step, min_ts, max_value, max_step, max_ts,"
    " first_step, first_ts, last_step, last_ts)"
    " SELECT run_id, key, block, count(*), min(value),"
    " CASE WHEN min(value) IS NULL THEN NULL ELSE min(lo_step) END, CASE WHEN min(value) IS NULL THEN NULL ELSE min(lo_ts) END,"
    " max(value),"
    " CASE WHEN max(value) IS NULL THEN NULL ELSE min(hi_step) END, CASE WHEN max(value) IS NULL THEN NULL ELSE min(hi_ts) END,"
    " min(f_step), min(f_ts), min(l_step), min(l_ts) FROM (SELECT run_id, key, block, value,"
    " first_value(step) OVER lo AS lo_step, first_value(timestamp) OVER lo AS lo_ts,"
    " first_value(step) OVER hi AS hi_step, first_value(timestamp) OVER hi AS hi_ts,"
    " first_value(step) OVER f AS f_step, first_value(timestamp) OVER f AS f_ts,"
    " first_value(step) OVER l AS l_step, first_value(timestamp) OVER l AS l_ts"
    f" FROM ({_NUMBERED.format(size=BLOCK_POINTS)}) p"
    " WINDOW lo AS (PARTITION BY run_id, key, block ORDER BY value IS NULL, value, i),"
    " hi AS (PARTITION BY run_id, key, block ORDER BY value IS NULL, value DESC, i),"
    " f AS (PARTITION BY run_id, key, block ORDER BY i), l AS (PARTITION BY run_id, key, block ORDER BY i DESC)) q"
    " GROUP BY run_id, key, block")
BACKFILL_EXTREMES = (
    "UPDATE latest_metrics SET"
    " min_value = (SELECT min(b.min_value) FROM metric_blocks b WHERE b.run_id = latest_metrics.run_id"
    " AND b.key = latest_metrics.key),"
    " max_value = (SELECT max(b.max_value) FROM metric_blocks b WHERE b.run_id = latest_metrics.run_id"
    " AND b.key = latest_metrics.key)")


def migrate_blocks(db: sqlite3.Connection, had_blocks: bool) -> None:
    """Schema step 3's data: blocks and extremes of the history a store holds (once: when the table is new)."""
    if not had_blocks:
        db.execute("DELETE FROM metric_blocks")
        db.execute(BACKFILL_BLOCKS)
        db.execute(BACKFILL_EXTREMES)
    for index in EXTREME_INDEXES:
        db.execute(index)


# The web UI's runs table (tracking.sqlite_ui): counting and paging an experiment's active (top-level) runs from
# the index alone (100,000 runs: 197 -> 33 ms under load). Created by migrate_entities, once lifecycle_stage exists.
UI_INDEXES = ("CREATE INDEX IF NOT EXISTS runs_for_ui ON runs(experiment_id, lifecycle_stage, start_time,"
              " parent_run_id, id)",)


def migrate_entities(db: sqlite3.Connection, had_latest: bool, now: float) -> None:
    """The one-time data steps, inside the migration's transaction: fill latest_metrics from the history of a
    store that had none, and give the Default experiment MLflow's id 0 (its runs follow)."""
    if not had_latest:
        db.execute(f"INSERT OR REPLACE INTO latest_metrics (run_id, key, value, step, timestamp) {LATEST_FROM_HISTORY}")
    db.execute("UPDATE experiments SET last_update_time = created WHERE last_update_time IS NULL")
    for trigger in REGISTRY_TRIGGERS:
        db.execute(trigger)
    for index in UI_INDEXES:
        db.execute(index)
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
