"""What every part of the SQLite store shares: the connection, short write transactions, rows to records."""
from __future__ import annotations

import json
import math
import os
import sqlite3
from contextlib import AbstractContextManager, contextmanager
from operator import itemgetter
from pathlib import Path
from typing import Any, Iterable, Iterator

from proj.errors import InvalidState, NotFound, UsageError
from proj.tracking.dbfile import write_transaction
from proj.tracking.records import (
    ACTIVE,
    ACTIVE_ONLY,
    ALL,
    DELETED,
    DELETED_ONLY,
    VIEW_TYPES,
    MetricPoint,
    ParamRecord,
    RunRecord,
)
from proj.tracking.search import METRIC, OrderBy, compile_order_by
from proj.tracking.sqlite_schema import BLOCK_POINTS
from proj.tracking.store import RunStore
from proj.tracking.view import presented

RUN_COLUMNS = ("r.id, e.name, r.name, r.status, r.start_time, r.end_time, r.user, r.host, r.pid, r.source_json, "
               "r.project_name, r.entry_point, r.command, r.exit_code, r.failure_phase, r.failure_reason, "
               "r.env_json, r.parent_run_id, r.inputs_json, r.pid_start, r.reproduces_run_id, r.mlflow_run_id, "
               "r.experiment_id, r.lifecycle_stage, r.artifact_uri, e.artifact_location")
RUNS_FROM = "runs r JOIN experiments e ON e.id = r.experiment_id"
# Keep the latest point of (run, key) as the history grows: a later step wins, then a later timestamp, then
# the point inserted last (executemany applies rows in order, so ties within one batch resolve the same way).
# Each (run, key)'s min and max move with every point, whatever the latest-point rule decides (NaN, stored as
# NULL, is in neither; a NULL given leaves the stored extreme as it is).
UPSERT_LATEST = ("INSERT INTO latest_metrics (run_id, key, value, step, timestamp, min_value, max_value)"
                 " VALUES (?,?,?,?,?,?,?) ON CONFLICT(run_id, key) DO UPDATE SET"
                 " value = CASE WHEN {newer} THEN excluded.value ELSE latest_metrics.value END,"
                 " step = CASE WHEN {newer} THEN excluded.step ELSE latest_metrics.step END,"
                 " timestamp = CASE WHEN {newer} THEN excluded.timestamp ELSE latest_metrics.timestamp END,"
                 " min_value = CASE WHEN latest_metrics.min_value IS NULL OR excluded.min_value < latest_metrics.min_value"
                 " THEN excluded.min_value ELSE latest_metrics.min_value END,"
                 " max_value = CASE WHEN latest_metrics.max_value IS NULL OR excluded.max_value > latest_metrics.max_value"
                 " THEN excluded.max_value ELSE latest_metrics.max_value END").format(
    newer="(excluded.step > latest_metrics.step OR (excluded.step = latest_metrics.step"
          " AND excluded.timestamp >= latest_metrics.timestamp))")
# Each key's last block, for all the keys of a batch in one query (the block is found by the primary key)
_LAST_BLOCKS = ("SELECT key, block, n, min_value, min_step, min_ts, max_value, max_step, max_ts, first_step, first_ts,"
                " last_step, last_ts FROM metric_blocks b WHERE run_id = ? AND key IN ({marks}) AND block ="
                " (SELECT max(block) FROM metric_blocks WHERE run_id = b.run_id AND key = b.key)")
_PUT_BLOCK = ("INSERT OR REPLACE INTO metric_blocks (run_id, key, block, n, min_value, min_step, min_ts, max_value,"
              " max_step, max_ts, first_step, first_ts, last_step, last_ts) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)")
_VALUE, _STEP_TIME = itemgetter(2), itemgetter(3, 4)  # of a metrics row (run_id, key, value, step, timestamp)
BOUND_CHUNK = 10000  # well under SQLite's limit on bound parameters


def experiment_location(experiment_id: int | str, stored: str | None) -> str:
    """An experiment's artifact root: the one a client gave, else the server's ``mlflow-artifacts:/<id>``."""
    return stored or f"mlflow-artifacts:/{experiment_id}"


def run_artifact_uri(experiment_id: int | str, run_id: str, stored: str | None, location: str | None) -> str:
    return stored or f"{experiment_location(experiment_id, location).rstrip('/')}/{run_id}/artifacts"


def stages(view_type: str) -> tuple[str, ...]:
    """The lifecycle stages one of MLflow's view types shows."""
    if view_type not in VIEW_TYPES:
        raise UsageError(f"Invalid view type {view_type!r}: one of {list(VIEW_TYPES)}")
    return {ACTIVE_ONLY: (ACTIVE,), DELETED_ONLY: (DELETED,), ALL: (ACTIVE, DELETED)}[view_type]


