"""The embedded SQLite run store: WAL, a busy timeout and short IMMEDIATE transactions, so many
concurrent runs can write into one store without losing anything."""
from __future__ import annotations

import getpass
import hashlib
import json
import os
import sqlite3
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator

from proj.errors import InvalidState, RunNotFound, StoreError, StoreMissing
from proj.execution.liveness import process_start_time
from proj.tracking import migrations
from proj.tracking.dbfile import DB_NAME, connect, guarded, translate, verify
from proj.tracking.records import (
    ACTIVE,
    DEFAULT_EXPERIMENT,
    RUNNING,
    SCHEMA_VERSION,
    ChildRun,
    MetricPoint,
    ModelRecord,
    NewRun,
    ParamRecord,
    RunRecord,
)
from proj.tracking.search import (
    check_max_results,
    compile_filter,
    page_offset,
    parse_filter,
    parse_order_by_list,
)
from proj.tracking.search import (
    page_token as next_page_token,
)
from proj.tracking.sqlite_base import RUN_COLUMNS, value_of
from proj.tracking.sqlite_experiments import SqliteExperiments
from proj.tracking.sqlite_models import SqliteModels
from proj.tracking.sqlite_registry import SqliteRegistry
from proj.tracking.sqlite_runs import SqliteClientRuns
from proj.tracking.sqlite_schema import (
    BLOCKS_SCHEMA,
    ENTITY_COLUMNS,
    ENTITY_SCHEMA,
    ENTITY_TABLES,
    EXTREME_COLUMNS,
    LATEST_FROM_HISTORY,
    UI_INDEXES,
    migrate_blocks,
    migrate_entities,
)
from proj.tracking.sqlite_ui import SqliteUi

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS experiments (id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
  id TEXT PRIMARY KEY, experiment_id INTEGER NOT NULL REFERENCES experiments(id), name TEXT,
  status TEXT NOT NULL, failure_phase TEXT, failure_reason TEXT, exit_code INTEGER,
  start_time REAL NOT NULL, end_time REAL, user TEXT, host TEXT, pid INTEGER, pid_start TEXT,
  source_json TEXT NOT NULL, source_commit TEXT, project_name TEXT, entry_point TEXT, command TEXT,
  env_json TEXT NOT NULL DEFAULT '{}', parent_run_id TEXT, ingest_offset INTEGER NOT NULL DEFAULT 0,
  child_pid INTEGER, child_start TEXT, inputs_json TEXT NOT NULL DEFAULT '{}', reproduces_run_id TEXT,
  mlflow_run_id TEXT);
CREATE INDEX IF NOT EXISTS runs_by_time ON runs(start_time DESC);
CREATE INDEX IF NOT EXISTS runs_by_parent ON runs(parent_run_id);
CREATE INDEX IF NOT EXISTS runs_by_status ON runs(status);
CREATE INDEX IF NOT EXISTS runs_by_commit ON runs(source_commit);
CREATE TABLE IF NOT EXISTS params (run_id TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
  typed_json TEXT NOT NULL, type TEXT NOT NULL, source TEXT NOT NULL, PRIMARY KEY (run_id, key));
CREATE TABLE IF NOT EXISTS tags (run_id TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (run_id, key));
CREATE TABLE IF NOT EXISTS metrics (run_id TEXT NOT NULL, key TEXT NOT NULL, value REAL, step INTEGER NOT NULL,
  timestamp REAL NOT NULL);
