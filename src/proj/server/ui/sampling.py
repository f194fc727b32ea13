"""``metrics/sampled``: several runs' histories of one metric, downsampled on the server keeping extremes."""
from __future__ import annotations

from proj.errors import UsageError
from proj.server.artifacts import exact_run
from proj.server.protocol import validate as v
from proj.server.ui.call import JsonDict, UiCall
from proj.tracking.ui_records import SAMPLE_X

MAX_RUNS = 100
MAX_POINTS = 100_000


def sampled(call: UiCall) -> JsonDict:
    run_ids = call.strings("run_ids")
    if not run_ids:
        raise v.missing("run_ids")
    if len(run_ids) > MAX_RUNS:
        raise UsageError(v.invalid_value("run_ids", len(run_ids), f"at most {MAX_RUNS} runs per request."))
    key = call.string("metric_key", need=True)
    assert key is not None
    x = call.choice("x", SAMPLE_X, "step")
    points = call.integer("points", 1000, low=4, high=MAX_POINTS)
    assert points is not None
    x_min, x_max = call.number("x_min"), call.number("x_max")
    if x_min is not None and x_max is not None and x_min > x_max:
        raise UsageError(v.invalid_value("x_min", x_min, f"it must not be above x_max ({x_max})."))
    store = call.store
    for run_id in run_ids:
        exact_run(store, v.check_run_id(run_id, "run_ids"))  # an unknown run is RESOURCE_DOES_NOT_EXIST
    series = []
    for run_id in run_ids:
        s = store.ui_sampled(run_id, key, x, points, x_min, x_max)
        series.append({"run_id": run_id, "total": s.total, "sampled": s.sampled, "x": s.x, "y": s.y})
    return {"metric_key": key, "x": x, "series": series}
