"""The web UI's metric summaries (schema step 3): metric_blocks and latest_metrics' min/max, written with the points,
backfilled by the migration, and what metrics/sampled and the runs table's :min/:max sort read from them."""
from __future__ import annotations

import math
import random
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers.stores import BACKENDS, make_store, raw
from proj.tracking import migrations
from proj.tracking.records import MetricPoint
from proj.tracking.search import METRIC
from proj.tracking.sqlite import SqliteStore
from proj.tracking.sqlite_schema import BLOCK_POINTS
from proj.tracking.ui_records import Column, RunsQuery

Point = tuple[str, float, int, float]  # key, value, step, timestamp, in insertion order
_BLOCK_COLUMNS = ("run_id, key, block, n, min_value, min_step, min_ts, max_value, max_step, max_ts, first_step,"
                  " first_ts, last_step, last_ts")


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> SqliteStore:
    return make_store(request, tmp_path)  # type: ignore[return-value]


def _log(store: SqliteStore, points: list[Point], rng: random.Random, run_id: str | None = None) -> str:
    """Points logged through the client path in batches of random sizes (keys interleaved within a batch)."""
    run_id = run_id or store.create_client_run("0", "u", 1000.0, {}, None).id
    i = 0
    while i < len(points):
        size = rng.choice((1, 1, 7, 100, 1000))
        store.log_client_batch(run_id, [MetricPoint(*p) for p in points[i:i + size]])
        i += size
    return run_id


def _stored(x: float | None) -> float | None:
    return None if x is None or x != x else x


def _expected_blocks(run_id: str, points: list[Point]) -> list[tuple[Any, ...]]:
    """Brute force: per key, chunks of BLOCK_POINTS points in insertion order; an extreme is the first point
    holding it, NaN (stored NULL) in neither."""
    out = []
    for key in sorted({p[0] for p in points}):
        mine = [p for p in points if p[0] == key]
        for b in range(0, len(mine), BLOCK_POINTS):
            chunk = mine[b:b + BLOCK_POINTS]
            numbers = [p for p in chunk if not math.isnan(p[1])]
            lo = min(numbers, key=lambda p: p[1]) if numbers else None
            hi = max(numbers, key=lambda p: p[1]) if numbers else None  # max() keeps the first of ties too
            out.append((run_id, key, b // BLOCK_POINTS, len(chunk),
                        lo and lo[1], lo and lo[2], lo and lo[3], hi and hi[1], hi and hi[2], hi and hi[3],
                        chunk[0][2], chunk[0][3], chunk[-1][2], chunk[-1][3]))
    return out


def _blocks(store: SqliteStore, run_id: str) -> list[tuple[Any, ...]]:
    rows = raw(store, f"SELECT {_BLOCK_COLUMNS} FROM metric_blocks WHERE run_id = '{run_id}' ORDER BY key, block")
    return [tuple(_stored(v) if isinstance(v, float) else v for v in r) for r in rows]