CREATE INDEX IF NOT EXISTS metrics_by_run ON metrics(run_id, key, step);
CREATE TABLE IF NOT EXISTS locks (run_id TEXT PRIMARY KEY, format TEXT NOT NULL, sha256 TEXT NOT NULL, text TEXT NOT NULL);
"""
# Columns added after a store may already exist: (table, column, declaration). The migration adds the
# missing ones; CREATE TABLE IF NOT EXISTS covers new tables.
_ADDED_COLUMNS = (
    ("runs", "child_pid", "INTEGER"),
    ("runs", "child_start", "TEXT"),
    ("runs", "inputs_json", "TEXT NOT NULL DEFAULT '{}'"),
    ("runs", "reproduces_run_id", "TEXT"),
    ("runs", "mlflow_run_id", "TEXT"),
    ("runs", "request_json", "TEXT"),  # the request `proj reproduce` replays: the run folder is the child's to write
    *ENTITY_COLUMNS,
    *EXTREME_COLUMNS,
)
# Run once, when the column is added: until child runs existed, parent_run_id meant "reproduces".
_BACKFILL = {("runs", "reproduces_run_id"): "UPDATE runs SET reproduces_run_id = parent_run_id, parent_run_id = NULL"
                                            " WHERE parent_run_id IS NOT NULL"}
_REVISION = hashlib.sha256((_SCHEMA + ENTITY_SCHEMA + repr(_ADDED_COLUMNS) + repr(UI_INDEXES)
                            + BLOCKS_SCHEMA).encode()).hexdigest()[:16]
# Added after schema version 1 shipped: created on first use, so older stores gain it too.
_MODELS_SCHEMA = """CREATE TABLE IF NOT EXISTS models (run_id TEXT NOT NULL, path TEXT NOT NULL, origin TEXT NOT NULL,
  valid INTEGER NOT NULL, reason TEXT, flavors_json TEXT NOT NULL, size INTEGER NOT NULL, files_json TEXT NOT NULL,
  mlmodel_json TEXT NOT NULL, env_source TEXT, created REAL NOT NULL, PRIMARY KEY (run_id, path))"""


def schema_steps(rows: dict[str, str]) -> int:
    """How many of migrations.STEPS a store has, from its ``meta`` rows named ``schema_%`` (none: a new store).
    A store of today's revision made before the steps were counted has them all; one of another revision
    counts as the step before today's at most (its revision says it lacks something)."""
    if not rows:
        return 0
    steps = int(rows.get(migrations.VERSION_KEY, 0))
    if rows.get("schema_revision") == _REVISION:
        return steps or migrations.LATEST
    return min(steps, migrations.LATEST - 1)


