"""The runs table in a real browser: chosen columns kept in the URL, sort, filter with completion, groups,
child runs, CSV export, live status, keyboard navigation and the virtual rows over 20,000 runs."""
from __future__ import annotations

import csv
import io
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pytest

from browser.conftest import serve
from helpers.browser import new_page, readme_screenshot, wait_until
from helpers.servers import Server
from proj.tracking.open import open_store
from proj.tracking.records import ChildRun, MetricPoint

BASE = 1_750_000_000.0
N = 24  # runs of the "table" experiment
BIG = 20_000
ROOT = Path(__file__).resolve().parents[2]


def final_loss(i: int) -> float:
    """A permutation of the runs, so sorting by loss puts another run first than the default (newest) order."""
    return round(0.3 + ((i * 7) % N) * 0.03, 6)


@dataclass
class Data:
    store_dir: Path
    table: str = ""
    other: str = ""
    big: str = ""
    names: dict[str, str] = field(default_factory=dict)  # run name -> id
    alpha: dict[str, str] = field(default_factory=dict)  # run name -> alpha


def _build(root: Path) -> Data:
    data = Data(root / "store")
    store = open_store(str(data.store_dir), create=True)
    data.table = store.create_experiment("vision/table")
    data.other = store.create_experiment("other")
    data.big = store.create_experiment("big")
    with store.transaction():
        for i in range(N):
            name, alpha = f"run-{i:02d}", ("0.1", "0.2", "0.3")[i % 3]
            run = store.create_client_run(data.table, "ana", BASE + i * 60, {"team": ("red", "blue")[i % 2]}, name)
            history = [2.0 + i * 0.01, 5.0 + i * 0.1, 1.5, final_loss(i)]
            points = [MetricPoint("loss", v, s, BASE + i * 60 + s) for s, v in enumerate(history)]
            points.append(MetricPoint("accuracy", 1 - final_loss(i) / 2, 3, BASE + i * 60 + 3))
            store.log_client_batch(run.id, points, [("alpha", alpha), ("lr", str(0.001 * (i + 1)))])
            store.update_run(run.id, status="FINISHED", end_time=BASE + i * 60 + 30)
            data.names[name], data.alpha[name] = run.id, alpha
        parent = store.create_client_run(data.table, "ana", BASE - 600, {}, "sweep-parent")
        store.update_run(parent.id, status="FINISHED", end_time=BASE - 500)
        data.names["sweep-parent"] = parent.id
        live = store.create_client_run(data.table, "ana", BASE - 300, {}, "live-run")
        store.log_client_batch(live.id, [MetricPoint("loss", 9.0, 0, BASE - 300)])
        data.names["live-run"] = live.id
        for i in range(2):
            run = store.create_client_run(data.other, "bo", BASE + i, {}, f"other-{i}")
            store.update_run(run.id, status="FINISHED", end_time=BASE + i + 1)
            data.names[f"other-{i}"] = run.id
        for i in range(BIG):
            run = store.create_client_run(data.big, "u", BASE + i, {}, f"big-{i:05d}")
            store.log_client_batch(run.id, [MetricPoint("loss", i / BIG, 0, BASE + i)], [("alpha", str(i % 10))])
            store.update_run(run.id, status="FINISHED", end_time=BASE + i + 1)
    for k in range(3):  # child runs as `proj run` records them (the program opened nested MLflow runs)
        child = store.record_child_run(ChildRun(parent.id, f"mlflow-{k}", f"child-{k}", "FINISHED", BASE - 590 + k, BASE - 580))
        data.names[f"child-{k}"] = child.id
    store.close()
    return data


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Data:
    return _build(tmp_path_factory.mktemp("ui-runs"))


@pytest.fixture(scope="module")
def ui_server(data: Data) -> Iterator[Server]:
    with serve(data.store_dir, data.store_dir.parent) as server:
        yield server


def rows(page: Any, scope: str = ".runs-grid") -> list[list[str]]:
    """The rows in the DOM, in display order: the text of each cell."""
    return list(page.evaluate("""(scope) => [...document.querySelectorAll(scope + ' .vt-body .vt-row')]
        .sort((a, b) => a.getAttribute('aria-rowindex') - b.getAttribute('aria-rowindex'))
        .map((r) => [...r.children].map((c) => c.textContent.trim()))""", scope))


def headers(page: Any) -> list[str]:
    return list(page.evaluate("""() => [...document.querySelectorAll('.runs-grid .vt-header [role=columnheader]')]
        .map((c) => c.textContent.replace(/[▲▼]/g, '').trim())"""))