def _history(rng: random.Random, keys: tuple[str, ...], count: int, *, shuffled_steps: bool = False) -> list[Point]:
    specials = [math.nan, math.inf, -math.inf, 5.0, 5.0]
    steps = list(range(count))
    if shuffled_steps:
        for _ in range(count // 20):  # some points logged out of step order
            a, b = rng.randrange(count), rng.randrange(count)
            steps[a], steps[b] = steps[b], steps[a]
    out = []
    for i in range(count):
        value = rng.choice(specials) if rng.random() < 0.02 else rng.gauss(0, 1)
        out.append((rng.choice(keys), value, steps[i], 1.7e9 + i * 0.25))
    return out


def test_blocks_are_written_with_the_points_on_both_backends(store: SqliteStore) -> None:
    rng = random.Random(3)
    points = _history(rng, ("loss", "acc", "lr"), 5000, shuffled_steps=True)
    run_id = _log(store, points, rng)
    assert _blocks(store, run_id) == _expected_blocks(run_id, points)
    for key in ("loss", "acc", "lr"):
        numbers = [p[1] for p in points if p[0] == key and not math.isnan(p[1])]
        found = raw(store, f"SELECT min_value, max_value FROM latest_metrics WHERE run_id = '{run_id}' AND key = '{key}'")
        assert found == [(min(numbers), max(numbers))]


def test_the_latest_point_of_a_batch_is_its_last_of_equal_step_and_time(store: SqliteStore) -> None:
    run_id = store.create_client_run("0", "u", 1000.0, {}, None).id
    store.log_client_batch(run_id, [MetricPoint("m", v, s, t) for v, s, t in
                                    ((1.0, 5, 10.0), (2.0, 5, 10.0), (3.0, 4, 99.0), (4.0, 5, 9.0))])
    found = raw(store, f"SELECT value, step, min_value, max_value FROM latest_metrics WHERE run_id = '{run_id}'")
    assert found == [(2.0, 5, 1.0, 4.0)]


def test_a_point_logged_again_is_stored_once_as_mlflow_does(store: SqliteStore) -> None:
    """Equal key, step, timestamp and value: MLflow's SQL store keeps one; so a batch a client sends again (its
    answer lost to a restart) counts once. A different value at the same step and time is another point."""
    rng = random.Random(5)
    run_id = store.create_client_run("0", "u", 1000.0, {}, None).id
    points = _history(rng, ("loss", "acc"), 3000)
    first = [MetricPoint(*p) for p in points[:2000]]
    store.log_client_batch(run_id, first)
    store.log_client_batch(run_id, first[1500:] + [MetricPoint(*p) for p in points[2000:]])  # half a retry
    store.log_client_batch(run_id, [MetricPoint(*p) for p in points[2990:]] * 2)  # all stored, repeated in itself
    nan_at = [MetricPoint("n", math.nan, 1, 5.0), MetricPoint("n", math.nan, 1, 5.0), MetricPoint("n", 2.0, 1, 5.0)]
    store.log_client_batch(run_id, nan_at)
    store.log_client_batch(run_id, nan_at[:1])
    assert _blocks(store, run_id) == _expected_blocks(run_id, points + [("n", math.nan, 1, 5.0), ("n", 2.0, 1, 5.0)])
    counts = dict(raw(store, f"SELECT key, count(*) FROM metrics WHERE run_id = '{run_id}' GROUP BY key"))
    assert counts == {"loss": sum(p[0] == "loss" for p in points), "acc": sum(p[0] == "acc" for p in points), "n": 2}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32), count=st.integers(1, 2600), keys=st.integers(1, 3), shuffled=st.booleans(),
       nan_only=st.booleans())
def test_blocks_equal_the_brute_force_on_random_histories(tmp_path_factory: pytest.TempPathFactory, seed: int,
                                                          count: int, keys: int, shuffled: bool,
                                                          nan_only: bool) -> None:
    rng = random.Random(seed)
    store = SqliteStore(tmp_path_factory.mktemp("s"))
    points = _history(rng, ("a", "b", "c")[:keys], count, shuffled_steps=shuffled)
    if nan_only:  # a block of NaN only has no extremes
        points = [(k, math.nan if k == "a" else v, s, t) for k, v, s, t in points]
    run_id = _log(store, points, rng)
    assert _blocks(store, run_id) == _expected_blocks(run_id, points)
    store.close()


