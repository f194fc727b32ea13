"""Metric charts (static/js/chart.js) in a real browser over proj server's metrics/sampled: a 100,000-point run
with one spike, zoom refetching finer data, x axis modes, log scale, smoothing, overlays, groups, 1,000,000 points."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Iterator

import pytest

from browser.conftest import serve
from helpers.browser import readme_screenshot, wait_until
from helpers.servers import Server
from proj.tracking.open import open_store
from proj.tracking.records import MetricPoint

WIDTH = 1000  # the chart element's width in CSS pixels
SPIKE_STEP, SPIKE = 50_000, 100.0
BIG_MAX, BIG_MIN = 200.0, -50.0


def _log(store: Any, run_id: str, points: list[MetricPoint]) -> None:
    for i in range(0, len(points), 100_000):
        store.log_client_batch(run_id, points[i:i + 100_000])


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """spiky: 100,000 points near 1 with one 100 at step 50,000 (timestamps 10 ms apart); a..d: 500 exact points
    (a line from 0 to k); gappy: NaN and infinities between finite values."""
    store_dir = tmp_path_factory.mktemp("charts") / "store"
    store = open_store(str(store_dir), create=True)
    start = 1_700_000_000.0
    exp = store.create_experiment("charts")
    ids: dict[str, str] = {}

    def run(name: str, points: list[MetricPoint]) -> None:
        record = store.create_client_run(exp, "tester", start, {}, name)
        _log(store, record.id, points)
        store.update_run(record.id, status="FINISHED", end_time=start + 1000)
        ids[name] = record.id

    run("spiky", [MetricPoint("loss", SPIKE if s == SPIKE_STEP else 1 + 0.1 * math.sin(s / 700), s, start + s / 100)
                  for s in range(100_000)])
    for k, name in enumerate("abcd", start=1):
        run(name, [MetricPoint("acc", k * s / 499, s, start + s) for s in range(500)])
    values = [1.0, 2.0, math.nan, 4.0, math.inf, 5.0, -math.inf, 6.0]
    run("gappy", [MetricPoint("acc", v, s, start + s) for s, v in enumerate(values)])
    store.close()
    return store_dir, ids


@pytest.fixture(scope="module")
def big_run(runs: tuple[Path, dict[str, str]]) -> str:
    """A run of 1,000,000 points near 10 with one 200 and one -50 (logged only for the tests that need it)."""
    store = open_store(str(runs[0]))
    start = 1_700_000_000.0
    record = store.create_client_run(store.get_experiment_by_name("charts").id, "tester", start, {}, "big")
    big = [MetricPoint("loss", 10 + math.sin(s / 5000), s, start + s / 1000) for s in range(1_000_000)]
    big[123_457] = MetricPoint("loss", BIG_MAX, 123_457, start + 123.457)
    big[876_543] = MetricPoint("loss", BIG_MIN, 876_543, start + 876.543)
    _log(store, record.id, big)
    store.update_run(record.id, status="FINISHED", end_time=start + 1000)
    store.close()
    return record.id


@pytest.fixture(scope="module")
def ui_server(runs: tuple[Path, dict[str, str]], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with serve(runs[0], tmp_path_factory.mktemp("charts-logs")) as server:
        yield server


MOUNT = """async ([opts, width, where]) => {
  const {metricChart} = await import("/static/js/chart.js");
  const el = document.createElement("div");
  el.className = "test-chart";
  el.style.width = width + "px";
  (where ? document.querySelector(where) : document.body).append(el);
  (window.testCharts ||= []).push(metricChart(el, opts));
}"""


def mount(page: Any, opts: dict[str, Any], width: int = WIDTH, where: str | None = None) -> Any:
    """A chart of ``opts`` on the page (the shell is loaded first, as every page that uses charts has it)."""
    if not page.url.startswith("http"):
        page.goto("/#/experiments")
        page.wait_for_selector("main h1")
    page.evaluate(MOUNT, [opts, width, where])
    chart = page.locator(".test-chart").last
    wait_ready(chart)
    return chart


# generous bounds for a loaded 2-core machine (never a timing assertion: a draw that comes is all that counts)
WAIT = 60.0


def wait_ready(chart: Any) -> None:
    wait_until(lambda: chart.get_attribute("data-ready") == "1", timeout=WAIT, what="the chart drawn")


def drag(page: Any, chart: Any, start: float, end: float) -> None:
    """Drag the mouse across the plot from ``start`` to ``end`` (fractions of its width), as a person zooms."""
    box = chart.locator(".u-over").bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] * start, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * (start + end) / 2, y, steps=4)
    page.mouse.move(box["x"] + box["width"] * end, y, steps=4)
    page.mouse.up()


def data(chart: Any) -> dict[str, str]:
    return chart.evaluate("el => ({...el.dataset})")


def test_a_100000_point_run_draws_about_a_width_of_points_with_its_spike(page: Any, runs: Any) -> None:
    chart = mount(page, {"runIds": [runs[1]["spiky"]], "key": "loss"})
    drawn = data(chart)
    plot = chart.locator(".chart-plot")
    width = plot.evaluate("el => el.clientWidth")
    assert WIDTH * 0.9 <= width <= WIDTH
    assert width / 4 <= int(drawn["points"]) <= 2 * width, drawn
    assert float(drawn["ymax"]) == SPIKE, drawn  # one point in 100,000: kept by the bucket's max
    assert chart.locator("canvas").count() == 1
    label = plot.get_attribute("aria-label")
    assert "loss" in label and "spiky" in label
    assert chart.locator(".chart-legend-item").all_inner_texts()[0].startswith("spiky")
    chart.locator(".chart-table summary").click()  # the table a screen reader can read
    assert chart.locator(".chart-table tbody tr").count() == 50
    assert page.errors == []


def test_zooming_by_dragging_refetches_finer_data_and_keeps_the_spike(page: Any, runs: Any) -> None:
    chart = mount(page, {"runIds": [runs[1]["spiky"]], "key": "loss"})
    before = data(chart)
    # drag over the middle tenth of the plot: steps ~45,000..55,000 around the spike
    fetched: list[str] = []
    page.on("request", lambda r: fetched.append(r.url) if "metrics/sampled" in r.url else None)
    drag(page, chart, 0.45, 0.55)
    wait_until(lambda: data(chart).get("zoomed") == "1" and data(chart).get("ready") == "1", WAIT, "the zoomed draw")
    after = data(chart)
    assert fetched and "x_min=" in fetched[-1] and "x_max=" in fetched[-1], fetched
    lo, hi = float(after["xmin"]), float(after["xmax"])
    assert 40_000 <= lo < SPIKE_STEP < hi <= 60_000, after
    # the window held about a tenth of the first draw's points; now it holds about a chart width of them
    window_share = (hi - lo) / 100_000
    assert int(after["points"]) > 4 * int(before["points"]) * window_share, (before, after)
    assert float(after["ymax"]) == SPIKE
    chart.get_by_role("button", name="Reset zoom").click()
    wait_until(lambda: data(chart).get("zoomed") == "0" and data(chart).get("ready") == "1", WAIT, "the reset draw")
    assert float(data(chart)["xmax"]) == 99_999
    assert page.errors == []


def test_x_axis_modes_step_wall_and_relative_time(page: Any, runs: Any) -> None:
    chart = mount(page, {"runIds": [runs[1]["a"]], "key": "acc"})
    assert (data(chart)["xmin"], data(chart)["xmax"]) == ("0", "499")
    select = chart.get_by_label("X axis")
    select.select_option("wall")
    wait_until(lambda: data(chart).get("x") == "wall" and data(chart).get("ready") == "1", WAIT, "wall time draw")
    start_ms = 1_700_000_000_000
    assert (float(data(chart)["xmin"]), float(data(chart)["xmax"])) == (start_ms, start_ms + 499_000)
    select.select_option("relative")
    wait_until(lambda: data(chart).get("x") == "relative" and data(chart).get("ready") == "1", WAIT, "relative draw")
    assert (float(data(chart)["xmin"]), float(data(chart)["xmax"])) == (0, 499_000)
    ticks = data(chart)["xticks"].split("|")  # the labels drawn under the x axis
    assert all(t.endswith("s") for t in ticks) and any("m " in t for t in ticks), ticks  # durations, not ms
    drag(page, chart, 0.5, 1.0)  # a zoom window in relative milliseconds
    wait_until(lambda: data(chart).get("zoomed") == "1" and data(chart).get("ready") == "1", WAIT, "the zoomed draw")
    assert 200_000 <= float(data(chart)["xmin"]) <= 300_000 and float(data(chart)["xmax"]) == 499_000, data(chart)
    assert 200 <= int(data(chart)["points"]) <= 300
    select.select_option("step")  # another x axis starts unzoomed
    wait_until(lambda: data(chart).get("x") == "step" and data(chart).get("ready") == "1", WAIT, "step draw")
    assert data(chart)["zoomed"] == "0" and data(chart)["points"] == "500"
    assert page.errors == []


def test_log_scale_leaves_out_values_at_or_below_zero(page: Any, runs: Any) -> None:
    chart = mount(page, {"runIds": [runs[1]["a"]], "key": "acc"})
    assert float(data(chart)["ymin"]) == 0 and data(chart)["points"] == "500"
    chart.get_by_label("log scale").check()
    wait_until(lambda: data(chart).get("log") == "1", what="log draw", timeout=WAIT)
    assert data(chart)["points"] == "499" and float(data(chart)["ymin"]) == pytest.approx(1 / 499)
    assert page.errors == []


def test_smoothing_changes_the_drawn_line(page: Any, runs: Any) -> None:
    chart = mount(page, {"runIds": [runs[1]["spiky"]], "key": "loss"})
    assert float(data(chart)["lineYmax"]) == SPIKE
    chart.get_by_label("Smoothing").fill("0.9")
    wait_until(lambda: data(chart).get("smoothing") == "0.9", what="smoothed draw", timeout=WAIT)
    smoothed = data(chart)
    assert float(smoothed["lineYmax"]) < SPIKE / 4, smoothed  # the smoothed line flattens the spike...
    assert float(smoothed["ymax"]) == SPIKE  # ...and the raw line under it still shows it
    assert chart.locator(".chart-smooth-value").inner_text() == "0.90"
    assert page.errors == []


def test_three_runs_overlaid_have_three_series_in_the_legend(page: Any, runs: Any) -> None:
    ids = runs[1]
    chart = mount(page, {"runIds": [ids["a"], ids["b"], ids["c"]], "key": "acc"})
    items = chart.locator(".chart-legend-item")
    assert items.count() == 3 and data(chart)["series"] == "3"
    assert [t.split(" ")[0] for t in items.all_inner_texts()] == ["a", "b", "c"]
    assert float(data(chart)["ymax"]) == 3.0 and data(chart)["points"] == "1500"
    colours = items.locator(".swatch").evaluate_all("els => els.map(e => getComputedStyle(e).backgroundColor)")
    assert len(set(colours)) == 3
    # the cursor over the plot shows each run's value there; a swatch hides its run
    box = chart.locator(".u-over").bounding_box()
    page.mouse.move(box["x"] + box["width"] - 2, box["y"] + box["height"] / 2)
    label = wait_until(lambda: chart.locator(".chart-legend-x").inner_text(), WAIT, "the step under the cursor")
    step = int(label.removeprefix("Step: "))
    assert step > 450 and [float(v) for v in items.locator(".value").all_inner_texts()] == pytest.approx(
        [k * step / 499 for k in (1, 2, 3)], rel=1e-5)
    items.nth(1).locator(".swatch").click()
    assert "hidden" in items.nth(1).get_attribute("class")
    assert items.nth(1).locator(".swatch").get_attribute("aria-pressed") == "false"
    # the theme toggle redraws in the dark palette
    page.locator("#theme").click()
    wait_until(lambda: items.locator(".swatch").evaluate_all(
        "els => els.map(e => getComputedStyle(e).backgroundColor)") != colours, WAIT, "dark colours")
    assert items.count() == 3
    assert page.errors == []


def test_groups_draw_a_mean_line_with_a_min_max_band(page: Any, runs: Any) -> None:
    ids = runs[1]
    groups = [{"label": "small", "runIds": [ids["a"], ids["b"]]}, {"label": "large", "runIds": [ids["b"], ids["c"], ids["d"]]}]
    chart = mount(page, {"groups": groups, "key": "acc"})
    drawn = data(chart)
    items = chart.locator(".chart-legend-item").all_text_contents()
    assert drawn["series"] == "2" and items[0].startswith("small (2 runs)") and items[1].startswith("large (3 runs)")
    assert float(drawn["ymax"]) == 4.0  # the band of "large" reaches its highest member (d: 0..4)
    assert float(drawn["lineYmax"]) == 3.0  # the mean of b, c and d (2, 3, 4) at the last step
    chart.get_by_label("Band").select_option("std")
    wait_until(lambda: data(chart)["ymax"] != "4", WAIT, "the std band")
    assert float(data(chart)["ymax"]) == pytest.approx(3 + math.sqrt(2 / 3))  # mean + std of 2, 3, 4
    assert float(data(chart)["lineYmax"]) == 3.0 and float(data(chart)["ymin"]) == 0
    assert page.errors == []


def test_nan_and_infinities_are_gaps(page: Any, runs: Any) -> None:
    chart = mount(page, {"runIds": [runs[1]["gappy"]], "key": "acc"})
    assert data(chart)["points"] == "5" and float(data(chart)["ymax"]) == 6.0 and float(data(chart)["ymin"]) == 1.0
    assert page.errors == []


def test_a_metric_no_run_logged_says_so_without_a_plot(page: Any, runs: Any) -> None:
    chart = mount(page, {"runIds": [runs[1]["a"], runs[1]["b"]], "key": "never-logged"})
    assert data(chart)["points"] == "0" and chart.locator("canvas").count() == 0
    assert chart.locator(".chart-message").inner_text() == "No values of never-logged."
    assert page.errors == []


@pytest.mark.slow
def test_a_1000000_point_metric_draws_with_its_extremes(page: Any, big_run: str) -> None:
    chart = mount(page, {"runIds": [big_run], "key": "loss"})
    drawn = data(chart)
    assert float(drawn["ymax"]) == BIG_MAX and float(drawn["ymin"]) == BIG_MIN, drawn
    assert int(drawn["points"]) <= 2 * WIDTH
    assert "1,000,000 pts" in chart.locator(".chart-legend-item").inner_text()  # the legend says how many there are
    assert page.errors == []


@pytest.mark.slow
def test_screenshot_for_the_readme(page: Any, runs: Any, big_run: str) -> None:
    ids = runs[1]
    page.goto("/#/experiments")
    page.wait_for_selector("main h1")
    page.evaluate("""() => {
      const main = document.getElementById("main");
      main.replaceChildren();
      const grid = document.createElement("div");
      grid.id = "shots";
      grid.style.cssText = "display:grid;grid-template-columns:1fr 1fr;gap:0 24px";
      main.append(grid);
    }""")
    mount(page, {"runIds": [ids["spiky"]], "key": "loss", "height": 300}, width=640, where="#shots")
    mount(page, {"runIds": [ids["a"], ids["b"], ids["c"]], "key": "acc", "height": 300, "smoothing": 0.6},
          width=640, where="#shots")
    groups = [{"label": "small", "runIds": [ids["a"], ids["b"]]}, {"label": "large", "runIds": [ids["b"], ids["c"], ids["d"]]}]
    mount(page, {"groups": groups, "key": "acc", "height": 240}, width=640, where="#shots")
    mount(page, {"runIds": [big_run], "key": "loss", "height": 240}, width=640, where="#shots")
    readme_screenshot(page, "chart")
    assert page.errors == []
