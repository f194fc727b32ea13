"""The runs table's endpoints: a page of runs with chosen columns, the keys to choose from, groups, CSV export."""
from __future__ import annotations

import csv
import io
from datetime import datetime, timezone
from typing import Any

from proj.errors import UsageError
from proj.server.protocol import validate as v
from proj.server.ui.call import JsonDict, UiCall, ms, parsed
from proj.tracking.records import RunRecord
from proj.tracking.search import ATTRIBUTE, parse_filter
from proj.tracking.ui_records import Column, RunsQuery, parse_column, parse_order

MAX_PAGE = 1000
EXPORT_PAGE = 2000  # runs per store read while a CSV streams
_TIMES = ("start_time", "end_time", "duration")  # seconds in the store, ms on the wire


def query(call: UiCall) -> RunsQuery:
    text = call.string("filter")
    if text:
        parsed("filter", text, parse_filter)  # refused here, naming the parameter, before any SQL
    parent = call.string("parent_run_id")
    if parent:
        v.check_run_id(parent, "parent_run_id")
    return RunsQuery(call.strings("experiment_ids"), text, call.view(), call.boolean("top_level", False), parent)


def columns(call: UiCall, key: str = "columns") -> list[Column]:
    return [parsed(key, text, parse_column) for text in call.strings(key)]


def orders(call: UiCall) -> list[tuple[Column, bool]]:
    found = [parsed("order_by", text, parse_order) for text in v.array(call.args, "order_by") if text.strip()]
    seen = set()
    for column, _ in found:
        if (column.type, column.key, column.aggregate) in seen:
            raise UsageError(v.invalid_value("order_by", v.array(call.args, "order_by"), "a column is named twice."))
        seen.add((column.type, column.key, column.aggregate))
    return found


def _cell(column: Column, value: Any) -> Any:
    if column.type == ATTRIBUTE and column.key in _TIMES and isinstance(value, (int, float)):
        return ms(value)
    return value


def run_row(run: RunRecord, values: list[Any], cols: list[Column], children: int) -> JsonDict:
    return {"run_id": run.id, "run_name": run.name, "experiment_id": run.experiment_id, "status": run.status,
            "start_time": ms(run.start_time), "end_time": ms(run.end_time), "user": run.user,
            "parent_run_id": run.parent_run_id, "children": children,
            "values": [_cell(c, x) for c, x in zip(cols, values, strict=True)]}


def runs_table(call: UiCall) -> JsonDict:
    q, cols, order = query(call), columns(call), orders(call)
    offset = call.integer("offset", 0, low=0)
    limit = call.integer("limit", 200, low=1, high=MAX_PAGE)
    assert offset is not None and limit is not None
    store = call.store
    total, runs, values = store.ui_runs_table(q, cols, order, offset, limit)
    children = store.ui_child_counts([r.id for r in runs]) if runs else {}
    return {"total": total, "offset": offset, "columns": [c.name for c in cols],
            "runs": [run_row(r, vals, cols, children.get(r.id, 0)) for r, vals in zip(runs, values, strict=True)]}


def run_keys(call: UiCall) -> JsonDict:
    return call.store.ui_run_keys(call.strings("experiment_ids"))


def run_groups(call: UiCall) -> JsonDict:
    q, cols = query(call), columns(call)
    text = call.string("group_by", need=True)
    assert text is not None
    group_by = parsed("group_by", text, parse_column)
    if group_by.type not in ("parameter", "tag"):
        raise UsageError(v.invalid_value("group_by", text, "group by params.<key> or tags.<key>."))
    return {"group_by": text, "groups": call.store.ui_run_groups(q, group_by, cols)}


def csv_header(cols: list[Column]) -> list[str]:
    return ["run_id", "run_name", "experiment_id", "status", "start_time", "end_time", *[c.name for c in cols]]


def csv_page(call: UiCall, q: RunsQuery, cols: list[Column], order: list[tuple[Column, bool]], offset: int) -> tuple[bytes, int]:
    """One page of the export as CSV bytes (no header) and how many runs it held; run in a worker thread."""
    _, runs, values = call.store.ui_runs_table(q, cols, order, offset, EXPORT_PAGE, count=False)
    out = io.StringIO()
    writer = csv.writer(out)
    for run, vals in zip(runs, values, strict=True):
        writer.writerow([run.id, run.name or "", run.experiment_id, run.status, _iso(run.start_time),
                         _iso(run.end_time), *["" if x is None else _cell(c, x) for c, x in zip(cols, vals, strict=True)]])
    return out.getvalue().encode(), len(runs)


def header_bytes(cols: list[Column]) -> bytes:
    out = io.StringIO()
    csv.writer(out).writerow(csv_header(cols))
    return out.getvalue().encode()


def _iso(seconds: float | None) -> str:
    if seconds is None:
        return ""
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")