def _expected_sample(points: list[Point], x: str, asked: int) -> tuple[list[Any], list[Any]]:
    """Brute force of the block path: buckets of [first x, last x]; per bucket the min and the max among the
    blocks' extremes at their own x; plus the first and last point."""
    at_step = x == "step"
    xs = [p[2] if at_step else p[3] for p in points]
    lo, hi = min(xs), max(xs)
    buckets = max(1, (asked - 2) // 2)
    width = (hi - lo) / buckets
    lows: dict[int, Point] = {}
    highs: dict[int, Point] = {}
    for b in range(0, len(points), BLOCK_POINTS):
        numbers = [p for p in points[b:b + BLOCK_POINTS] if not math.isnan(p[1])]
        if not numbers:
            continue
        for point, kept, sign in ((min(numbers, key=lambda p: p[1]), lows, -1),
                                  (max(numbers, key=lambda p: p[1]), highs, 1)):
            at = point[2] if at_step else point[3]
            bucket = min(buckets - 1, max(i for i in range(buckets) if lo + i * width <= at))
            if bucket not in kept or (point[1] - kept[bucket][1]) * sign > 0:
                kept[bucket] = point
    order = (lambda p: (p[2], p[3])) if at_step else (lambda p: (p[3], p[2]))
    chosen = {(p[2], p[3], _stored(p[1])) for p in (*lows.values(), *highs.values())}
    chosen |= {(p[2], p[3], _stored(p[1])) for p in (min(points, key=order), max(points, key=order))}
    ordered = sorted(chosen, key=lambda c: (c[0], c[1]) if at_step else (c[1], c[0]))
    wire = ["NaN" if v is None else "Infinity" if v == math.inf else "-Infinity" if v == -math.inf else v
            for _, _, v in ordered]
    return [c[0] if at_step else int(c[1] * 1000 + 0.5) for c in ordered], wire


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32), count=st.integers(4 * BLOCK_POINTS, 7 * BLOCK_POINTS), shuffled=st.booleans(),
       x=st.sampled_from(("step", "wall")))
def test_sampling_from_blocks_equals_the_brute_force(tmp_path_factory: pytest.TempPathFactory, seed: int,
                                                     count: int, shuffled: bool, x: str) -> None:
    rng = random.Random(seed)
    store = SqliteStore(tmp_path_factory.mktemp("s"))
    points = _history(rng, ("m",), count, shuffled_steps=shuffled)
    run_id = _log(store, points, rng)
    series = store.ui_sampled(run_id, "m", x, 10)  # 4 buckets: at least a block each, so from the blocks
    assert series.sampled and series.total == count
    assert (series.x, series.y) == _expected_sample(points, x, 10)
    numbers = [p[1] for p in points if not math.isnan(p[1])]
    wire = {"Infinity": math.inf, "-Infinity": -math.inf}
    got = [wire.get(v, v) for v in series.y if v != "NaN"]
    assert min(numbers) in got and max(numbers) in got  # the extremes always survive
    store.close()


def test_a_spike_survives_at_any_zoom_and_a_small_window_reads_the_points(store: SqliteStore) -> None:
    points: list[Point] = [("m", math.sin(i / 50), i, 1.7e9 + i) for i in range(60_000)]
    points[31_337] = ("m", 1e9, 31_337, 1.7e9 + 31_337)
    run_id = _log(store, points, random.Random(1))
    for window in ((None, None), (30_000, 40_000), (31_000, 31_500)):
        series = store.ui_sampled(run_id, "m", "step", 40, *window)
        assert 1e9 in series.y and len(series.x) <= 40
        if window[0] is not None:
            assert series.total == window[1] - window[0] + 1 and series.x[0] == window[0]
    relative = store.ui_sampled(run_id, "m", "relative", 40)
    assert relative.x[0] == 0 and 1e9 in relative.y


def test_sort_by_min_and_max_equals_the_brute_force(store: SqliteStore) -> None:
    rng = random.Random(7)
    histories: dict[str, list[float]] = {}
    for i in range(30):
        values = [rng.choice((math.nan, rng.gauss(0, 1), rng.randint(-2, 2))) for _ in range(rng.randint(1, 12))]
        if i == 3:
            values = [math.nan]  # NaN only: no min, sorts last
        run_id = _log(store, [("loss", v, rng.randint(0, 5), 1.0 + s) for s, v in enumerate(values)], rng)
        histories[run_id] = values
    _log(store, [("other", 1.0, 0, 1.0)], rng)  # a run without the metric: last either way
    runs = store.ui_runs_table(RunsQuery(experiment_ids=["0"]), [], [], 0, 1000)[1]
    start = {r.id: r.start_time for r in runs}
    for aggregate, pick in (("min", min), ("max", max)):
        column = Column(METRIC, "loss", aggregate, f"metrics.loss:{aggregate}")
        for ascending in (True, False):
            _, page, shown = store.ui_runs_table(RunsQuery(experiment_ids=["0"]), [column], [(column, ascending)], 0,
                                                 1000)
            numbers = {rid: pick(n) for rid, h in histories.items() if (n := [v for v in h if not math.isnan(v)])}
            having = sorted(numbers, key=lambda r: (numbers[r] if ascending else -numbers[r], -start[r], r))
            lacking = sorted((r for r in start if r not in numbers), key=lambda r: (-start[r], r))
            assert [r.id for r in page] == having + lacking
            # as before step 3: a history of NaN only has a min of NaN (shown as such), a run without it None
            assert [v[0] for v in shown] == [numbers.get(r.id, "NaN" if r.id in histories else None) for r in page]


