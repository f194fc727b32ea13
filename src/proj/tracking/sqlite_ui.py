"""The web UI's reads in the SQLite store: a page of the runs table, distinct keys, groups, downsampled
histories that keep extremes, experiment counts, and the runs that reproduce a run."""
from __future__ import annotations

import bisect
import math
from typing import Any

from proj.errors import UsageError
from proj.tracking.dbfile import guarded
from proj.tracking.records import ACTIVE, RUNNING, RunRecord, json_number, millis
from proj.tracking.search import (
    ATTRIBUTE,
    METRIC,
    PARAM,
    TAG,
    compile_filter,
    parse_filter,
)
from proj.tracking.sqlite_base import BOUND_CHUNK, RUN_COLUMNS, RUNS_FROM, SqliteBase, experiment_int, stages, value_of
from proj.tracking.sqlite_schema import BLOCK_POINTS
from proj.tracking.ui_records import SAMPLE_X, Column, RunsQuery, SampledSeries

_MAX_DOUBLE = "1.7976931348623157e308"  # beyond it only the infinities (SQLite has no isinf)
_REPRODUCES_TAG = "proj.reproduces"  # mlflow_tags.PROJ_REPRODUCES (not imported: it pulls in proj.paths' users)
_VERDICT_TAG = "proj.reproduce.verdict"  # reproduce.rebuild.VERDICT_TAG
_PARENT_TAG = "mlflow.parentRunId"  # what an MLflow client's nested run carries (mlflow_tags.PARENT_RUN_ID)
# The SQL of an attribute column a table shows or sorts by (seconds in the table; the handler gives ms).
_KEYED = {METRIC: "latest_metrics", PARAM: "params", TAG: "tags"}  # tables with a (key, value, run_id) index
# A metric's min and max are kept beside its latest value (schema step 3), with a (key, column, run_id) index each.
_AGGREGATE_COLUMN = {None: "value", "min": "min_value", "max": "max_value"}
_ATTRIBUTE_SQL = {"start_time": "r.start_time", "end_time": "r.end_time", "duration": "(r.end_time - r.start_time)",
                  "run_name": "r.name", "status": "r.status", "user_id": "r.user", "run_id": "r.id",
                  "experiment_id": "r.experiment_id"}


def _value_sql(column: Column) -> tuple[str, list[Any]]:
    """A correlated expression for one column of run ``r`` (NULL when the run lacks it)."""
    if column.type == METRIC and column.aggregate:
        return (f"(SELECT lm.{_AGGREGATE_COLUMN[column.aggregate]} FROM latest_metrics lm WHERE lm.run_id = r.id"
                " AND lm.key = ?)", [column.key])
    if column.type == METRIC:
        return "(SELECT lm.value FROM latest_metrics lm WHERE lm.run_id = r.id AND lm.key = ?)", [column.key]
    if column.type == PARAM:
        return "(SELECT x.value FROM params x WHERE x.run_id = r.id AND x.key = ?)", [column.key]
    if column.type == TAG:
        return "(SELECT x.value FROM tags x WHERE x.run_id = r.id AND x.key = ?)", [column.key]
    if column.key not in _ATTRIBUTE_SQL:
        raise UsageError(f"unknown attribute {column.key!r}: one of {sorted(_ATTRIBUTE_SQL)}")
    return _ATTRIBUTE_SQL[column.key], []


def _wire(value: float | None) -> float | str | None:
    """A float for JSON (records.json_number), None as it is."""
    return None if value is None else json_number(value)


