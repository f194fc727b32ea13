"""The MLflow filter/order_by parser and its SQL: every comparator per key type, quoting, errors in one line."""
from __future__ import annotations

import sqlite3

import pytest

from proj.errors import UsageError
from proj.tracking.search import (
    ATTRIBUTE,
    METRIC,
    PARAM,
    TAG,
    Clause,
    compile_filter,
    compile_order_by,
    page_offset,
    page_token,
    parse_filter,
    parse_order_by_list,
)
from proj.tracking.sqlite_schema import LATEST_FROM_HISTORY


@pytest.mark.parametrize("op", ["=", "!=", "<", "<=", ">", ">="])
def test_metric_comparators(op: str) -> None:
    assert parse_filter(f"metrics.loss {op} 0.5") == [Clause(METRIC, "loss", op, 0.5)]
    assert parse_filter(f"attributes.start_time {op} 1700000000000")[0].comparator == op


@pytest.mark.parametrize("op", ["=", "!=", "LIKE", "ILIKE", "like", "ilike"])
@pytest.mark.parametrize(("prefix", "kind"), [("params", PARAM), ("param", PARAM), ("tags", TAG), ("tag", TAG),
                                              ("attributes", ATTRIBUTE), ("attr", ATTRIBUTE), ("run", ATTRIBUTE)])
def test_string_comparators(op: str, prefix: str, kind: str) -> None:
    key = "status" if kind == ATTRIBUTE else "alpha"
    assert parse_filter(f"{prefix}.{key} {op} 'x%'") == [Clause(kind, key, op.upper(), "x%")]


def test_in_and_not_in_for_run_id_and_aliases() -> None:
    assert parse_filter("attributes.run_id IN ('a', \"b\")") == [Clause(ATTRIBUTE, "run_id", "IN", ["a", "b"])]
    assert parse_filter("run_id not in ('a')") == [Clause(ATTRIBUTE, "run_id", "NOT IN", ["a"])]
    assert parse_filter("created > 1") == [Clause(ATTRIBUTE, "start_time", ">", 1.0)]
    assert parse_filter("`Run name` = 'x'") == [Clause(ATTRIBUTE, "run_name", "=", "x")]
    assert parse_filter("metric.a = 1 and metrics.b = -2.5e1")[1] == Clause(METRIC, "b", "=", -25.0)


def test_quoted_keys_and_values() -> None:
    assert parse_filter("metrics.`my metric` < 1 AND tags.\"a b\" = \"v w\" aNd params.x.y = '1'") == [
        Clause(METRIC, "my metric", "<", 1.0), Clause(TAG, "a b", "=", "v w"), Clause(PARAM, "x.y", "=", "1")]
    assert parse_filter("`metrics`.`a.b` > 0") == [Clause(METRIC, "a.b", ">", 0.0)]
    assert parse_filter("") == [] and parse_filter(None) == []