def _as_before_step_3(store: SqliteStore) -> None:
    """Make the store look as one written before schema step 3: no blocks, no min/max columns, meta at 2."""
    if type(store).__name__ == "PostgresStore":
        for sql in ("DROP TABLE metric_blocks", "ALTER TABLE latest_metrics DROP COLUMN min_value",
                    "ALTER TABLE latest_metrics DROP COLUMN max_value",
                    f"UPDATE meta SET value = '2' WHERE key = '{migrations.VERSION_KEY}'"):
            raw(store, sql)
        return
    with sqlite3.connect(store.root / "proj.db") as db:
        for sql in ("DROP TABLE metric_blocks", "DROP INDEX latest_metrics_by_min", "DROP INDEX latest_metrics_by_max",
                    "ALTER TABLE latest_metrics DROP COLUMN min_value", "ALTER TABLE latest_metrics DROP COLUMN max_value",
                    f"UPDATE meta SET value = '2' WHERE key = '{migrations.VERSION_KEY}'",
                    "UPDATE meta SET value = 'before-step-3' WHERE key = 'schema_revision'"):
            db.execute(sql)


def test_the_migration_backfills_blocks_and_extremes(store: SqliteStore) -> None:
    rng = random.Random(11)
    points = _history(rng, ("loss", "acc"), 3000, shuffled_steps=True)
    run_id = _log(store, points, rng)
    other = _log(store, [("loss", v, s, 1.0) for s, v in enumerate((3.0, math.nan, -1.0))], rng)
    written = (_blocks(store, run_id), _blocks(store, other),
               raw(store, "SELECT run_id, key, min_value, max_value FROM latest_metrics ORDER BY run_id, key"))
    _as_before_step_3(store)
    if type(store).__name__ == "PostgresStore":
        from proj.tracking.postgres import connect, upgrade

        db = connect(store.uri)  # type: ignore[attr-defined]
        assert upgrade(db) == (2, migrations.LATEST)
        db.close()
    else:
        store.close()
        SqliteStore(store.root).close()
    assert (_blocks(store, run_id), _blocks(store, other),
            raw(store, "SELECT run_id, key, min_value, max_value FROM latest_metrics ORDER BY run_id, key")) == written
    assert written[0] == _expected_blocks(run_id, points)
    assert raw(store, f"SELECT value FROM meta WHERE key = '{migrations.VERSION_KEY}'") == [(str(migrations.LATEST),)]


def test_a_read_only_handle_of_a_store_before_step_3_reads_the_history(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s")
    rng = random.Random(5)
    points: list[Point] = [("m", rng.gauss(0, 1), i, 1.7e9 + i) for i in range(3 * BLOCK_POINTS)]
    run_id = _log(store, points, rng)
    other = _log(store, [("m", 9.0, 0, 1.0)], rng)
    expected = store.ui_sampled(run_id, "m", "step", 10)
    store.close()
    _as_before_step_3(store)
    old = SqliteStore(tmp_path / "s", readonly=True)  # migrates nothing: stand-ins for the table and columns
    assert old.ui_sampled(run_id, "m", "step", 10).total == expected.total
    assert max(p[1] for p in points) in old.ui_sampled(run_id, "m", "step", 10).y
    column = Column(METRIC, "m", "max", "metrics.m:max")
    _, page, values = old.ui_runs_table(RunsQuery(experiment_ids=["0"]), [column], [(column, False)], 0, 10)
    assert [r.id for r in page] == [other, run_id] and values[1][0] == max(p[1] for p in points)
    old.close()
