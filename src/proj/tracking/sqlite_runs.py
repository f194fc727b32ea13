"""Runs an MLflow client opens in the SQLite store: create, update, delete/restore, tags, log-batch, metric
histories, inputs and outputs, and search by experiment id."""
from __future__ import annotations

import base64
import json
import math
import os
import random
import sqlite3
import time
from typing import Any

from proj.errors import InvalidState, NotFound, UsageError
from proj.tracking.dbfile import guarded
from proj.tracking.records import (
    ACTIVE,
    ACTIVE_ONLY,
    DELETED,
    MLFLOW_STATUSES,
    RUNNING,
    DatasetRecord,
    MetricPoint,
    ModelOutput,
    RunInput,
    RunRecord,
)
from proj.tracking.search import (
    check_max_results,
    compile_filter,
    page_offset,
    parse_filter,
    parse_order_by_list,
)
from proj.tracking.search import page_token as next_page_token
from proj.tracking.sqlite_base import SqliteBase, run_artifact_uri, stages, value_of

RUN_NAME_TAG = "mlflow.runName"  # mlflow_tags.RUN_NAME; not imported: tracking.mlflow_tags reads records only
MAX_HISTORY_PAGE = 25000  # MLflow's get-history page
_MAX_DOUBLE = "1.7976931348623157e308"  # beyond it only the infinities (SQLite has no isinf)
# Our own short word lists for MLflow-style generated run names ("adjective-noun-NNN").
_ADJECTIVES = ("amber", "brisk", "calm", "daring", "eager", "fleet", "gentle", "hardy", "keen", "lucid", "mellow",
               "nimble", "quiet", "rapid", "steady", "tidy", "vivid", "wise", "zesty", "bold")
_NOUNS = ("otter", "falcon", "maple", "comet", "harbor", "lynx", "meadow", "pebble", "quartz", "raven", "summit",
          "thistle", "willow", "badger", "cedar", "delta", "ember", "fjord", "glacier", "heron")


def _history_position(token: str | None) -> tuple[float, int, int]:
    """(timestamp, step, rowid) after which a history page starts; the start for no token."""
    if not token:
        return (-math.inf, -(2 ** 63), -1)
    try:
        ts, step, rowid = json.loads(base64.b64decode(token, validate=True))["after"]
        if isinstance(ts, (int, float)) and isinstance(step, int) and isinstance(rowid, int):
            return (float(ts), step, rowid)
    except (ValueError, KeyError, TypeError):
        pass
    raise UsageError(f"Invalid page token {token!r}: use the token a previous page returned")


def generated_name() -> str:
    return f"{random.choice(_ADJECTIVES)}-{random.choice(_NOUNS)}-{random.randint(0, 999)}"


