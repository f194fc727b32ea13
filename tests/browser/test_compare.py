"""The compare page in a real browser: three client runs side by side (differences highlighted, only differences,
overlaid chart, parallel coordinates, scatter) and the package-level environment diff of two real `proj run` runs
whose virtualenv locks differ (tinya 1.0 against 2.0, from local wheels)."""
from __future__ import annotations

import os
import textwrap
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from browser.conftest import serve
from helpers.browser import readme_screenshot, wait_until
from helpers.cli import Proj
from helpers.servers import Server
from helpers.wheels import make_wheel
from proj.tracking.open import open_store
from proj.tracking.records import MetricPoint

PROJECT = """\
    name: pinned
    python_env: python_env.yaml
    entry_points:
      main:
        command: python -c 'import tinya, proj_client; proj_client.log_metric("v", float(tinya.VERSION))'
    """


def _env_runs(work: Path, store_dir: Path) -> dict[str, str]:
    """Two real `proj run`s of one project, its requirement changed from tinya==1.0 to tinya==2.0 in between."""
    wheels = work / "wheelhouse"
    make_wheel(wheels, "tinya", "1.0")
    make_wheel(wheels, "tinya", "2.0")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PROJ_", "MLFLOW_", "PIP_", "UV_"))}
    env.update({"PROJ_CACHE_DIR": str(work / "cache"), "PROJ_TRACKING_URI": str(store_dir),
                "UV_NO_INDEX": "1", "UV_FIND_LINKS": str(wheels), "UV_CACHE_DIR": str(work / "uv-cache")})
    proj = Proj(work, env)
    root = work / "pinned"
    root.mkdir()
    (root / "MLproject").write_text(textwrap.dedent(PROJECT))
    ids = {}
    for version in ("1.0", "2.0"):
        (root / "python_env.yaml").write_text(f"dependencies:\n  - tinya=={version}\n")
        out = proj("run", str(root), "--run-name", f"tinya-{version}")
        assert out.code == 0, out
        run = proj.show(proj.runs()[0]["id"])
        assert run["env"]["backend"] == "virtualenv", run
        ids[version] = run["id"]
    return ids


@pytest.fixture(scope="module")
def compare_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """Client runs one, two, three (alpha differs, seed is the same, loss and acc histories); env runs 1.0, 2.0."""
    work = tmp_path_factory.mktemp("compare")
    store_dir = work / "store"
    store = open_store(str(store_dir), create=True)
    now = time.time()
    exp = store.create_experiment("compare")
    ids: dict[str, str] = {}
    for i, name in enumerate(("one", "two", "three")):
        run = store.create_client_run(exp, "tester", now, {"team": "vision"}, name)
        metrics = [MetricPoint("loss", (1 + i) / (1 + s), s, now + s) for s in range(50)]
        metrics += [MetricPoint("acc", (0.6, 0.5, 0.7)[i], 49, now + 49)]
        store.log_client_batch(run.id, metrics, [("alpha", ("0.1", "0.2", "0.3")[i]), ("seed", "42")])
        store.update_run(run.id, status="FINISHED", end_time=now + 60)
        ids[name] = run.id
    store.close()
    ids.update(_env_runs(work, store_dir))
    return store_dir, ids


@pytest.fixture(scope="module")
def runs(compare_store: tuple[Path, dict[str, str]]) -> dict[str, str]:
    return compare_store[1]


