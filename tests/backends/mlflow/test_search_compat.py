"""proj's filter/order_by parser accepts and refuses the same strings as MLflow's own SearchUtils (real mlflow)."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

from proj.errors import UsageError
from proj.tracking.search import parse_filter, parse_order_by_list

FILTERS = [
    "metrics.loss < 0.5 and params.alpha = '0.1'", "metrics.`my metric` >= 1", "metric.loss != 2",
    "params.alpha LIKE '0.%'", "param.alpha ILIKE '%A'", "tags.`mlflow.runName` = \"x\"", "tag.t != 'y'",
    "attributes.status = 'FINISHED'", "attr.run_id IN ('a', 'b')", "run.run_id NOT IN ('a')",
    "status != 'FAILED' AND start_time > 5", "created < 10", "attributes.run_name LIKE 'a%'",
    "metrics.loss < 0.5 or params.alpha = '0.1'", "metrics.loss LIKE 1", "params.alpha = 0.1",
    "foo.alpha = '1'", "attributes.colour = 'red'", "status IN ('FAILED')", "params.a IN ('1')",
    "start_time = 'x'", "metrics.loss = 'x'",
]
ORDERS = [["metrics.loss ASC"], ["attributes.start_time DESC"], ["params.alpha"], ["metrics.loss UP"],
          ["tags.`a b` desc"], ["nope.x"], ["attributes.colour"]]
SCRIPT = """
import json, sys
from mlflow.utils.search_utils import SearchUtils as S
filters, orders = json.loads(sys.argv[1])
def check_filter(f):
    for c in S.parse_search_filter(f):  # then the comparator checks the SQL store makes
        t, k, op = c["type"], S.translate_key_alias(c["key"]), c["comparator"].upper()
        if not (S.is_string_attribute(t, k, op) or S.is_numeric_attribute(t, k, op) or S.is_metric(t, op)
                or S.is_param(t, op) or S.is_tag(t, op)):
            raise ValueError(t)
def check_orders(o):
    for clause in o:
        t, k, _ = S.parse_order_by_for_search_runs(clause)
        k = S.translate_key_alias(k)
        if not (S.is_string_attribute(t, k, "=") or S.is_numeric_attribute(t, k, "=") or S.is_metric(t, "=")
                or S.is_param(t, "=") or S.is_tag(t, "=")):
            raise ValueError(t)
def ok(fn, x):
    try:
        fn(x)
        return True
    except Exception:
        return False
print(json.dumps([[ok(check_filter, f) for f in filters], [ok(check_orders, o) for o in orders]]))
"""


def _accepts(fn, value) -> bool:
    try:
        fn(value)
        return True
    except UsageError:
        return False


def test_proj_and_mlflow_accept_the_same_filters(mlflow_venv: Path) -> None:
    out = subprocess.run([str(mlflow_venv / "bin" / "python"), "-c", SCRIPT, json.dumps([FILTERS, ORDERS])],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    theirs_f, theirs_o = json.loads(out.stdout)
    ours_f = [_accepts(parse_filter, f) for f in FILTERS]
    ours_o = [_accepts(parse_order_by_list, o) for o in ORDERS]
    assert dict(zip(FILTERS, ours_f, strict=True)) == dict(zip(FILTERS, theirs_f, strict=True))
    assert [str(o) for o, a in zip(ORDERS, ours_o, strict=True) if a] == \
        [str(o) for o, a in zip(ORDERS, theirs_o, strict=True) if a]
    assert 5 <= sum(ours_f) < len(FILTERS)  # the list holds both kinds