def names(page: Any, scope: str = ".runs-grid") -> list[str]:
    """The run names shown, in display order ("…" for a row whose page has not arrived)."""
    return list(page.evaluate("""(scope) => [...document.querySelectorAll(scope + ' .vt-body .vt-row')]
        .sort((a, b) => a.getAttribute('aria-rowindex') - b.getAttribute('aria-rowindex'))
        .map((r) => r.querySelector('a.run-link')?.textContent || '…')""", scope))


def first(page: Any) -> str | None:
    shown = names(page)
    return shown[0] if shown else None


def js_number(x: float) -> str:
    """A value as dom.js's number() shows it (6 significant digits)."""
    v = float(f"{x:.6g}")
    return str(int(v)) if v.is_integer() else str(v)


def loaded(page: Any, scope: str = ".runs-grid") -> list[str]:
    """Wait for the table's rows (no placeholder left) and give their run names."""
    return list(wait_until(lambda: (lambda n: n if n and "…" not in n else None)(names(page, scope)), what="rows loaded"))


def open_runs(page: Any, exp: str, query: str = "") -> list[str]:
    page.goto(f"/#/experiments/{exp}{'?' + query if query else ''}")
    return loaded(page)


def cell(page: Any, run_name: str, header: str) -> str:
    col = headers(page).index(header)
    return next(r[col] for r, n in zip(rows(page), names(page), strict=True) if n == run_name)


def test_chosen_columns_show_and_stay_in_the_url_across_reload(page: Any, data: Data) -> None:
    open_runs(page, data.table, "cols=params.alpha,metrics.loss,metrics.loss:min,metrics.loss:max")
    assert headers(page)[1:] == ["Run", "alpha", "loss", "loss (min)", "loss (max)"]
    assert cell(page, "run-05", "alpha") == "0.3"
    assert cell(page, "run-05", "loss") == js_number(final_loss(5))
    assert cell(page, "run-05", "loss (min)") == js_number(final_loss(5))
    assert cell(page, "run-05", "loss (max)") == "5.5"
    page.click("#choose-columns")  # add a tag and drop a metric through the chooser
    page.check(".column-chooser [data-col='tags.team'] input")
    page.uncheck(".column-chooser [data-col='metrics.loss:max'] input")
    wait_until(lambda: "team" in headers(page), what="the team column")
    assert "cols=params.alpha%2Cmetrics.loss%2Cmetrics.loss%3Amin%2Ctags.team" in page.url
    page.reload()
    loaded(page)
    assert headers(page)[1:] == ["Run", "alpha", "loss", "loss (min)", "team"]
    assert cell(page, "run-05", "team") == "blue"
    assert page.errors == []


def test_sort_by_a_metric_changes_the_first_row_and_is_kept_in_the_url(page: Any, data: Data) -> None:
    shown = open_runs(page, data.table, "cols=metrics.loss")
    assert shown[0] == "run-23"  # newest first by default
    page.click(".runs-grid .vt-header button:has-text('loss')")
    wait_until(lambda: first(page) == "run-00", what="the lowest loss first")
    assert "sort=metrics.loss+ASC" in page.url
    page.click(".runs-grid .vt-header button:has-text('loss')")
    wait_until(lambda: first(page) == "live-run", what="the highest loss first")  # live-run logged 9.0
    assert page.get_attribute(".runs-grid [role=columnheader]:has-text('loss')", "aria-sort") == "descending"
    page.reload()
    assert loaded(page)[0] == "live-run"
    assert page.errors == []


def test_filter_narrows_rows_and_count_and_is_kept_in_the_url(page: Any, data: Data) -> None:
    open_runs(page, data.table, "cols=params.alpha")
    wait_until(lambda: page.text_content(".run-count") == f"{N + 2} top-level runs", what="the full count")
    page.fill(".filter-input", "params.alpha = '0.1'")
    page.press(".filter-input", "Enter")
    wait_until(lambda: page.text_content(".run-count") == f"{N // 3} top-level runs", what="the narrowed count")
    shown = loaded(page)
    assert sorted(shown) == sorted(n for n, a in data.alpha.items() if a == "0.1")
    assert "filter=params.alpha" in page.url
    page.reload()
    assert sorted(loaded(page)) == sorted(shown)
    assert page.input_value(".filter-input") == "params.alpha = '0.1'"
    assert page.errors == []