def value_of(stored: float | None) -> float:
    """SQLite stores NaN as NULL; every metric point has a value, so NULL reads back as NaN."""
    return math.nan if stored is None else stored


def _object(text: str) -> Any:
    """A JSON column; most client runs hold "{}", which needs no parser."""
    return {} if text == "{}" else json.loads(text)


def experiment_int(experiment_id: str | int) -> int:
    """An experiment id as the integer the table keys on; one that is not a number is refused as MLflow's store
    refuses it (INVALID_PARAMETER_VALUE, not RESOURCE_DOES_NOT_EXIST: clients tell the two apart)."""
    try:
        return int(str(experiment_id))
    except ValueError:
        raise UsageError(f"Invalid experiment ID '{experiment_id}'. Experiment ID must be a valid integer.") from None


class SqliteBase(RunStore):
    """The state and helpers the SQLite store's parts (proj's runs, experiments, client runs, models) share."""

    @staticmethod
    def _experiment_to_create_in(db: sqlite3.Connection, experiment_id: str) -> tuple[int, str, str | None]:
        """(id, lifecycle stage, artifact location) of an experiment something is created in: it must exist
        and be active (MLflow's messages), for client runs and logged models alike."""
        row = db.execute("SELECT id, lifecycle_stage, artifact_location FROM experiments WHERE id = ?",
                         (experiment_int(experiment_id),)).fetchone()
        if row is None:
            raise NotFound(f"No Experiment with id={experiment_id} exists")
        if row[1] != ACTIVE:
            raise InvalidState(f"The experiment {row[0]} must be in the 'active' state. Current state is {row[1]}.")
        return row[0], row[1], row[2]

    root: Path
    readonly: bool
    _db: sqlite3.Connection

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One short write transaction, taken IMMEDIATE so concurrent writers queue instead of deadlocking."""
        db = self._db
        with write_transaction(db, lambda: db.execute("BEGIN IMMEDIATE")):
            yield db

    def _run_tx(self, run_id: str) -> AbstractContextManager[sqlite3.Connection]:
        """A write transaction that touches only ``run_id``'s own rows (its params, metrics, tags): SQLite has
        one writer at a time anyway; PostgreSQL lets writers of different runs go side by side."""
        return self._tx()

    def _record(self, row: tuple[Any, ...]) -> RunRecord:
        (rid, exp, name, status, start, end, user, host, pid, source, project, entry, command, code, phase,
         reason, env, parent, inputs, pid_start, reproduces, mlflow_run_id, exp_id, stage, artifact_uri,
         location) = row
        return presented(RunRecord(id=rid, experiment=exp, name=name, status=status, start_time=start, end_time=end,
                         user=user, host=host, pid=pid, source=_object(source), project_name=project,
                         entry_point=entry, command=command, exit_code=code, failure_phase=phase,
                         failure_reason=reason, env=_object(env), parent_run_id=parent,
                         run_dir=os.path.join(self._runs_dir(), rid), inputs=_object(inputs), pid_start=pid_start,
                         reproduces=reproduces, mlflow_run_id=mlflow_run_id, experiment_id=str(exp_id),
                         lifecycle_stage=stage, artifact_uri=run_artifact_uri(exp_id, rid, artifact_uri, location)))

    def _runs_dir(self) -> str:
        """The run folders' parent as text, computed once (a Path per record is a measurable cost in searches)."""
        found: str | None = getattr(self, "_runs_text", None)
        if found is None:
            found = self._runs_text = str(self.run_dir("x").parent)
        return found

    def _latest_metrics(self, run_ids: list[str]) -> dict[str, dict[str, MetricPoint]]:
        result: dict[str, dict[str, MetricPoint]] = {}
        for start in range(0, len(run_ids), BOUND_CHUNK):
            chunk = run_ids[start:start + BOUND_CHUNK]
            rows = self._db.execute(f"SELECT run_id, key, value, step, timestamp FROM latest_metrics"
                                    f" WHERE run_id IN ({','.join('?' * len(chunk))}) ORDER BY run_id, key", chunk)
            for run_id, key, value, step, ts in rows:
                result.setdefault(run_id, {})[key] = MetricPoint(key, value_of(value), step, ts)
        return result

    def _fill(self, runs: list[RunRecord], *, tags: bool = True) -> None:
        """Params, tags and latest metrics of many runs, three queries in all (never one per run)."""
        if not runs:
            return
        ids = [r.id for r in runs]
        latest = self._latest_metrics(ids)
        params: dict[str, list[ParamRecord]] = {}
        found_tags: dict[str, dict[str, str]] = {}
        for start in range(0, len(ids), BOUND_CHUNK):
            chunk = ids[start:start + BOUND_CHUNK]
            marks = ",".join("?" * len(chunk))
            for rid, k, v, t, ty, src in self._db.execute(
                    f"SELECT run_id, key, value, typed_json, type, source FROM params WHERE run_id IN ({marks})"
                    " ORDER BY rowid", chunk):
                # A logged string param is typed as itself (typed_json is json.dumps(value)): no parse needed.
                typed = v if src == "logged" and t.startswith('"') else json.loads(t)
                params.setdefault(rid, []).append(ParamRecord(k, v, typed, ty, src))
            if tags:
                for rid, k, v in self._db.execute(
                        f"SELECT run_id, key, value FROM tags WHERE run_id IN ({marks}) ORDER BY key", chunk):
                    found_tags.setdefault(rid, {})[k] = v
        for run in runs:
            run.metrics = latest.get(run.id, {})
            run.params = params.get(run.id, [])
            if tags:
                run.tags = found_tags.get(run.id, {})

    def _run_rows(self, where: list[str], args: list[Any], orders: list[OrderBy], offset: int,
                  limit: int) -> list[tuple[Any, ...]]:
        """``limit`` rows (RUN_COLUMNS) of the runs matching ``where`` from ``offset``, in ``orders`` order.

        Ordered by a metric first (the common search), the runs that have it are read walking the
        latest_metrics (key, value) index, so a first page costs about a page of rows, not a sort of every run
        (0.5 ms instead of 60-120 ms over 10,000 runs); the runs without it (or with NaN) follow, as MLflow.
        """
        cond = (" AND " + " AND ".join(where)) if where else ""
        if not orders or orders[0].type != METRIC:
            terms, order_args = compile_order_by(orders)
            sql = f"SELECT {RUN_COLUMNS} FROM {RUNS_FROM} WHERE 1{cond} ORDER BY {', '.join(terms)} LIMIT ? OFFSET ?"
            return self._db.execute(sql, [*args, *order_args, limit, offset]).fetchall()
        first = orders[0]
        rest, rest_args = compile_order_by(orders[1:])
        having = (f" FROM latest_metrics o0 JOIN runs r ON r.id = o0.run_id JOIN experiments e ON e.id = r.experiment_id"
                  f" WHERE o0.key = ? AND o0.value IS NOT NULL{cond}")
        rows = self._db.execute(
            f"SELECT {RUN_COLUMNS}{having} ORDER BY o0.value {'ASC' if first.ascending else 'DESC'}, {', '.join(rest)}"
            " LIMIT ? OFFSET ?", [first.key, *args, *rest_args, limit, offset]).fetchall()
        if len(rows) == limit:
            return rows
        # Past the runs that have the metric: how many there are tells where the others start.
        counted = offset + len(rows) if rows else self._db.execute(
            f"SELECT count(*){having}", [first.key, *args]).fetchone()[0]
        terms, order_args = compile_order_by(orders)
        lacking = "NOT EXISTS (SELECT 1 FROM latest_metrics x WHERE x.run_id = r.id AND x.key = ? AND x.value IS NOT NULL)"
        rows += self._db.execute(
            f"SELECT {RUN_COLUMNS} FROM {RUNS_FROM} WHERE {lacking}{cond} ORDER BY {', '.join(terms)} LIMIT ? OFFSET ?",
            [first.key, *args, *order_args, limit - len(rows), max(0, offset - counted)]).fetchall()
        return rows

    @staticmethod
    def _insert_metrics(db: sqlite3.Connection, run_id: str, metrics: Iterable[MetricPoint]) -> None:
        """Points into the history, the latest table (with each key's min and max) and the blocks that summarise
        the history for charts, all in the caller's transaction."""
        rows = _not_logged_yet(db, run_id, [(run_id, m.key, m.value, m.step, m.timestamp) for m in metrics])
        if not rows:
            return
        db.executemany("INSERT INTO metrics VALUES (?,?,?,?,?)", rows)
        by_key: dict[str, list[tuple[str, str, float, int, float]]] = {}
        for row in rows:
            by_key.setdefault(row[1], []).append(row)
        latest: list[tuple[Any, ...]] = []
        blocks: list[tuple[Any, ...]] = []
        last_blocks = {row[0]: tuple(row[1:]) for row in db.execute(
            _LAST_BLOCKS.format(marks=",".join("?" * len(by_key))), (run_id, *by_key))}
        for key, points in by_key.items():
            # Only each key's latest point of the batch can become the stored latest (a later row wins a tie).
            last = max(reversed(points), key=_STEP_TIME)  # max keeps the first it meets: the batch's last of equals
            changed = _blocks_after(last_blocks.get(key), run_id, key, points)
            # The key's extremes from the blocks these points changed: an open block's older extremes are already
            # within the stored min and max (kept in the same transactions), so the upsert's rule is unchanged.
            lows = [b[4] for b in changed if b[4] is not None]
            highs = [b[7] for b in changed if b[7] is not None]
            latest.append((*last, min(lows, default=None), max(highs, default=None)))
            blocks += changed
        db.executemany(UPSERT_LATEST, latest)
        db.executemany(_PUT_BLOCK, blocks)


