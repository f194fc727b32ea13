"""Metric history: one key of one run (pages of up to 25,000, as the client asks) and the UI's bulk interval."""
from __future__ import annotations

from proj.errors import UsageError
from proj.server.protocol import json as mj
from proj.server.protocol import validate as v
from proj.server.protocol.call import Call, JsonDict

# A request without max_results is answered whole, as MLflow's server does; the store still pages it.
_ALL = 2**62


def get_history(call: Call) -> JsonDict:
    body = call.body
    run_id = v.run_id(body)
    key = v.string(body, "metric_key", need=True)
    assert key is not None
    limit = v.integer(body, "max_results")
    if limit is not None and limit <= 0:
        raise UsageError(f"Invalid value {limit} for parameter 'max_results' supplied. It must be a positive "
                         f"integer.")
    rows, token = call.store.metric_history_wire(run_id, key, max_results=limit or _ALL,
                                                 page_token=v.string(body, "page_token") or None)
    # the mapping inlined (rows come JSON-ready from the store): this loop is most of a long history's time
    out: JsonDict = {"metrics": [{"key": key, "value": value, "timestamp": ts, "step": step}
                                 for value, step, ts, _ in rows]} if rows else {}
    if token:
        out["next_page_token"] = token
    return out


def get_history_bulk_interval(call: Call) -> JsonDict:
    body = call.body
    run_ids = [str(r) for r in v.array(body, "run_ids")]
    if not run_ids:
        raise v.missing("run_ids")
    if len(run_ids) > v.MAX_RUNS_BULK_HISTORY:
        raise UsageError(f"GetMetricHistoryBulkInterval request must specify at most {v.MAX_RUNS_BULK_HISTORY} "
                         f"run_ids. Received {len(run_ids)} run_ids.")
    key = v.string(body, "metric_key", need=True)
    assert key is not None
    limit = v.integer(body, "max_results", v.MAX_RESULTS_PER_RUN)
    assert limit is not None
    if not 1 <= limit <= v.MAX_RESULTS_PER_RUN:
        raise UsageError(f"max_results must be between 1 and {v.MAX_RESULTS_PER_RUN}.")
    start, end = v.integer(body, "start_step"), v.integer(body, "end_step")
    if (start is None) != (end is None):
        raise UsageError("If either start step or end step are specified, both must be specified.")
    if start is not None and end is not None and start > end:
        raise UsageError(f"end_step must be greater than start_step. Found start_step={start} and end_step={end}.")
    points = call.store.metric_history_bulk_interval(run_ids, key, limit, start_step=start, end_step=end)
    return {"metrics": [mj.metric_with_run(run_id, p) for run_id, p in points]} if points else {}