def test_completion_offers_prefixes_then_metric_keys(page: Any, data: Data) -> None:
    open_runs(page, data.table)
    box = page.locator(".filter-input")
    box.click()
    box.type("met")
    options = page.locator(".completions [role=option]")
    wait_until(lambda: options.all_text_contents() == ["metrics."], what="the metrics. prefix")
    assert box.get_attribute("aria-expanded") == "true"
    box.press("ArrowDown")
    assert box.get_attribute("aria-activedescendant") == options.first.get_attribute("id")
    box.press("Enter")
    assert box.input_value() == "metrics."
    wait_until(lambda: options.all_text_contents() == ["metrics.accuracy", "metrics.loss"], what="the metric keys")
    box.type("lo")
    wait_until(lambda: options.all_text_contents() == ["metrics.loss"], what="metrics.loss alone")
    box.press("ArrowDown")
    box.press("Tab")
    assert box.input_value() == "metrics.loss "
    box.type("< 0.4")
    box.press("Enter")
    wait_until(lambda: sorted(names(page)) == sorted(f"run-{i:02d}" for i in range(N) if final_loss(i) < 0.4),
               what="runs with loss < 0.4")
    assert page.errors == []


def test_a_bad_filter_shows_the_servers_message(page: Any, data: Data) -> None:
    open_runs(page, data.table)
    page.fill(".filter-input", "metrics.loss <<< 1")
    page.press(".filter-input", "Enter")
    problem = page.locator(".filter-error")
    problem.wait_for(state="visible")
    assert "metrics.loss <<< 1" in problem.text_content()
    assert "\n" not in problem.text_content().strip()
    page.fill(".filter-input", "metrics.loss < 1")  # the page still works after it
    page.press(".filter-input", "Enter")
    problem.wait_for(state="hidden")
    loaded(page)
    # the browser itself logs the 400 response of the refused filter; nothing else may be logged
    assert [e for e in page.errors if "status of 400" not in e] == []


def test_group_by_a_param_shows_count_and_min_mean_max(page: Any, data: Data) -> None:
    page.goto(f"/#/experiments/{data.table}?cols=metrics.loss")
    loaded(page)
    page.select_option("#runs-group", "params.alpha")
    groups = page.locator("table.groups tr.group")
    wait_until(lambda: groups.count() == 4, what="three alpha groups and the runs without alpha")
    assert "group=params.alpha" in page.url
    row = page.locator("table.groups tr.group[data-value='0.2']")
    cells = row.locator("td").all_text_contents()
    losses = [final_loss(i) for i in range(N) if i % 3 == 1]
    assert cells[1:] == [str(len(losses)), js_number(min(losses)), js_number(sum(losses) / len(losses)), js_number(max(losses))]
    assert page.locator("table.groups th").all_text_contents()[2:] == ["loss min", "loss mean", "loss max"]
    row.locator("button.fold-group").click()
    inner = loaded(page, ".group-table")
    assert sorted(inner) == sorted(n for n, a in data.alpha.items() if a == "0.2")
    page.click("#chart-groups")  # each group as its mean line with a band
    page.select_option(".runs-chart select[aria-label='Metric to chart']", "loss")
    chart = page.locator(".runs-chart .chart-box")
    wait_until(lambda: chart.get_attribute("data-ready") == "1" and chart.get_attribute("data-series") == "4",
               what="four groups charted")
    assert page.errors == []


def test_child_runs_are_folded_under_their_parent(page: Any, data: Data) -> None:
    shown = open_runs(page, data.table, "sort=attributes.start_time+ASC")
    assert shown[0] == "sweep-parent"
    assert not any(n.startswith("child-") for n in shown)
    toggle = page.locator(".runs-grid button.fold-children")
    assert toggle.get_attribute("aria-expanded") == "false"
    assert toggle.text_content().strip() == "▸ 3"  # the toggle shows the child count
    toggle.click()
    wait_until(lambda: names(page)[1:4] == ["child-0", "child-1", "child-2"], what="the children below the parent")
    assert page.locator(".runs-grid button.fold-children").get_attribute("aria-expanded") == "true"
    assert page.get_attribute(".runs-grid", "aria-rowcount") == str(N + 2 + 3 + 1)
    page.locator(".runs-grid button.fold-children").click()
    wait_until(lambda: not any("child-" in n for n in names(page)), what="the children folded again")
    page.uncheck("#runs-fold")  # unfolded: every run is a row
    wait_until(lambda: page.text_content(".run-count") == f"{N + 2 + 3} runs", what="all runs counted")
    assert page.errors == []