@guarded
class SqliteClientRuns(SqliteBase):
    """MLflow's run calls, for runs a client opened and for proj's own runs seen through the protocol."""

    def _run_state(self, db: sqlite3.Connection, run_id: str, *, active: bool = True) -> tuple[int, str]:
        """(experiment id, lifecycle stage) of run ``run_id``; NotFound, or InvalidState when ``active`` and
        the run is deleted (MLflow's messages)."""
        row = db.execute("SELECT experiment_id, lifecycle_stage FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise NotFound(f"Run with id={run_id} not found")
        if active and row[1] != ACTIVE:
            raise InvalidState(f"The run {run_id} must be in the 'active' state. Current state is {row[1]}.")
        return row[0], row[1]

    def create_client_run(self, experiment_id: str, user: str | None, start_time: float | None,
                          tags: dict[str, str], run_name: str | None) -> RunRecord:
        tag_name = tags.get(RUN_NAME_TAG)
        if run_name and tag_name and run_name != tag_name:
            raise UsageError("Both 'run_name' argument and 'mlflow.runName' tag are specified, but with different "
                             f"values (run_name='{run_name}', mlflow.runName='{tag_name}').")
        name = run_name or tag_name or generated_name()
        run_id = os.urandom(16).hex()
        with self._tx() as db:
            row = self._experiment_to_create_in(db, experiment_id)
            # A client-given experiment root is fixed into the run (MLflow's); the default one is derived.
            uri = run_artifact_uri(row[0], run_id, None, row[2]) if row[2] else None
            db.execute("INSERT INTO runs (id, experiment_id, name, status, start_time, user, host, source_json,"
                       " entry_point, command, artifact_uri) VALUES (?,?,?,?,?,?,'','{}','','',?)",
                       (run_id, row[0], name, RUNNING, time.time() if start_time is None else start_time,
                        user or "", uri))
            db.executemany("INSERT OR REPLACE INTO tags VALUES (?,?,?)",
                           [(run_id, k, v) for k, v in {**tags, RUN_NAME_TAG: name}.items()])
        return self.get_run(run_id)

    def update_run(self, run_id: str, status: str | None = None, end_time: float | None = None,
                   run_name: str | None = None) -> RunRecord:
        if status is not None and status not in MLFLOW_STATUSES:
            raise UsageError(f"Invalid run status {status!r}: one of {list(MLFLOW_STATUSES)}")
        with self._tx() as db:
            self._run_state(db, run_id)
            if status is not None:
                db.execute("UPDATE runs SET status = ? WHERE id = ?", (status, run_id))
            if end_time is not None:
                db.execute("UPDATE runs SET end_time = ? WHERE id = ?", (end_time, run_id))
            if run_name:
                self._rename(db, run_id, run_name)
        return self.get_run(run_id)

    @staticmethod
    def _rename(db: sqlite3.Connection, run_id: str, name: str) -> None:
        db.execute("UPDATE runs SET name = ? WHERE id = ?", (name, run_id))
        db.execute("INSERT OR REPLACE INTO tags VALUES (?,?,?)", (run_id, RUN_NAME_TAG, name))

    def delete_run(self, run_id: str) -> None:
        with self._tx() as db:
            self._run_state(db, run_id, active=False)
            db.execute("UPDATE runs SET lifecycle_stage = ?, deleted_time = ? WHERE id = ?",
                       (DELETED, time.time(), run_id))

    def restore_run(self, run_id: str) -> None:
        with self._tx() as db:
            self._run_state(db, run_id, active=False)
            db.execute("UPDATE runs SET lifecycle_stage = ?, deleted_time = NULL WHERE id = ?", (ACTIVE, run_id))

    def set_tag(self, run_id: str, key: str, value: str) -> None:
        with self._tx() as db:
            self._run_state(db, run_id)
            self._set_tags(db, run_id, {key: value})

    def _set_tags(self, db: sqlite3.Connection, run_id: str, tags: dict[str, str]) -> None:
        db.executemany("INSERT OR REPLACE INTO tags VALUES (?,?,?)", [(run_id, k, v) for k, v in tags.items()])
        if RUN_NAME_TAG in tags:  # MLflow keeps the run's name and this tag the same
            db.execute("UPDATE runs SET name = ? WHERE id = ?", (tags[RUN_NAME_TAG], run_id))

    def delete_tag(self, run_id: str, key: str) -> None:
        with self._tx() as db:
            self._run_state(db, run_id)
            if db.execute("DELETE FROM tags WHERE run_id = ? AND key = ?", (run_id, key)).rowcount == 0:
                raise NotFound(f"No tag with name: {key} in run with id {run_id}")

    def log_client_batch(self, run_id: str, metrics: list[MetricPoint] = [],  # noqa: B006 - never mutated
                         params: list[tuple[str, str]] = [],  # noqa: B006
                         tags: dict[str, str] | None = None) -> None:
        given: dict[str, str] = {}
        for key, value in params:
            if given.setdefault(key, value) != value:
                dupes = sorted({k for k, _ in params if [p for p, _ in params].count(k) > 1})
                raise UsageError(f"Duplicate parameter keys have been submitted: {dupes}. Please ensure the "
                                 "request contains only one param value per param key.")
        with self._run_tx(run_id) as db:  # all or nothing: a refused param leaves no metric or tag behind
            self._run_state(db, run_id)
            if given:
                self._check_params(db, run_id, given)
                db.executemany("INSERT INTO params VALUES (?,?,?,?,'string','logged') ON CONFLICT(run_id, key)"
                               " DO NOTHING", [(run_id, k, v, json.dumps(v)) for k, v in given.items()])
            self._insert_metrics(db, run_id, metrics)
            if tags:
                self._set_tags(db, run_id, tags)

    @staticmethod
    def _check_params(db: sqlite3.Connection, run_id: str, given: dict[str, str]) -> None:
        keys = list(given)
        marks = ",".join("?" * len(keys))
        old = dict(db.execute(f"SELECT key, value FROM params WHERE run_id = ? AND key IN ({marks})", [run_id, *keys]))
        changed = [(k, v) for k, v in old.items() if given[k] != v]
        if len(changed) == 1:
            key, value = changed[0]
            raise InvalidState(f"Changing param values is not allowed. Param with key='{key}' was already logged "
                               f"with value='{value}' for run ID='{run_id}'. Attempted logging new value "
                               f"'{given[key]}'.")
        if changed:
            shown = [{"key": k, "old_value": v, "new_value": given[k]} for k, v in changed]
            raise InvalidState(f"Changing param values is not allowed. Params were already logged='{shown}' "
                               f"for run ID='{run_id}'.")

    def metric_history_page(self, run_id: str, key: str, max_results: int = MAX_HISTORY_PAGE,
                            page_token: str | None = None) -> tuple[list[MetricPoint], str | None]:
        """One key's points in MLflow's order (timestamp, step, then insertion), a page at a time. The token
        names the last point given, so each page is an index range, not a rescan of the pages before it."""
        rows, token = self._history_rows("value, step, timestamp", run_id, key, max_results, page_token)
        return [MetricPoint(key, value_of(v), step, ts) for v, step, ts, _ in rows], token

    def metric_history_wire(self, run_id: str, key: str, max_results: int = MAX_HISTORY_PAGE,
                            page_token: str | None = None) -> tuple[list[tuple[float | str, int, int, int]], str | None]:
        """The same page as ``metric_history_page``, as (value, step, timestamp in ms, insertion order) rows
        ready for MLflow's JSON: NaN and the infinities already as MLflow's strings, milliseconds rounded by
        SQLite. A 100,000-point history is answered in a fraction of the time 100,000 MetricPoints take to
        build and map (the server's get-history uses this)."""
        return self._history_rows(
            f"CASE WHEN value IS NULL THEN 'NaN' WHEN value > {_MAX_DOUBLE} THEN 'Infinity'"
            f" WHEN value < -{_MAX_DOUBLE} THEN '-Infinity' ELSE value END, step, CAST(round(timestamp * 1000) AS INTEGER)",
            run_id, key, max_results, page_token)

    def _history_rows(self, columns: str, run_id: str, key: str, max_results: int,
                      page_token: str | None) -> tuple[list[Any], str | None]:
        if max_results <= 0:
            raise UsageError(f"Invalid value {max_results} for parameter 'max_results' supplied. It must be a "
                             "positive integer")
        after = _history_position(page_token)  # an unknown run has no points, as in MLflow (not an error)
        rows = self._db.execute(f"SELECT {columns}, rowid FROM metrics WHERE run_id = ? AND key = ?"
                                " AND (timestamp, step, rowid) > (?, ?, ?) ORDER BY timestamp, step, rowid LIMIT ?",
                                (run_id, key, *after, max_results + 1)).fetchall()
        if len(rows) <= max_results:
            return rows, None
        del rows[max_results:]
        rowid = rows[-1][-1]  # the token names the last point given by its position in the order
        ts, step = self._db.execute("SELECT timestamp, step FROM metrics WHERE rowid = ?", (rowid,)).fetchone()
        return rows, base64.b64encode(json.dumps({"after": [ts, step, rowid]}).encode()).decode()

    def metric_history_bulk_interval(self, run_ids: list[str], key: str, max_results: int,
                                     start_step: int | None = None,
                                     end_step: int | None = None) -> list[tuple[str, MetricPoint]]:
        if (start_step is None) != (end_step is None):
            raise UsageError("Both start_step and end_step must be specified together, or neither may be specified.")
        for run_id in run_ids:
            self._run_state(self._db, run_id, active=False)
        found: list[tuple[str, MetricPoint]] = []
        for run_id in run_ids:
            found += [(run_id, p) for p in self._sampled(run_id, key, max(1, max_results), start_step, end_step)]
        return found

    def _sampled(self, run_id: str, key: str, max_results: int, start_step: int | None,
                 end_step: int | None) -> list[MetricPoint]:
        """At most ``max_results`` points of one run's history, in step order: all of them when they fit, else
        the first, the last, and the lowest and highest of each of (max_results - 2) // 2 buckets of equally
        many points, so a spike between two picked steps is never smoothed away."""
        where = "run_id = ? AND key = ?" + (" AND step BETWEEN ? AND ?" if start_step is not None else "")
        args: list[Any] = [run_id, key] + ([start_step, end_step] if start_step is not None else [])
        order = "ORDER BY step, timestamp, rowid"
        total = self._db.execute(f"SELECT count(*) FROM metrics WHERE {where}", args).fetchone()[0]
        if total <= max_results:
            rows = self._db.execute(f"SELECT value, step, timestamp FROM metrics WHERE {where} {order}", args)
            return [MetricPoint(key, value_of(v), step, ts) for v, step, ts in rows]
        last = "ORDER BY step DESC, timestamp DESC, rowid DESC"
        edges = f"SELECT * FROM (SELECT rowid FROM metrics WHERE {where} {last} LIMIT 1)"  # the last point
        if max_results > 1:
            edges += f" UNION SELECT * FROM (SELECT rowid FROM metrics WHERE {where} {order} LIMIT 1)"
        picked = [*args, *args] if max_results > 1 else list(args)
        buckets = max(0, (max_results - 2) // 2)
        if buckets:
            # One ordered pass numbers the points; SQLite's min()/max() then name the row they came from.
            # NaN is stored as NULL, which min and max skip: each bucket's extremes are real values.
            edges += (" UNION SELECT rid FROM (SELECT rid, min(value) FROM b WHERE value IS NOT NULL GROUP BY bucket)"
                      " UNION SELECT rid FROM (SELECT rid, max(value) FROM b WHERE value IS NOT NULL GROUP BY bucket)")
            edges = (f"WITH b AS MATERIALIZED (SELECT rowid AS rid, value, (ROW_NUMBER() OVER ({order}) - 1) * ? / ?"
                     f" AS bucket FROM metrics WHERE {where}) {edges}")
            picked = [buckets, total, *args, *picked]
        rows = self._db.execute(f"SELECT value, step, timestamp FROM metrics WHERE rowid IN ({edges})"
                                f" ORDER BY step, timestamp, rowid", picked)
        return [MetricPoint(key, value_of(v), step, ts) for v, step, ts in rows]

    def log_inputs(self, run_id: str, inputs: list[RunInput], models: list[ModelOutput] = []) -> None:  # noqa: B006
        with self._tx() as db:
            experiment_id, _ = self._run_state(db, run_id)
            for item in inputs:
                self._insert_input(db, run_id, experiment_id, item)
            db.executemany("INSERT OR REPLACE INTO run_models VALUES (?,?,?,'input')",
                           [(run_id, m.model_id, m.step) for m in models])

    @staticmethod
    def _insert_input(db: sqlite3.Connection, run_id: str, experiment_id: int, item: RunInput) -> None:
        """The one insert path for a run's dataset input (logged, or imported by `proj runs import`)."""
        d = item.dataset
        db.execute("INSERT INTO datasets (experiment_id, name, digest, source_type, source, schema, profile)"
                   " VALUES (?,?,?,?,?,?,?) ON CONFLICT(experiment_id, name, digest) DO NOTHING",
                   (experiment_id, d.name, d.digest, d.source_type, d.source, d.schema, d.profile))
        dataset_id = db.execute("SELECT id FROM datasets WHERE experiment_id = ? AND name = ? AND digest = ?",
                                (experiment_id, d.name, d.digest)).fetchone()[0]
        # logged again (autologging does): the first input's tags stay, as MLflow keeps them
        db.execute("INSERT INTO run_inputs VALUES (?,?,?) ON CONFLICT(run_id, dataset_id) DO NOTHING",
                   (run_id, dataset_id, json.dumps(item.tags, sort_keys=True)))

    def log_outputs(self, run_id: str, models: list[ModelOutput]) -> None:
        with self._tx() as db:
            self._run_state(db, run_id)
            db.executemany("INSERT OR REPLACE INTO run_models VALUES (?,?,?,'output')",
                           [(run_id, m.model_id, m.step) for m in models])

    def _fill_io(self, run: RunRecord) -> None:
        """The datasets a run logged as inputs, and the models it logged as outputs."""
        run.datasets = [RunInput(DatasetRecord(name, digest, stype, source, schema, profile), json.loads(tags))
                        for name, digest, stype, source, schema, profile, tags in self._db.execute(
                            "SELECT d.name, d.digest, d.source_type, d.source, d.schema, d.profile, i.tags_json"
                            " FROM run_inputs i JOIN datasets d ON d.id = i.dataset_id WHERE i.run_id = ?"
                            " ORDER BY i.rowid", (run.id,))]
        run.outputs = [ModelOutput(model_id, step) for model_id, step in self._db.execute(
            "SELECT model_id, step FROM run_models WHERE run_id = ? AND direction = 'output' ORDER BY rowid",
            (run.id,))]

    def search_client_runs(self, experiment_ids: list[str], filter_string: str | None = None,
                           view_type: str = ACTIVE_ONLY, max_results: int = 1000,
                           order_by: list[str] | tuple[str, ...] = (),
                           page_token: str | None = None) -> tuple[list[RunRecord], str | None]:
        check_max_results(max_results)
        shown = stages(view_type)
        where, args = compile_filter(parse_filter(filter_string))
        orders = parse_order_by_list(order_by)
        offset = page_offset(page_token)
        if not experiment_ids:
            return [], None
        ids = []
        for experiment_id in experiment_ids:
            try:
                ids.append(int(str(experiment_id)))
            except ValueError:
                raise UsageError(f"Invalid experiment id {experiment_id!r}: experiment ids are numbers") from None
        where.append(f"r.experiment_id IN ({','.join('?' * len(ids))})")
        where.append(f"r.lifecycle_stage IN ({','.join('?' * len(shown))})")
        rows = self._run_rows(where, [*args, *ids, *shown], orders, offset, max_results + 1)
        found = [self._record(row) for row in rows[:max_results]]
        self._fill(found)
        return found, (next_page_token(offset + max_results) if len(rows) > max_results else None)