@pytest.mark.parametrize(("text", "named"), [
    ("metrics.a < 1 or metrics.b > 2", "'or'"),
    ("metrics.a LIKE 1", "'LIKE'"),
    ("metrics.a IN ('1')", "run_id"),
    ("metrics.a = 'x'", "numeric"),
    ("params.a = 1", "quoted string"),
    ("params.a < '1'", "'<'"),
    ("tags.a IN ('1')", "run_id"),
    ("status > 'x'", "'>'"),
    ("start_time LIKE 1", "'LIKE'"),
    ("start_time = 'x'", "numeric"),
    ("bogus.a = 1", "'bogus'"),
    ("datasets.size = 'x'", "dataset key"),
    ("metrics.a IS NULL", "'IS NULL'"),
    ("attributes.status IS NULL", "'IS NULL'"),
    ("lifecycle_stage = 'active'", "'lifecycle_stage'"),
    ("metrics.a == 1", "'=='"),
    ("metrics.a", "comparator"),
    ("metrics.a < 1 and", "the end"),
    ("run_id IN ('a'", "the end"),
    ("run_id = ('a')", "single value"),
])
def test_bad_filters_are_one_usage_line(text: str, named: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_filter(text)
    assert "\n" not in str(info.value) and named in str(info.value) and repr(text) in str(info.value)


def test_order_by() -> None:
    orders = parse_order_by_list(["metrics.loss ASC", "attributes.start_time desc", "params.alpha", "`tags`.`a b`"])
    assert [(o.type, o.key, o.ascending) for o in orders] == [
        (METRIC, "loss", True), (ATTRIBUTE, "start_time", False), (PARAM, "alpha", True), (TAG, "a b", True)]
    for bad, named in [(["metrics.loss UP"], "'UP'"), (["metrics.a", "metric.a desc"], "duplicate"),
                       (["metrics.a asc desc"], "'desc'"), (["nope"], "'nope'")]:
        with pytest.raises(UsageError, match=named):
            parse_order_by_list(bad)


def test_sql_uses_placeholders_only() -> None:
    evil = "x'; DROP TABLE runs; --"
    where, args = compile_filter(parse_filter(f"params.`{evil}` = \"{evil}\" and metrics.m >= 2"))
    assert evil not in " ".join(where) and args == [evil, evil, "m", 2.0]
    terms, targs = compile_order_by(parse_order_by_list(["params.a DESC"]))
    assert terms[-2:] == ["r.start_time DESC", "r.id"] and targs == ["a", "a"]


def test_compiled_sql_runs_in_sqlite() -> None:
    """The fragments against a minimal copy of the tables: latest point per key, case rules of LIKE/ILIKE."""
    db = sqlite3.connect(":memory:")
    db.executescript("CREATE TABLE runs (id TEXT, name TEXT, status TEXT, user TEXT, start_time REAL, end_time REAL);"
                     "CREATE TABLE metrics (run_id TEXT, key TEXT, value REAL, step INTEGER, timestamp REAL);"
                     "CREATE TABLE params (run_id TEXT, key TEXT, value TEXT);"
                     "CREATE TABLE tags (run_id TEXT, key TEXT, value TEXT);"
                     "INSERT INTO runs VALUES ('a', 'Alpha', 'FINISHED', 'u', 1.5, 2), ('b', 'beta', 'FAILED', 'u', 3, NULL);"
                     "INSERT INTO metrics VALUES ('a','loss',9,0,1), ('a','loss',0.2,2,1), ('b','loss',0.1,1,5),"
                     " ('b','loss',0.7,1,6);"
                     "INSERT INTO params VALUES ('a','p','A_1'), ('b','p','ab1');")
    db.execute(f"CREATE VIEW latest_metrics AS {LATEST_FROM_HISTORY}")  # the store keeps it as a table

    def ids(text: str, order: tuple[str, ...] = ()) -> list[str]:
        where, args = compile_filter(parse_filter(text))
        terms, oargs = compile_order_by(parse_order_by_list(order))
        sql = "SELECT r.id FROM runs r" + (" WHERE " + " AND ".join(where) if where else "")
        return [row[0] for row in db.execute(sql + " ORDER BY " + ", ".join(terms), [*args, *oargs])]

    assert ids("metrics.loss < 0.5") == ["a"]  # b's latest is 0.7 (same step, newer timestamp)
    assert ids("params.p LIKE 'a%'") == ["b"] and ids("params.p ILIKE 'a%'") == ["b", "a"]
    assert ids("params.p LIKE 'A\\_1'") == ["a"] and ids("params.p LIKE 'a_1'") == ["b"]
    assert ids("run_name ILIKE 'ALPHA'") == ["a"] and ids("start_time = 1500") == ["a"]
    assert ids("end_time > 0") == ["a"] and ids("params.p != 'zz'") == ["b", "a"]
    assert ids("", ("metrics.loss DESC",)) == ["b", "a"] and ids("", ("params.missing",)) == ["b", "a"]
    assert ids("run_id NOT IN ('a')") == ["b"]


def test_page_tokens() -> None:
    assert page_offset(page_token(40)) == 40 and page_offset(None) == 0
    for bad in ("x", page_token(-1), "eyJhIjogMX0="):
        with pytest.raises(UsageError, match="page token"):
            page_offset(bad)