def test_csv_export_downloads_the_filtered_rows_with_the_columns(page: Any, data: Data) -> None:
    open_runs(page, data.table, "cols=params.alpha,metrics.loss&filter=params.alpha+%3D+%270.3%27&sort=metrics.loss+ASC")
    with page.expect_download() as info:
        page.click("a.export")
    text = Path(info.value.path()).read_text()
    table = list(csv.reader(io.StringIO(text)))
    assert table[0][:4] == ["run_id", "run_name", "experiment_id", "status"]
    assert table[0][-2:] == ["params.alpha", "metrics.loss"]
    expected = sorted((i for i in range(N) if i % 3 == 2), key=final_loss)
    assert [r[1] for r in table[1:]] == [f"run-{i:02d}" for i in expected]
    assert [r[0] for r in table[1:]] == [data.names[f"run-{i:02d}"] for i in expected]
    assert page.errors == []


def test_a_running_run_turns_finished_without_a_reload(page: Any, data: Data) -> None:
    open_runs(page, data.table, "cols=attributes.status,metrics.loss&sort=attributes.start_time+ASC")
    assert cell(page, "live-run", "Status") == "RUNNING"
    assert cell(page, "live-run", "loss") == "9"
    page.evaluate("window.__no_reload = true")
    store = open_store(str(data.store_dir))
    try:
        store.log_client_batch(data.names["live-run"], [MetricPoint("loss", 8.0, 1, time.time())])
        store.update_run(data.names["live-run"], status="FINISHED", end_time=time.time())
    finally:
        store.close()
    wait_until(lambda: cell(page, "live-run", "Status") == "FINISHED", timeout=20, what="the status polled")
    assert cell(page, "live-run", "loss") == "8"
    assert page.evaluate("window.__no_reload") is True
    assert page.errors == []


def test_keyboard_moves_the_focused_cell_space_selects_enter_opens(page: Any, data: Data) -> None:
    shown = open_runs(page, data.table)
    page.click(".runs-grid .vt-body .vt-row[aria-rowindex='2'] [aria-colindex='3']")
    focused = ("() => { const c = document.activeElement;"
               " return [c.parentElement.getAttribute('aria-rowindex'), c.getAttribute('aria-colindex')]; }")
    assert page.evaluate(focused) == ["2", "3"]
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowLeft")
    assert page.evaluate(focused) == ["4", "2"]
    page.keyboard.press("Space")
    wait_until(lambda: page.get_attribute(".runs-grid .vt-row[aria-rowindex='4']", "aria-selected") == "true", what="selected")
    assert page.text_content(".selection") .startswith("1 selected")
    page.keyboard.press("ArrowUp")
    page.keyboard.press("Space")
    compare = page.locator("#compare-runs")
    assert compare.get_attribute("href") == f"#/compare?runs={data.names[shown[2]]}%2C{data.names[shown[1]]}"
    assert page.errors == []
    page.keyboard.press("Enter")  # the run page (another helper's) is not checked here, only that it opens
    wait_until(lambda: f"#/runs/{data.names[shown[1]]}" in page.url, what="the run opened")


def test_selected_runs_charted_with_the_metric_chosen(page: Any, data: Data) -> None:
    open_runs(page, data.table, "cols=metrics.loss&sort=metrics.loss+ASC")
    page.check(".runs-grid .vt-row[aria-rowindex='2'] input[type=checkbox]")  # run-00
    page.check(".runs-grid .vt-row[aria-rowindex='3'] input[type=checkbox]")  # run-07
    page.click("#chart-runs")
    chart = page.locator(".runs-chart .chart-box")
    page.select_option(".runs-chart select[aria-label='Metric to chart']", "loss")
    wait_until(lambda: chart.get_attribute("data-ready") == "1" and chart.get_attribute("data-points") == "8",
               what="two runs' four loss points drawn")
    assert chart.get_attribute("data-series") == "2"
    assert page.errors == []


def test_cross_experiment_table_shows_runs_of_both(page: Any, data: Data) -> None:
    shown = open_runs(page, f"{data.table},{data.other}", "cols=attributes.status")
    assert "Experiment" in headers(page)
    wait_until(lambda: page.text_content(".run-count") == f"{N + 2 + 2} top-level runs", what="runs of both")
    assert cell(page, "other-1", "Experiment") == "other"
    assert cell(page, shown[-1] if shown[-1].startswith("run-") else "run-23", "Experiment") == "vision/table"
    assert page.errors == []