_STORED_AT = ("SELECT step, timestamp, value FROM metrics WHERE run_id = ? AND key = ? AND timestamp BETWEEN ? AND ?"
              " AND step BETWEEN ? AND ?")


def _point(step: int, timestamp: float, value: float | None) -> tuple[int, float, float | None]:
    return step, timestamp, None if value is None or value != value else value  # NaN is stored as NULL


def _not_logged_yet(db: sqlite3.Connection, run_id: str,
                    rows: list[tuple[str, str, float, int, float]]) -> list[tuple[str, str, float, int, float]]:
    """``rows`` without the points already logged: equal in key, step, timestamp and value to a stored point or
    to an earlier one of the batch. MLflow's SQL store drops those too (its metrics' primary key), and it makes
    a batch that a client sent again (its answer lost to a restart) count once. Only a key whose batch reaches
    back to its stored latest point can repeat one: one query for the run's latest, then one per such key."""
    seen: set[tuple[str, int, float, float | None]] = set()
    fresh: list[tuple[str, str, float, int, float]] = []
    for row in rows:
        ident = (row[1], *_point(row[3], row[4], row[2]))
        if ident not in seen:
            seen.add(ident)
            fresh.append(row)
    if not fresh:
        return fresh
    latest = {key: (step, ts) for key, step, ts in db.execute(
        "SELECT key, step, timestamp FROM latest_metrics WHERE run_id = ?", (run_id,))}
    by_key: dict[str, list[tuple[str, str, float, int, float]]] = {}
    for row in fresh:
        if row[1] in latest and _STEP_TIME(row) <= latest[row[1]]:
            by_key.setdefault(row[1], []).append(row)
    stored: set[tuple[str, int, float, float | None]] = set()
    for key, points in by_key.items():
        times, steps = [p[4] for p in points], [p[3] for p in points]
        stored.update((key, *_point(*found)) for found in db.execute(
            _STORED_AT, (run_id, key, min(times), max(times), min(steps), max(steps))))
    if not stored:
        return fresh
    return [row for row in fresh if (row[1], *_point(row[3], row[4], row[2])) not in stored]