@guarded
class SqliteUi(SqliteBase):
    """What the web UI's endpoints (proj.server.ui) read; semantics in RunStore's UI section."""

    def _ui_where(self, query: RunsQuery) -> tuple[list[str], list[Any]]:
        where, args = compile_filter(parse_filter(query.filter_string))
        if query.experiment_ids:
            ids = [experiment_int(e) for e in query.experiment_ids]
            where.append(f"r.experiment_id IN ({','.join('?' * len(ids))})")
            args += ids
        shown = stages(query.view_type)
        where.append(f"r.lifecycle_stage IN ({','.join('?' * len(shown))})")
        args += list(shown)
        # A child is proj's (parent_run_id) or an MLflow client's nested run (the mlflow.parentRunId tag)
        if query.parent_run_id:
            where.append("(r.parent_run_id = ? OR r.id IN (SELECT t.run_id FROM tags t WHERE t.key = ? AND t.value = ?))")
            args += [query.parent_run_id, _PARENT_TAG, query.parent_run_id]
        elif query.top_level:
            # "+": not through runs_by_parent (nearly all rows match); the tagged children are one small list
            where.append("+r.parent_run_id IS NULL AND r.id NOT IN (SELECT t.run_id FROM tags t WHERE t.key = ?)")
            args.append(_PARENT_TAG)
        return where, args

    def ui_runs_table(self, query: RunsQuery, columns: list[Column], orders: list[tuple[Column, bool]],
                      offset: int, limit: int, *, count: bool = True) -> tuple[int, list[RunRecord], list[list[Any]]]:
        where, args = self._ui_where(query)
        total = -1
        if count:
            total = self._db.execute(f"SELECT count(*) FROM runs r WHERE {' AND '.join(where)}", args).fetchone()[0]
        ids = self._page_ids(where, args, orders, offset, limit)
        runs: list[RunRecord] = []
        if ids:
            rows = {row[0]: row for row in self._db.execute(
                f"SELECT {RUN_COLUMNS} FROM {RUNS_FROM} WHERE r.id IN ({','.join('?' * len(ids))})", ids)}
            runs = [self._record(rows[i]) for i in ids]
            tagged = dict(self._db.execute(f"SELECT run_id, value FROM tags WHERE run_id IN ({','.join('?' * len(ids))})"
                                           " AND +key = ?", [*ids, _PARENT_TAG]))
            for run in runs:
                run.parent_run_id = run.parent_run_id or tagged.get(run.id)
        return total, runs, self._column_values(ids, columns)

    @staticmethod
    def _order_terms(orders: list[tuple[Column, bool]]) -> tuple[list[str], list[Any]]:
        """ORDER BY terms: a run lacking a column sorts last either way; then newest first, then id."""
        terms: list[str] = []
        args: list[Any] = []
        for column, ascending in orders:
            expr, expr_args = _value_sql(column)
            terms += [f"{expr} IS NULL", f"{expr} {'ASC' if ascending else 'DESC'}"]
            args += expr_args * 2
        if not any(c.type == ATTRIBUTE and c.key == "start_time" for c, _ in orders):
            terms.append("r.start_time DESC")
        return [*terms, "r.id"], args

    def _page_ids(self, where: list[str], args: list[Any], orders: list[tuple[Column, bool]], offset: int,
                  limit: int) -> list[str]:
        """The ids of one page of runs in ``orders`` order. Ordered first by a latest metric, a param or a tag,
        the runs that have it are read walking that table's (key, value) index, so a page costs about a page of
        rows rather than a sort of every run; the runs without it follow (as _run_rows does for metrics)."""
        cond = " AND ".join(where)
        first = orders[0][0] if orders else None
        if first is None or first.type not in _KEYED:
            terms, order_args = self._order_terms(orders)
            return [r for (r,) in self._db.execute(
                f"SELECT r.id FROM runs r WHERE {cond} ORDER BY {', '.join(terms)} LIMIT ? OFFSET ?",
                [*args, *order_args, limit, offset])]
        table, ascending = _KEYED[first.type], orders[0][1]
        col = _AGGREGATE_COLUMN[first.aggregate] if first.type == METRIC else "value"
        rest, rest_args = self._order_terms(orders[1:])
        # CROSS JOIN keeps SQLite's join order: from the index, not from the runs (then a sort of all of them)
        having = (f" FROM {table} o0 CROSS JOIN runs r ON r.id = o0.run_id WHERE o0.key = ? AND o0.{col} IS NOT NULL"
                  f" AND {cond}")
        ids = [r for (r,) in self._db.execute(
            f"SELECT r.id{having} ORDER BY o0.{col} {'ASC' if ascending else 'DESC'}, {', '.join(rest)}"
            " LIMIT ? OFFSET ?", [first.key, *args, *rest_args, limit, offset])]
        if len(ids) == limit:
            return ids
        counted = offset + len(ids) if ids else self._db.execute(f"SELECT count(*){having}",
                                                                 [first.key, *args]).fetchone()[0]
        terms, order_args = self._order_terms(orders)
        lacking = f"NOT EXISTS (SELECT 1 FROM {table} x WHERE x.run_id = r.id AND x.key = ? AND x.{col} IS NOT NULL)"
        ids += [r for (r,) in self._db.execute(
            f"SELECT r.id FROM runs r WHERE {lacking} AND {cond} ORDER BY {', '.join(terms)} LIMIT ? OFFSET ?",
            [first.key, *args, *order_args, limit - len(ids), max(0, offset - counted)])]
        return ids

    def _column_values(self, run_ids: list[str], columns: list[Column]) -> list[list[Any]]:
        """One list per run (in ``run_ids`` order) of the columns' values, a few queries for the whole page."""
        if not run_ids or not columns:
            return [[None] * len(columns) for _ in run_ids]
        found: dict[tuple[str, str, str | None, str], Any] = {}  # (type, key, aggregate, run id) -> value
        marks = ",".join("?" * len(run_ids))
        by_type: dict[tuple[str, str | None], list[str]] = {}
        for c in columns:
            if c.type != ATTRIBUTE:
                by_type.setdefault((c.type, c.aggregate), []).append(c.key)
        for (kind, aggregate), keys in by_type.items():
            keys = sorted(set(keys))
            kmarks = ",".join("?" * len(keys))
            if kind == METRIC and aggregate:
                sql = (f"SELECT run_id, key, {_AGGREGATE_COLUMN[aggregate]} FROM latest_metrics WHERE run_id IN"
                       f" ({marks}) AND +key IN ({kmarks})")
            else:
                table = {METRIC: "latest_metrics", PARAM: "params", TAG: "tags"}[kind]
                # "+key": by the (run_id, key) primary key, not the (key, ...) index (which holds every run's rows)
                sql = f"SELECT run_id, key, value FROM {table} WHERE run_id IN ({marks}) AND +key IN ({kmarks})"
            for rid, key, value in self._db.execute(sql, [*run_ids, *keys]):
                found[kind, key, aggregate, rid] = _wire(value_of(value)) if kind == METRIC else value
        attrs = [c.key for c in columns if c.type == ATTRIBUTE]
        attr_rows: dict[str, tuple[Any, ...]] = {}
        if attrs:
            exprs = ", ".join(_value_sql(Column(ATTRIBUTE, k))[0] for k in attrs)
            for row in self._db.execute(f"SELECT r.id, {exprs} FROM runs r WHERE r.id IN ({marks})", run_ids):
                attr_rows[row[0]] = row[1:]
        out = []
        for rid in run_ids:
            values: list[Any] = []
            a = 0
            for c in columns:
                if c.type == ATTRIBUTE:
                    values.append(attr_rows.get(rid, (None,) * len(attrs))[a])
                    a += 1
                else:
                    values.append(found.get((c.type, c.key, c.aggregate, rid)))
            out.append(values)
        return out

    def ui_child_counts(self, run_ids: list[str]) -> dict[str, int]:
        counts: dict[str, int] = {}
        for start in range(0, len(run_ids), BOUND_CHUNK):
            chunk = run_ids[start:start + BOUND_CHUNK]
            marks = ",".join("?" * len(chunk))
            counts.update(self._db.execute(
                f"SELECT p, count(*) FROM (SELECT id, parent_run_id AS p FROM runs WHERE parent_run_id IN ({marks})"
                " AND lifecycle_stage = ? UNION SELECT t.run_id, t.value FROM tags t JOIN runs c ON c.id = t.run_id"
                f" WHERE t.key = ? AND t.value IN ({marks}) AND c.lifecycle_stage = ?) GROUP BY p",
                [*chunk, ACTIVE, _PARENT_TAG, *chunk, ACTIVE]))
        return counts

    def ui_run_keys(self, experiment_ids: list[str]) -> dict[str, list[str]]:
        ids = [experiment_int(e) for e in experiment_ids]
        out: dict[str, list[str]] = {}
        for name, table in (("params", "params"), ("metrics", "latest_metrics"), ("tags", "tags")):
            # The distinct keys by skipping through the (key, ...) index: one seek per key, not a scan of rows;
            # then whether any run of these experiments has it, walking that key's rows (CROSS JOIN: from them).
            keys = [k for (k,) in self._db.execute(
                f"WITH RECURSIVE k(key) AS (SELECT min(key) FROM {table} UNION ALL"
                f" SELECT (SELECT min(key) FROM {table} WHERE key > k.key) FROM k WHERE k.key IS NOT NULL)"
                " SELECT key FROM k WHERE key IS NOT NULL")]
            if ids:
                marks = ",".join("?" * len(ids))
                keys = [k for k in keys if self._db.execute(
                    f"SELECT 1 FROM {table} x CROSS JOIN runs r ON r.id = x.run_id WHERE x.key = ?"
                    f" AND r.experiment_id IN ({marks}) LIMIT 1", [k, *ids]).fetchone()]
            out[name] = keys
        return out

    def ui_run_groups(self, query: RunsQuery, group_by: Column, columns: list[Column],
                      max_ids: int = 100) -> list[dict[str, Any]]:
        """Per distinct value of ``group_by`` (None for runs without it): count, the first ``max_ids`` run ids
        (newest first) and each column's min, mean, max and population std over the runs that have it."""
        if group_by.type not in (PARAM, TAG):
            raise UsageError("group_by must be params.<key> or tags.<key>")
        where, args = self._ui_where(query)
        # Each key's values read whole from its covering (key, value, run_id) index and joined here: sequential
        # reads instead of a lookup per run and column (100,000 runs: 3.4 s -> well under a second of CPU).
        runs = self._db.execute(f"SELECT r.id, r.start_time FROM runs r WHERE {' AND '.join(where)}", args).fetchall()
        group_of = self._key_values(group_by)
        values = [self._key_values(c) for c in columns]
        members: dict[Any, list[tuple[float, str]]] = {}
        for rid, start in runs:
            members.setdefault(group_of.get(rid), []).append((start, rid))
        groups = []
        for g in sorted(members, key=lambda v: (v is None, v or "")):
            found = members[g]
            found.sort(key=lambda m: (-m[0], m[1]))
            aggregates = {c.name: _aggregate([x for _, rid in found if (x := values[i].get(rid)) is not None])
                          for i, c in enumerate(columns)}
            groups.append({"value": g, "count": len(found), "run_ids": [rid for _, rid in found[:max_ids]],
                           "aggregates": aggregates})
        return groups

    def _key_values(self, column: Column) -> dict[str, Any]:
        """run id -> the column's value, for every run that has it (NaN, stored as NULL, left out)."""
        if column.type == METRIC and column.aggregate:
            sql = f"SELECT run_id, {_AGGREGATE_COLUMN[column.aggregate]} FROM latest_metrics WHERE key = ?"
        elif column.type in _KEYED:
            sql = f"SELECT run_id, value FROM {_KEYED[column.type]} WHERE key = ? AND value IS NOT NULL"
        else:
            expr, _ = _value_sql(column)
            return dict(self._db.execute(f"SELECT r.id, {expr} FROM runs r"))
        return {rid: v for rid, v in self._db.execute(sql, (column.key,)) if v is not None}

    def ui_sampled(self, run_id: str, key: str, x: str, points: int, x_min: float | None = None,
                   x_max: float | None = None) -> SampledSeries:
        if x not in SAMPLE_X:
            raise UsageError(f"x must be one of {list(SAMPLE_X)}, got {x!r}")
        points = max(4, points)
        # Ranges are on the stored column (step, or timestamp in seconds) so every read walks an index:
        # metrics_by_run (run_id, key, step) or metrics_by_time (run_id, key, timestamp, step).
        column, order = ("step", "step, timestamp, rowid") if x == "step" else ("timestamp", "timestamp, step, rowid")
        base_ms = 0
        if x == "relative":
            first = self._db.execute("SELECT min(timestamp) FROM metrics WHERE run_id = ? AND key = ?",
                                     (run_id, key)).fetchone()[0]
            base_ms = 0 if first is None else int(round(first * 1000))
        where, args = "run_id = ? AND key = ?", list[Any]([run_id, key])
        for bound, op, nudge in ((x_min, ">=", -0.5), (x_max, "<=", 0.5)):
            if bound is not None:  # in the x unit; half a ms of slack for the rounding of the ms shown
                where += f" AND {column} {op} ?"
                args.append(bound if x == "step" else (bound + base_ms + nudge) / 1000.0)
        xexpr = "step" if x == "step" else f"CAST(round(timestamp * 1000) AS INTEGER) - {base_ms}"
        value = (f"CASE WHEN value IS NULL THEN 'NaN' WHEN value > {_MAX_DOUBLE} THEN 'Infinity'"
                 f" WHEN value < -{_MAX_DOUBLE} THEN '-Infinity' ELSE value END")
        # min() and max() alone are index seeks; a count would be a scan, so only "more than points?" is counted
        lo = self._db.execute(f"SELECT min({column}) FROM metrics WHERE {where}", args).fetchone()[0]
        hi = self._db.execute(f"SELECT max({column}) FROM metrics WHERE {where}", args).fetchone()[0]
        some = self._db.execute(f"SELECT count(*) FROM (SELECT 1 FROM metrics WHERE {where} LIMIT ?)",
                                [*args, points + 1]).fetchone()[0]
        if some <= points:
            xs, ys = _columns(self._db.execute(f"SELECT {xexpr}, {value} FROM metrics WHERE {where} ORDER BY {order}",
                                               args).fetchall())
            return SampledSeries(some, False, xs, ys)
        buckets = max(1, (points - 2) // 2)
        width = (hi - lo) / buckets
        if self._blocks_cover(run_id, key, x, x_min, x_max, points):
            return self._sampled_from_blocks(run_id, key, x, where, args, order, lo, hi, buckets, base_ms,
                                             x_min is not None or x_max is not None)
        # Each bucket is an index range of x, read once for its count, min and max, then once more (as far as
        # needed) for the rows holding them: two passes in all, nothing sorted. Only the bucket's own bounds are
        # given (with the window's too, SQLite would seek by those and scan the window once per bucket). NaN is
        # stored as NULL, which min and max skip: the extremes are real values.
        span = f"run_id = ? AND key = ? AND {column} >= ? AND {column} < ?"
        picked: set[int] = set()
        total = 0
        for b in range(buckets):
            low, high = lo + b * width, (lo + (b + 1) * width) if b < buckets - 1 else math.nextafter(hi, math.inf)
            count, least, most = self._db.execute(f"SELECT count(*), min(value), max(value) FROM metrics WHERE {span}",
                                                  (run_id, key, low, high)).fetchone()
            total += count
            if least is None:
                continue
            seen: set[float] = set()
            for rid, got in self._db.execute(f"SELECT rowid, value FROM metrics WHERE {span} AND value IN (?, ?)",
                                             (run_id, key, low, high, least, most)):
                if got not in seen:  # the first row of each extreme (in index order: the earliest x)
                    seen.add(got)
                    picked.add(rid)
        descending = order.replace(",", " DESC,") + " DESC"
        for ordering in (order, descending):  # the first and the last point
            first_or_last = self._db.execute(f"SELECT rowid FROM metrics WHERE {where} ORDER BY {ordering} LIMIT 1",
                                             args).fetchone()
            picked.add(first_or_last[0])
        ids = sorted(picked)
        rows = self._db.execute(f"SELECT {xexpr}, {value} FROM metrics WHERE rowid IN ({','.join('?' * len(ids))})"
                                f" ORDER BY {order}", ids).fetchall()
        xs, ys = _columns(rows)
        return SampledSeries(total, True, xs, ys)

    def _blocks_cover(self, run_id: str, key: str, x: str, x_min: float | None, x_max: float | None,
                      points: int) -> bool:
        """Whether to sample from metric_blocks: the (run, key) has them (a history written before schema step 3
        and not migrated has none) and the range spans at least a block per bucket (fewer: the points are read,
        which is as fast then and finer)."""
        first, last = ("first_step", "last_step") if x == "step" else ("first_ts", "last_ts")
        lo = -math.inf if x_min is None else x_min if x == "step" else x_min / 1000.0
        hi = math.inf if x_max is None else x_max if x == "step" else x_max / 1000.0
        if x == "relative" and (x_min is not None or x_max is not None):  # blocks hold seconds since the epoch
            base = self._db.execute("SELECT min(first_ts) FROM metric_blocks WHERE run_id = ? AND key = ?",
                                    (run_id, key)).fetchone()[0] or 0.0
            lo, hi = lo + base, hi + base
        n = self._db.execute(f"SELECT sum(n) FROM metric_blocks WHERE run_id = ? AND key = ? AND {last} >= ?"
                             f" AND {first} <= ?", (run_id, key, lo, hi)).fetchone()[0]
        return n is not None and n >= BLOCK_POINTS * max(1, (points - 2) // 2)

    def _sampled_from_blocks(self, run_id: str, key: str, x: str, where: str, args: list[Any], order: str,
                             lo: float, hi: float, buckets: int, base_ms: int, windowed: bool) -> SampledSeries:
        """Per bucket of [lo, hi] the min and the max among the blocks' extremes that fall in it (each a real
        point, at its own x), plus the range's first and last point. A block's extremes are its points' extremes,
        so every point a bucket of points would keep is kept or outdone by a more extreme one at most a block
        (BLOCK_POINTS points) away: spikes survive, nothing drawn is not in the history."""
        at_step = x == "step"
        width = (hi - lo) / buckets  # the buckets of the point-by-point path
        edges = [lo + b * width for b in range(buckets)]
        lows: list[tuple[float, int, float] | None] = [None] * buckets  # (value, step, timestamp) per bucket
        highs: list[tuple[float, int, float] | None] = [None] * buckets
        total = 0
        rows = self._db.execute("SELECT n, min_value, min_step, min_ts, max_value, max_step, max_ts FROM metric_blocks"
                                " WHERE run_id = ? AND key = ? ORDER BY block", (run_id, key))
        for n, least, lstep, lts, most, mstep, mts in rows:
            total += n
            if least is None:
                continue
            for value, step, ts, kept, better in ((least, lstep, lts, lows, -1), (most, mstep, mts, highs, 1)):
                where_x = step if at_step else ts
                if where_x < lo or where_x > hi:
                    continue  # outside the zoom window
                b = min(buckets - 1, bisect.bisect_right(edges, where_x) - 1)
                seen = kept[b]
                if seen is None or (value - seen[0]) * better > 0:  # a tie keeps the earlier block's
                    kept[b] = (value, step, ts)
        if windowed:  # blocks straddle the window's edges: the points in it, counted from the index
            total = self._db.execute(f"SELECT count(*) FROM metrics WHERE {where}", args).fetchone()[0]
        chosen: set[tuple[Any, ...]] = {(p[1], p[2], p[0]) for p in (*lows, *highs) if p is not None}
        descending = order.replace(",", " DESC,") + " DESC"
        for ordering in (order, descending):  # the first and the last point
            row = self._db.execute(f"SELECT step, timestamp, value FROM metrics WHERE {where} ORDER BY {ordering}"
                                   " LIMIT 1", args).fetchone()
            chosen.add(tuple(row))
        ordered = sorted(chosen, key=lambda p: (p[0], p[1]) if at_step else (p[1], p[0]))
        xs = [p[0] if at_step else millis(p[1]) - base_ms for p in ordered]
        return SampledSeries(total, True, xs, [_wire(value_of(p[2])) for p in ordered])

    def ui_experiment_summary(self, experiment_ids: list[str]) -> list[dict[str, Any]]:
        ids = [experiment_int(e) for e in experiment_ids]
        where = f" AND experiment_id IN ({','.join('?' * len(ids))})" if ids else ""
        rows = self._db.execute(
            "SELECT experiment_id, count(*), sum(status = ?), max(start_time) FROM runs"
            f" WHERE lifecycle_stage = ?{where} GROUP BY experiment_id", [RUNNING, ACTIVE, *ids]).fetchall()
        found = {r[0]: r for r in rows}
        listed = ids or sorted(found)
        return [{"experiment_id": str(i), "runs": found[i][1] if i in found else 0,
                 "running": found[i][2] if i in found else 0,
                 "last_run_time": found[i][3] if i in found else None} for i in listed]

    def ui_reproductions(self, run_id: str) -> list[dict[str, Any]]:
        """Runs that reproduce ``run_id`` (proj's column or the proj.reproduces tag), oldest first, with the
        verdict tag each carries."""
        rows = self._db.execute(
            "SELECT r.id, r.start_time, (SELECT v.value FROM tags v WHERE v.run_id = r.id AND v.key = ?) FROM runs r"
            " WHERE r.reproduces_run_id = ? OR r.id IN (SELECT t.run_id FROM tags t WHERE t.key = ? AND t.value = ?)"
            " ORDER BY r.start_time", (_VERDICT_TAG, run_id, _REPRODUCES_TAG, run_id)).fetchall()
        return [{"run_id": rid, "start_time": start, "verdict": verdict} for rid, start, verdict in rows]


def _columns(rows: list[tuple[Any, Any]]) -> tuple[list[Any], list[Any]]:
    return [r[0] for r in rows], [r[1] for r in rows]


def _aggregate(found: list[Any]) -> dict[str, Any]:
    """min, mean, max and population std of the numbers among ``found`` (a param's text that is no number is
    left out), with the infinities as MLflow writes them."""
    numbers = [float(x) for x in found if isinstance(x, (int, float)) or _is_number(x)]
    if not numbers:
        return {"min": None, "mean": None, "max": None, "std": None, "count": 0}
    mean = math.fsum(numbers) / len(numbers)
    std = math.sqrt(math.fsum((x - mean) ** 2 for x in numbers) / len(numbers)) if math.isfinite(mean) else math.nan
    return {"min": _wire(min(numbers)), "mean": _wire(mean), "max": _wire(max(numbers)), "std": _wire(std),
            "count": len(numbers)}


def _is_number(text: Any) -> bool:
    try:
        float(text)
    except (TypeError, ValueError):
        return False
    return True