def test_virtual_table_keeps_the_dom_small_over_20000_runs(page: Any, data: Data) -> None:
    open_runs(page, data.big, "cols=params.alpha,metrics.loss")
    grid = page.locator(".runs-grid")
    assert grid.get_attribute("aria-rowcount") == str(BIG + 1)
    assert page.text_content(".run-count") == "20,000 top-level runs"
    heights = page.evaluate("() => { const g = document.querySelector('.runs-grid'); return [g.scrollHeight, g.clientHeight,"
                            " document.querySelector('.runs-grid .vt-body').offsetHeight]; }")
    assert heights[2] == BIG * 30 and heights[0] > BIG * 30  # the scrollbar covers every run
    assert len(rows(page)) < 80
    page.evaluate("document.querySelector('.runs-grid').scrollTop = 10_000 * 30")
    wait_until(lambda: "big-09999" in loaded(page) or "big-10000" in loaded(page), what="rows in the middle")
    page.evaluate("document.querySelector('.runs-grid').scrollTop = 1e9")
    wait_until(lambda: loaded(page)[-1] == "big-00000", what="the last run at the bottom")
    last = page.evaluate("Math.max(...[...document.querySelectorAll('.runs-grid .vt-body .vt-row')]"
                         ".map(r => +r.getAttribute('aria-rowindex')))")
    assert last == BIG + 1
    assert len(rows(page)) < 80
    assert page.errors == []


def test_view_toggle_shows_deleted_runs(page: Any, data: Data) -> None:
    store = open_store(str(data.store_dir))
    try:
        gone = store.create_client_run(data.other, "bo", BASE + 9, {}, "deleted-one")
        store.update_run(gone.id, status="FINISHED", end_time=BASE + 10)
        store.delete_run(gone.id)
    finally:
        store.close()
    assert "deleted-one" not in open_runs(page, data.other)
    page.select_option("#runs-view", "DELETED_ONLY")
    wait_until(lambda: names(page) == ["deleted-one"], what="only the deleted run")
    assert "view=DELETED_ONLY" in page.url
    page.select_option("#runs-view", "ALL")
    wait_until(lambda: sorted(names(page)) == ["deleted-one", "other-0", "other-1"], what="every run")
    assert page.errors == []


@pytest.mark.parametrize("dark", [False, True], ids=["light", "dark"])
def test_readme_screenshots(browser: Any, ui_server: Server, data: Data, dark: bool) -> None:
    with new_page(browser, ui_server.url, dark=dark) as page:
        page.goto(f"/#/experiments/{data.table}?cols=attributes.status,attributes.start_time,attributes.duration,"
                  "params.alpha,params.lr,metrics.loss,metrics.loss:min,metrics.accuracy,tags.team&sort=metrics.loss+ASC")
        loaded(page)
        page.check(".runs-grid .vt-row[aria-rowindex='2'] input[type=checkbox]")
        page.check(".runs-grid .vt-row[aria-rowindex='4'] input[type=checkbox]")
        page.fill(".filter-input", "metrics.loss < 0.8 AND params.alpha != '0.3'")
        page.press(".filter-input", "Enter")
        wait_until(lambda: page.text_content(".run-count").startswith(str(len([
            i for i in range(N) if final_loss(i) < 0.8 and i % 3 != 2]))), what="the filtered table")
        loaded(page)
        name = "runs-table-dark" if dark else "runs-table"
        readme_screenshot(page, name)
        assert page.errors == []


def test_completion_quotes_keys_the_grammar_cannot_read_bare(page: Any, data: Data) -> None:
    open_runs(page, data.other)
    found = page.evaluate("""async () => {
      const {completions} = await import('/static/js/filterbox.js');
      const keys = {metrics: ['val loss', 'a.b', 'loss-2'], params: ['lr'], tags: []};
      const take = (text) => completions(text, text.length, keys).options.map((o) => o.insert);
      return {spaced: take('metrics.val'), dotted: take('metrics.a'), dashed: take('metrics.loss'),
              inString: take("params.lr = 'met"), keyword: take('metrics.a.b > 1 AND'), alias: take('param.l')};
    }""")
    assert found == {"spaced": ["metrics.`val loss` "], "dotted": ["metrics.a.b ", "metrics.`val loss` "],
                     "dashed": ["metrics.`loss-2` ", "metrics.`val loss` "], "inString": [], "keyword": [],
                     "alias": ["param.lr "]}
    assert page.errors == []