@pytest.fixture(scope="module")
def ui_server(compare_store: tuple[Path, dict[str, str]], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with serve(compare_store[0], tmp_path_factory.mktemp("compare-logs")) as server:
        yield server


def open_compare(page: Any, ids: list[str], extra: str = "") -> None:
    page.goto(f"/#/compare?runs={','.join(ids)}{extra}")
    page.wait_for_selector(".compare-tables")


def row(page: Any, section: str, key: str) -> Any:
    return page.locator(f".compare-{section} tr[data-key='{key}']")


def test_three_runs_side_by_side_with_differences_highlighted(page: Any, runs: dict[str, str]) -> None:
    ids = [runs["one"], runs["two"], runs["three"]]
    open_compare(page, ids)
    assert page.locator("h1").inner_text() == "Compare 3 runs"
    alpha, seed = row(page, "params", "alpha"), row(page, "params", "seed")
    assert alpha.locator("td").all_inner_texts() == ["0.1", "0.2", "0.3"]
    assert "diff" in alpha.get_attribute("class") and "diff" not in seed.get_attribute("class")
    background = alpha.locator("td").first.evaluate("el => getComputedStyle(el).backgroundColor")
    assert background != seed.locator("td").first.evaluate("el => getComputedStyle(el).backgroundColor")
    assert "diff" in row(page, "metrics", "loss").get_attribute("class")
    assert "diff" not in row(page, "tags", "team").get_attribute("class")
    for run_id in ids:  # each column links back to its run
        assert page.locator(f".compare-params th a[href='#/runs/{run_id}']").count() == 1
    page.get_by_label("Show only differences").check()
    assert not seed.is_visible() and alpha.is_visible() and not row(page, "tags", "team").is_visible()
    assert "only=1" in page.url
    page.get_by_label("Show only differences").uncheck()
    assert seed.is_visible()
    # the dark theme recolours the runs' swatches and lines (palette readable on the dark background)
    swatch = page.locator(".compare-run .swatch").first
    light = swatch.evaluate("el => el.style.background")
    stroke = page.locator("svg.parallel path.pc-line").first.get_attribute("stroke")
    page.locator("#theme").click()
    wait_until(lambda: swatch.evaluate("el => el.style.background") != light, what="dark swatches")
    assert page.locator("svg.parallel path.pc-line").first.get_attribute("stroke") != stroke
    assert page.locator("svg.parallel path.pc-line").count() == 3
    assert page.errors == []


def test_overlaid_chart_parallel_coordinates_and_scatter(page: Any, runs: dict[str, str]) -> None:
    ids = [runs["one"], runs["two"], runs["three"]]
    open_compare(page, ids)
    chart = page.locator(".compare-chart")
    page.get_by_label("Metric", exact=True).select_option("loss")
    wait_until(lambda: chart.get_attribute("data-ready") == "1" and chart.locator(".chart-title").inner_text() == "loss",
               60, "the overlaid chart of loss")
    assert chart.locator(".chart-legend-item").all_inner_texts()[0].startswith("one")
    assert chart.locator(".chart-legend-item").count() == 3
    assert chart.get_attribute("data-series") == "3" and float(chart.get_attribute("data-ymax")) == 3.0
    paths = page.locator("svg.parallel path.pc-line")
    wait_until(lambda: paths.count() == 3, what="three parallel paths")
    # the mouse on a point a quarter along the second run's line
    paths.nth(1).scroll_into_view_if_needed()
    at = paths.nth(1).evaluate("""p => { const q = p.getPointAtLength(p.getTotalLength() / 4);
                                     const s = new DOMPoint(q.x, q.y).matrixTransform(p.getScreenCTM());
                                     return [s.x, s.y]; }""")
    page.mouse.move(*at)
    assert "active" in paths.nth(1).get_attribute("class") and "active" not in paths.nth(0).get_attribute("class")
    page.get_by_label("Scatter x").select_option("params.alpha")
    page.get_by_label("Scatter y").select_option("metrics.loss")
    points = page.locator("svg.scatter circle.sc-point")
    wait_until(lambda: points.count() == 3, what="three scatter points")
    # alpha grows and the last loss (k/50) grows with it: the points rise from left to right
    xy = points.evaluate_all("els => els.map(e => [Number(e.getAttribute('cx')), Number(e.getAttribute('cy'))])")
    assert xy == sorted(xy) and [y for _, y in xy] == sorted((y for _, y in xy), reverse=True)
    assert "sx=params.alpha" in page.url and "sy=metrics.loss" in page.url
    page.mouse.move(0, 0)
    page.evaluate("() => window.scrollTo(0, 0)")
    readme_screenshot(page, "compare")
    assert page.errors == []


@pytest.mark.slow
def test_environment_package_diff_of_two_proj_runs(page: Any, runs: dict[str, str]) -> None:
    open_compare(page, [runs["1.0"], runs["2.0"]])
    tinya = row(page, "env", "tinya")
    assert tinya.locator("td").all_inner_texts() == ["1.0", "2.0"]
    assert "diff" in tinya.get_attribute("class")
    assert "diff" in row(page, "env", "lock_digest").get_attribute("class")
    backend = row(page, "env", "backend")
    assert backend.locator("td").all_inner_texts() == ["virtualenv", "virtualenv"]
    assert "diff" not in backend.get_attribute("class")
    page.get_by_label("Show only differences").check()
    assert tinya.is_visible() and not backend.is_visible()
    assert page.errors == []


def test_fewer_than_two_runs_says_what_to_do(page: Any, runs: dict[str, str]) -> None:
    page.goto(f"/#/compare?runs={runs['one']}")
    page.wait_for_selector("main h1")
    assert "two or more runs" in page.locator("main").inner_text()
    assert page.errors == []