def _blocks_after(open_block: tuple[Any, ...] | None, run_id: str, key: str,
                  points: list[tuple[str, str, float, int, float]]) -> list[tuple[Any, ...]]:
    """The block rows (_PUT_BLOCK's) that change when ``points`` follow the (run, key)'s last block: it fills up
    to BLOCK_POINTS, then new blocks start. An extreme is the earliest point holding it (a tie keeps the older)."""
    out: list[tuple[Any, ...]] = []
    block: list[Any] | None = list(open_block) if open_block and open_block[1] < BLOCK_POINTS else None
    number = open_block[0] + 1 if open_block else 0
    start = 0
    while start < len(points):  # a slice of points per block (min/max keep the first of equal values)
        if block is None:
            block = [number, 0, None, None, None, None, None, None, points[start][3], points[start][4], None, None]
            number += 1
        chunk = points[start:start + BLOCK_POINTS - block[1]]
        start += len(chunk)
        block[1] += len(chunk)
        block[10], block[11] = chunk[-1][3], chunk[-1][4]
        numbers = [p for p in chunk if p[2] is not None and p[2] == p[2]]  # NaN (and NULL) is no extreme
        if numbers:
            low, high = min(numbers, key=_VALUE), max(numbers, key=_VALUE)
            if block[2] is None or low[2] < block[2]:
                block[2:5] = low[2], low[3], low[4]
            if block[5] is None or high[2] > block[5]:
                block[5:8] = high[2], high[3], high[4]
        out.append((run_id, key, *block))
        if block[1] == BLOCK_POINTS:
            block = None
    return out