@guarded
class SqliteStore(SqliteExperiments, SqliteClientRuns, SqliteModels, SqliteRegistry, SqliteUi):
    def __init__(self, root: Path, *, readonly: bool = False, upgrade: bool = True) -> None:
        """``readonly``: never write, create or migrate anything (reading commands; a read-only or full disk).
        ``upgrade`` False (the server): an existing store of another schema is refused, not migrated."""
        self.root = root
        self.readonly = readonly
        self._upgrade = upgrade
        try:
            if not readonly:
                root.mkdir(parents=True, exist_ok=True)
                _ignore_in_git(root)
            self._db = connect(root / DB_NAME, readonly=readonly)
            self._migrate()
        except sqlite3.Error as exc:
            error = translate(exc, root / DB_NAME)
            if error is None:
                raise
            raise error from None
        except OSError as exc:
            raise StoreError(f"run store {root} cannot be created: {exc}") from None

    def reopen(self) -> "SqliteStore":
        return SqliteStore(self.root, readonly=self.readonly, upgrade=self._upgrade)

    def verify(self) -> None:
        verify(self.root / DB_NAME)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        try:
            with self._tx():
                yield
        except sqlite3.Error as exc:
            error = translate(exc, self.root / DB_NAME)
            if error is None:
                raise
            raise error from None

    def _migrate(self) -> None:
        """Create or upgrade the schema. The common case (up to date) is one SELECT, no write lock."""
        rows: dict[str, str] = {}
        try:
            rows = dict(self._db.execute("SELECT key, value FROM meta WHERE key LIKE 'schema_%'"))
        except sqlite3.OperationalError:
            pass  # a new store
        if int(rows.get("schema_version", 0)) > SCHEMA_VERSION:
            raise StoreError(f"run store {self.root} has schema version {rows['schema_version']}; "
                             f"this proj reads up to {SCHEMA_VERSION}: upgrade proj")
        if int(rows.get(migrations.VERSION_KEY, 0)) > migrations.LATEST:
            migrations.check_servable(str(self.root), int(rows[migrations.VERSION_KEY]), str(self.root))
        if rows.get("schema_revision") == _REVISION:
            return
        if rows and not self._upgrade and not self.readonly:  # the server never migrates under running clients
            migrations.check_servable(str(self.root), schema_steps(rows), str(self.root))
        if self.readonly:
            self._read_as_is()
            return
        with self._tx() as db:  # one transaction: concurrent first users migrate once
            had_latest = db.execute("SELECT 1 FROM sqlite_master WHERE name = 'latest_metrics'").fetchone() is not None
            had_blocks = db.execute("SELECT 1 FROM sqlite_master WHERE name = 'metric_blocks'").fetchone() is not None
            for statement in (_SCHEMA + ENTITY_SCHEMA + ";" + BLOCKS_SCHEMA).split(";"):
                if statement.strip():
                    db.execute(statement)
            for table, column, decl in _ADDED_COLUMNS:
                existing = {r[1] for r in db.execute(f"PRAGMA table_info({table})")}
                if column not in existing:
                    db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {decl}")
                    if (table, column) in _BACKFILL:
                        db.execute(_BACKFILL[table, column])
            migrate_entities(db, had_latest, time.time())
            migrate_blocks(db, had_blocks)  # schema step 3 (after latest_metrics has its min/max columns)
            db.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            db.execute("INSERT OR REPLACE INTO meta VALUES ('schema_revision', ?)", (_REVISION,))
            db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (migrations.VERSION_KEY, str(migrations.LATEST)))

    def _read_as_is(self) -> None:
        """Read a store whose schema is older without migrating it: temporary (in-memory) stand-ins give
        the queries the columns and tables a migration would add, with their defaults."""
        db = self._db
        tables = {r[0] for r in db.execute("SELECT name FROM main.sqlite_master WHERE type = 'table'")}
        if not {"runs", "experiments"} <= tables:
            raise StoreMissing(f"no runs recorded in {self.root} yet ({DB_NAME} holds no proj tables)")
        for name in ("runs", "experiments"):
            existing = {r[1] for r in db.execute(f"PRAGMA main.table_info({name})")}
            added = [f"{_default(decl)} AS {column}" for table, column, decl in _ADDED_COLUMNS
                     if table == name and column not in existing]
            if added:  # the temp schema is searched first, so `runs` below means this view
                db.execute(f"CREATE TEMP VIEW {name} AS SELECT *, {', '.join(added)} FROM main.{name}")
        if "latest_metrics" not in tables or "min_value" not in {r[1] for r in db.execute(
                "PRAGMA main.table_info(latest_metrics)")}:  # before step 3: the extremes read from the history
            source = f"({LATEST_FROM_HISTORY})" if "latest_metrics" not in tables else "main.latest_metrics"
            db.execute("CREATE TEMP VIEW latest_metrics AS SELECT l.run_id, l.key, l.value, l.step, l.timestamp,"
                       " (SELECT min(m.value) FROM metrics m WHERE m.run_id = l.run_id AND m.key = l.key) AS min_value,"
                       " (SELECT max(m.value) FROM metrics m WHERE m.run_id = l.run_id AND m.key = l.key) AS max_value"
                       f" FROM {source} l")
        if "metric_blocks" not in tables:  # no blocks: the UI samples the points themselves
            db.execute(BLOCKS_SCHEMA.replace("CREATE TABLE IF NOT EXISTS", "CREATE TEMP TABLE"))
        for statement in ENTITY_SCHEMA.split(";"):
            name = statement.split("(")[0].split()[-1] if "CREATE TABLE" in statement else ""
            if name in ENTITY_TABLES and name not in tables:  # nothing recorded in it yet: an empty stand-in
                db.execute(statement.replace("CREATE TABLE IF NOT EXISTS", "CREATE TEMP TABLE"))

    def _experiment_id(self, db: sqlite3.Connection, name: str) -> int:
        """The id of experiment ``name``, created when new; a deleted one is refused (MLflow's rule too)."""
        row = db.execute("SELECT id, lifecycle_stage FROM experiments WHERE name = ?", (name,)).fetchone()
        if row:
            if row[1] != ACTIVE:
                raise InvalidState(f"experiment {name!r} (id {row[0]}) is deleted: restore it (MLflow's "
                                   "restore_experiment) or run into another experiment")
            found: int = row[0]
            return found
        now = time.time()
        cursor = db.execute("INSERT INTO experiments (name, created, last_update_time) VALUES (?, ?, ?)",
                            (name, now, now))
        return int(cursor.lastrowid or 0)

    def create_run(self, new: NewRun, pid: int) -> RunRecord:
        run_id = os.urandom(16).hex()  # a uuid4-like id without importing uuid
        now = time.time()
        user, host = _user(), os.uname().nodename
        commit = new.source.get("commit")
        env = {"choice": new.env_choice, **({"backend": new.env_backend} if new.env_backend else {})}
        with self._tx() as db:
            exp = self._experiment_id(db, new.experiment or DEFAULT_EXPERIMENT)
            db.execute(
                "INSERT INTO runs (id, experiment_id, name, status, start_time, user, host, pid, pid_start, source_json,"
                " source_commit, project_name, entry_point, command, env_json, reproduces_run_id, inputs_json, request_json)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (run_id, exp, new.name, RUNNING, now, user, host, pid, process_start_time(pid),
                 json.dumps(new.source), commit, new.project_name, new.entry_point, new.command, json.dumps(env),
                 new.reproduces, json.dumps(new.inputs), new.request))
            self._insert_params(db, run_id, new.params)
            db.executemany("INSERT OR REPLACE INTO tags VALUES (?,?,?)", [(run_id, k, v) for k, v in new.tags.items()])
        for sub in ("artifacts", "logs"):
            (self.run_dir(run_id) / sub).mkdir(parents=True, exist_ok=True)
        return self.get_run(run_id)

    def record_child_run(self, child: ChildRun) -> RunRecord:
        """Create (or, ingested again, update) the child run of ``child.parent_run_id`` for one MLflow run.

        It shares the parent's experiment, source, entry point and environment: the same program made it.
        """
        with self._tx() as db:
            row = db.execute("SELECT id FROM runs WHERE parent_run_id=? AND mlflow_run_id=?",
                             (child.parent_run_id, child.mlflow_run_id)).fetchone()
            run_id = row[0] if row else os.urandom(16).hex()
            if row is not None:  # ingested again (a reaper after a runner died mid-ingest): points are re-added
                db.execute("DELETE FROM metrics WHERE run_id=?", (run_id,))
                db.execute("DELETE FROM latest_metrics WHERE run_id=?", (run_id,))
                db.execute("DELETE FROM metric_blocks WHERE run_id=?", (run_id,))
            else:
                db.execute(
                    "INSERT INTO runs (id, experiment_id, name, status, start_time, user, host, source_json,"
                    " source_commit, project_name, entry_point, command, env_json, parent_run_id, mlflow_run_id)"
                    " SELECT ?, experiment_id, ?, ?, ?, user, host, source_json, source_commit, project_name,"
                    " entry_point, command, env_json, id, ? FROM runs WHERE id=?",
                    (run_id, child.name, child.status, child.start_time, child.mlflow_run_id, child.parent_run_id))
            db.execute("UPDATE runs SET name=?, status=?, start_time=?, end_time=?, failure_phase=?, failure_reason=?"
                       " WHERE id=?", (child.name, child.status, child.start_time, child.end_time,
                                       "execution" if child.failure_reason else None, child.failure_reason, run_id))
        for sub in ("artifacts", "logs"):
            (self.run_dir(run_id) / sub).mkdir(parents=True, exist_ok=True)
        return self.get_run(run_id)

    def set_mlflow_run_id(self, run_id: str, mlflow_run_id: str) -> None:
        with self._tx() as db:
            db.execute("UPDATE runs SET mlflow_run_id=? WHERE id=?", (mlflow_run_id, run_id))

    def list_children(self, run_id: str) -> list[RunRecord]:
        """The direct child runs of ``run_id``, oldest first (the order the program opened them), with their
        latest metrics."""
        sql = (f"SELECT {RUN_COLUMNS} FROM runs r JOIN experiments e ON e.id = r.experiment_id"
               " WHERE r.parent_run_id = ? ORDER BY r.start_time, r.rowid")
        children = [self._record(row) for row in self._db.execute(sql, (run_id,))]
        metrics = self._latest_metrics([c.id for c in children]) if children else {}
        for child in children:
            child.metrics = metrics.get(child.id, {})
        return children

    def descendants(self, run_ids: list[str]) -> list[RunRecord]:
        """Every child run below ``run_ids`` (children, their children, ...), oldest first, in one query."""
        if not run_ids:
            return []
        found: list[RunRecord] = []
        for start in range(0, len(run_ids), 10000):  # well under SQLite's limit on bound parameters
            chunk = run_ids[start:start + 10000]
            sql = (f"WITH RECURSIVE tree(id) AS (SELECT id FROM runs WHERE parent_run_id IN ({','.join('?' * len(chunk))})"
                   " UNION SELECT r.id FROM runs r JOIN tree t ON r.parent_run_id = t.id)"
                   f" SELECT {RUN_COLUMNS} FROM runs r JOIN experiments e ON e.id = r.experiment_id"
                   " WHERE r.id IN (SELECT id FROM tree) ORDER BY r.start_time, r.rowid")
            found += [self._record(row) for row in self._db.execute(sql, chunk)]
        return found

    @staticmethod
    def _insert_params(db: sqlite3.Connection, run_id: str, params: Iterable[ParamRecord]) -> None:
        db.executemany(
            "INSERT INTO params VALUES (?,?,?,?,?,?) ON CONFLICT(run_id, key) DO NOTHING",
            [(run_id, p.key, p.value, json.dumps(p.typed), p.type, p.source) for p in params])

    def finish_run(self, run_id: str, status: str, *, exit_code: int | None = None,
                   phase: str | None = None, reason: str | None = None) -> None:
        with self._tx() as db:
            db.execute("UPDATE runs SET status=?, end_time=?, exit_code=?, failure_phase=?, failure_reason=?"
                       " WHERE id=? AND status=?", (status, time.time(), exit_code, phase, reason, run_id, RUNNING))

    def set_owner(self, run_id: str, pid: int) -> None:
        with self._tx() as db:
            db.execute("UPDATE runs SET pid=?, pid_start=? WHERE id=?", (pid, process_start_time(pid), run_id))

    def set_child(self, run_id: str, pid: int) -> None:
        """Remember the entry point's process group, so a reaper can stop it if this runner dies."""
        with self._tx() as db:
            db.execute("UPDATE runs SET child_pid=?, child_start=? WHERE id=?", (pid, process_start_time(pid), run_id))

    def set_env(self, run_id: str, env: dict[str, Any], lock_format: str, lock_text: str) -> None:
        import hashlib

        sha = hashlib.sha256(lock_text.encode()).hexdigest()
        with self._tx() as db:
            old = json.loads(db.execute("SELECT env_json FROM runs WHERE id=?", (run_id,)).fetchone()[0])
            db.execute("UPDATE runs SET env_json=? WHERE id=?", (json.dumps({**old, **env}), run_id))
            db.execute("INSERT OR REPLACE INTO locks VALUES (?,?,?,?)", (run_id, lock_format, sha, lock_text))

    def get_request(self, run_id: str) -> str | None:
        row = self._db.execute("SELECT request_json FROM runs WHERE id=?", (run_id,)).fetchone()
        return row[0] if row else None

    def get_lock(self, run_id: str) -> tuple[str, str] | None:
        row = self._db.execute("SELECT format, text FROM locks WHERE run_id=?", (run_id,)).fetchone()
        return (row[0], row[1]) if row else None

    def log_batch(self, run_id: str, metrics: Iterable[MetricPoint] = (), params: Iterable[ParamRecord] = (),
                  tags: dict[str, str] | None = None, offset: int | None = None) -> None:
        with self._tx() as db:
            self._insert_metrics(db, run_id, metrics)
            self._insert_params(db, run_id, params)
            if tags:
                db.executemany("INSERT OR REPLACE INTO tags VALUES (?,?,?)", [(run_id, k, v) for k, v in tags.items()])
            if offset is not None:
                db.execute("UPDATE runs SET ingest_offset=? WHERE id=?", (offset, run_id))

    def ingest_offset(self, run_id: str) -> int:
        row = self._db.execute("SELECT ingest_offset FROM runs WHERE id=?", (run_id,)).fetchone()
        return row[0] if row else 0

    def resolve_id(self, run_ref: str) -> str:
        """A full run id from an id or an unambiguous prefix."""
        ref = run_ref.strip().lower()
        if ref in ("last", "latest"):  # the most recent run: what people look at after `proj run`
            row = self._db.execute("SELECT id FROM runs WHERE parent_run_id IS NULL"  # not one of its children
                                   " AND lifecycle_stage = 'active' ORDER BY start_time DESC LIMIT 1").fetchone()
            if row is None:
                raise RunNotFound(f"no runs recorded in {self.root} yet")
            latest: str = row[0]
            return latest
        if not ref or not all(c in "0123456789abcdef" for c in ref):
            raise RunNotFound(f"run {run_ref!r} not found: run ids are hexadecimal (see `proj runs list`)")
        rows = self._db.execute("SELECT id FROM runs WHERE id >= ? AND id < ? LIMIT 3",
                                (ref, ref + "g")).fetchall()
        if not rows:
            raise RunNotFound(f"run {run_ref!r} not found in {self.root} (see `proj runs list`)")
        if len(rows) > 1 and rows[0][0] != ref:
            raise RunNotFound(f"run prefix {run_ref!r} is ambiguous: {', '.join(r[0][:12] for r in rows)}...")
        run_id: str = rows[0][0]
        return run_id

    def get_run(self, run_ref: str) -> RunRecord:
        run_id = self.resolve_id(run_ref)
        row = self._db.execute(f"SELECT {RUN_COLUMNS} FROM runs r JOIN experiments e ON e.id = r.experiment_id"
                               " WHERE r.id = ?", (run_id,)).fetchone()
        run = self._record(row)
        run.params = [ParamRecord(k, v, json.loads(t), ty, s) for k, v, t, ty, s in self._db.execute(
            "SELECT key, value, typed_json, type, source FROM params WHERE run_id=? ORDER BY rowid", (run_id,))]
        run.tags = dict(self._db.execute("SELECT key, value FROM tags WHERE run_id=? ORDER BY key", (run_id,)))
        run.metrics = self._latest_metrics([run_id]).get(run_id, {})
        self._fill_io(run)
        return run

    def list_runs(self, *, experiment: str | None = None, status: str | None = None,
                  commit: str | None = None, limit: int | None = 50, top_level: bool = False) -> list[RunRecord]:
        # "+" keeps SQLite off runs_by_parent (almost every row is top-level): walking runs_by_time and
        # stopping at the limit is 0.5 ms over 10,000 runs; the parent index plus a sort was 35 ms.
        where: list[str] = ["+r.parent_run_id IS NULL"] if top_level else []
        where.append("r.lifecycle_stage = 'active'")  # deleted runs (MLflow's delete_run) are not listed
        args: list[str] = []
        if experiment:
            where.append("e.name = ?")
            args.append(experiment)
        if status:  # a RUNNING row whose runner died reads as FAILED (tracking.view.presented): filter after that
            where.append("r.status IN (?, ?)")
            args += [status.upper(), RUNNING]
            if limit:  # the rows dropped below are RUNNING ones: fetch that many more
                limit += self._db.execute("SELECT count(*) FROM runs WHERE status = ?", (RUNNING,)).fetchone()[0]
        if commit:
            where.append("r.source_commit LIKE ?")
            args.append(commit.lower() + "%")
        sql = f"SELECT {RUN_COLUMNS} FROM runs r JOIN experiments e ON e.id = r.experiment_id"
        sql += (" WHERE " + " AND ".join(where)) if where else ""
        sql += " ORDER BY r.start_time DESC" + (f" LIMIT {int(limit)}" if limit else "")
        found = [self._record(row) for row in self._db.execute(sql, args)]
        if status:
            found = [r for r in found if r.status == status.upper()][:limit]
        return found

    def search_runs(self, filter_string: str | None = None, order_by: list[str] | tuple[str, ...] = (),
                    max_results: int = 1000, page_token: str | None = None, *,
                    experiment: str | None = None) -> tuple[list[RunRecord], str | None]:
        check_max_results(max_results)
        where, args = compile_filter(parse_filter(filter_string))
        orders = parse_order_by_list(order_by)
        offset = page_offset(page_token)
        where.append("r.lifecycle_stage = 'active'")
        if experiment:
            where.append("e.name = ?")
            args.append(experiment)
        rows = self._run_rows(where, args, orders, offset, max_results + 1)  # one more: is there a next page?
        found = [self._record(row) for row in rows[:max_results]]
        self._fill(found, tags=False)
        return found, (next_page_token(offset + max_results) if len(rows) > max_results else None)

    def metric_history(self, run_id: str, key: str | None = None) -> list[MetricPoint]:
        sql = "SELECT key, value, step, timestamp FROM metrics WHERE run_id=?" + (" AND key=?" if key else "")
        args = (run_id, key) if key else (run_id,)
        return [MetricPoint(k, value_of(v), step, ts)
                for k, v, step, ts in self._db.execute(sql + " ORDER BY key, step, timestamp, rowid", args)]

    def running_runs(self) -> list[tuple[str, str, int | None, str | None, int | None, str | None]]:
        return list(self._db.execute("SELECT id, host, pid, pid_start, child_pid, child_start FROM runs"
                                     " WHERE status = ?", (RUNNING,)))

    def _models_table(self) -> None:
        if getattr(self, "_has_models", False):
            return
        if not self.readonly:
            with self._tx() as db:
                db.execute(_MODELS_SCHEMA)
        elif not self._db.execute("SELECT 1 FROM main.sqlite_master WHERE name = 'models'").fetchone():
            # Nothing may be written: an empty in-memory stand-in, so "no models yet" reads as that.
            self._db.execute(_MODELS_SCHEMA.replace("CREATE TABLE IF NOT EXISTS", "CREATE TEMP TABLE"))
        self._has_models = True

    def save_model(self, model: Any) -> None:
        self._models_table()
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO models VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                       (model.run_id, model.path, model.origin, int(model.valid), model.reason,
                        json.dumps(model.flavors), model.size, json.dumps(model.files),
                        json.dumps(model.mlmodel, default=str), model.env_source, model.created or time.time()))

    def list_models(self, *, experiment: str | None = None, run_id: str | None = None) -> list[Any]:
        self._models_table()
        sql = ("SELECT m.run_id, m.path, m.origin, m.valid, m.reason, m.flavors_json, m.size, m.files_json,"
               " m.mlmodel_json, m.env_source, m.created, e.name FROM models m JOIN runs r ON r.id = m.run_id"
               " JOIN experiments e ON e.id = r.experiment_id")
        where, args = [], []
        if experiment:
            where.append("e.name = ?")
            args.append(experiment)
        if run_id:
            where.append("m.run_id = ?")
            args.append(run_id)
        sql += (" WHERE " + " AND ".join(where)) if where else ""
        return [ModelRecord(run_id=rid, path=path, origin=origin, valid=bool(valid), reason=reason,
                            flavors=json.loads(flavors), size=size, files=json.loads(files),
                            mlmodel=json.loads(mlmodel), env_source=env_source, created=created, experiment=exp)
                for rid, path, origin, valid, reason, flavors, size, files, mlmodel, env_source, created, exp
                in self._db.execute(sql + " ORDER BY m.created DESC, m.path", args)]

    def close(self) -> None:
        self._db.close()


def _default(decl: str) -> str:
    """The SQL default of a column declaration ("TEXT NOT NULL DEFAULT '{}'" -> "'{}'"), else NULL."""
    _, found, default = decl.partition(" DEFAULT ")
    return default.strip() if found else "NULL"


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no passwd entry in some containers
        return "unknown"


def _ignore_in_git(root: Path) -> None:
    """A store inside a work tree must not show up in `git status` (nor be committed by accident)."""
    marker = root / ".gitignore"
    if not marker.exists():
        try:
            marker.write_text("# created by proj: the run store is not source code\n*\n")
        except OSError:
            pass
