"""The experiments list in a real browser: 5,000 experiments paged through, a name search, folders, run counts,
opening one experiment and picking several for one runs table."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pytest

from browser.conftest import serve
from helpers.browser import readme_screenshot, screenshot, wait_until
from helpers.servers import Server
from proj.tracking.open import open_store

BULK = 5_000
PAGE = 100
BASE = 1_750_000_000.0
ROOT = Path(__file__).resolve().parents[2]
FOLDERED = ["vision/resnet/baseline", "vision/resnet/augmented", "vision/vit", "nlp/bert", "needle-experiment"]


@dataclass
class Data:
    store_dir: Path
    ids: dict[str, str] = field(default_factory=dict)  # name -> id


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Data:
    data = Data(tmp_path_factory.mktemp("ui-experiments") / "store")
    store = open_store(str(data.store_dir), create=True)
    with store.transaction():
        for i in range(BULK):
            data.ids[f"bulk/exp-{i:05d}"] = store.create_experiment(f"bulk/exp-{i:05d}")
        for name in FOLDERED:  # created last: the first page (newest first) shows them
            data.ids[name] = store.create_experiment(name)
        for i in range(3):
            run = store.create_client_run(data.ids["vision/resnet/baseline"], "ana", BASE + i, {}, f"r{i}")
            if i < 2:
                store.update_run(run.id, status="FINISHED", end_time=BASE + i + 1)
    store.close()
    return data


@pytest.fixture(scope="module")
def ui_server(data: Data) -> Iterator[Server]:
    with serve(data.store_dir, data.store_dir.parent) as server:
        yield server


def shown(page: Any) -> list[str]:
    """The full names of the experiments listed (the link's title), in order."""
    return list(page.eval_on_selector_all("tr.experiment a.exp-name", "els => els.map((a) => a.title)"))


def page_label(page: Any) -> str:
    return page.text_content("#exp-page") or ""


def open_list(page: Any, query: str = "") -> list[str]:
    page.goto(f"/#/experiments{'?' + query if query else ''}")
    return list(wait_until(lambda: shown(page), what="experiments listed"))


def test_first_page_lists_folders_and_run_counts(page: Any, data: Data) -> None:
    names = open_list(page)
    assert len(names) == PAGE
    assert names[:5] == FOLDERED[::-1][:5] or set(FOLDERED) <= set(names)
    folders = page.eval_on_selector_all("tr.folder", "els => els.map((r) => r.dataset.folder)")
    assert {"vision", "vision/resnet", "nlp", "bulk"} <= set(folders)
    baseline = page.locator(f"tr.experiment[data-id='{data.ids['vision/resnet/baseline']}']")
    assert baseline.locator("a.exp-name").text_content() == "baseline"  # the leaf, inside its folders
    wait_until(lambda: baseline.locator("td.runs").text_content() == "3", what="the run count")
    assert baseline.locator("td").nth(4).text_content() == "1"  # one of them running
    toggle = page.locator("tr.folder[data-folder='vision'] button.fold")
    assert toggle.get_attribute("aria-expanded") == "true"
    toggle.click()
    wait_until(lambda: "vision/resnet/baseline" not in shown(page), what="the vision folder collapsed")
    assert "nlp/bert" in shown(page)
    page.click("tr.folder[data-folder='vision'] button.fold")
    wait_until(lambda: "vision/resnet/baseline" in shown(page), what="the vision folder expanded")
    readme_screenshot(page, "experiments")
    assert page.errors == []


def test_search_narrows_the_list_and_is_kept_in_the_url(page: Any, data: Data) -> None:
    open_list(page)
    page.fill("#exp-search", "NEEDLE")
    wait_until(lambda: shown(page) == ["needle-experiment"], what="only the needle")
    assert "q=NEEDLE" in page.url
    assert page.is_disabled("#exp-next")
    page.reload()
    assert wait_until(lambda: shown(page), what="the search after reload") == ["needle-experiment"]
    page.fill("#exp-search", "exp-0499")  # ten experiments, all on one page
    wait_until(lambda: shown(page) == [f"bulk/exp-{i:05d}" for i in range(4999, 4989, -1)], what="the ten")
    page.fill("#exp-search", "no such experiment")
    wait_until(lambda: "No experiment name contains" in page.text_content("table.experiments"), what="none found")
    assert page.errors == []


def test_paging_walks_all_5000_experiments_forward_and_back(page: Any, data: Data) -> None:
    pages = [open_list(page)]
    assert page.is_disabled("#exp-prev")
    while not page.is_disabled("#exp-next"):
        before = page_label(page)
        page.click("#exp-next")
        wait_until(lambda before=before: page_label(page) != before and shown(page), what="the next page")
        pages.append(shown(page))
    seen = [name for names in pages for name in names]
    everything = BULK + len(FOLDERED) + 1  # and the Default experiment
    assert len(seen) == len(set(seen)) == everything  # every experiment once, none lost at 5,000
    assert len(pages) == -(-everything // PAGE)
    assert page_label(page).startswith(f"Page {len(pages)} · experiments {(len(pages) - 1) * PAGE + 1}–")
    page.click("#exp-prev")
    wait_until(lambda: shown(page) == pages[-2], what="the page before")
    assert page.errors == []


def test_order_by_name(page: Any, data: Data) -> None:
    open_list(page)
    page.select_option("select[aria-label='Order experiments']", "name ASC")
    wait_until(lambda: shown(page)[:1] == ["bulk/exp-00000"], what="name order")
    assert "order=name+ASC" in page.url
    assert page.errors == []


def test_open_an_experiment(page: Any, data: Data) -> None:
    open_list(page)
    page.click(f"tr.experiment[data-id='{data.ids['vision/resnet/baseline']}'] a.exp-name")
    wait_until(lambda: page.url.endswith(f"#/experiments/{data.ids['vision/resnet/baseline']}"), what="the runs page")
    page.locator(".crumbs h1").filter(has_text="vision/resnet/baseline").wait_for()
    wait_until(lambda: sorted(page.eval_on_selector_all(".runs-grid a.run-link", "els => els.map((a) => a.textContent)"))
               == ["r0", "r1", "r2"], what="its runs")
    assert page.errors == []


def test_several_selected_experiments_open_one_runs_table(page: Any, data: Data) -> None:
    open_list(page)
    ids = [data.ids["vision/resnet/baseline"], data.ids["nlp/bert"]]
    for exp_id in ids:
        page.check(f"tr.experiment[data-id='{exp_id}'] input[type=checkbox]")
    assert page.text_content("#compare-experiments") == "Compare runs (2)"
    page.click("#compare-experiments")
    wait_until(lambda: page.url.endswith(f"#/experiments/{ids[0]},{ids[1]}"), what="the cross-experiment table")
    page.locator(".crumbs h1").filter(has_text="vision/resnet/baseline, nlp/bert").wait_for()
    wait_until(lambda: page.eval_on_selector_all(".runs-grid a.run-link", "els => els.length") == 3, what="runs of both")
    screenshot(page, "experiments-compare")
    assert page.errors == []


def test_folder_tree_of_names(page: Any, data: Data) -> None:
    open_list(page)
    tree = page.evaluate("""async () => {
      const {folderTree, nameFilter} = await import('/static/js/pages/experiments.js');
      const show = (node) => ({name: node.name, leaves: node.leaves.map((l) => l.leaf),
                               folders: [...node.folders.values()].map(show)});
      const names = ['/Users/ana/one', '/Users/ana/two', 'plain', 'a//b'];
      return {tree: show(folderTree(names.map((name, i) => ({name, experiment_id: String(i)})))),
              filters: [nameFilter(' x '), nameFilter("it's"), nameFilter('')]};
    }""")
    assert tree["tree"] == {"name": "", "leaves": ["plain"], "folders": [
        {"name": "Users", "leaves": [], "folders": [{"name": "ana", "leaves": ["one", "two"], "folders": []}]},
        {"name": "a", "leaves": ["b"], "folders": []}]}
    assert tree["filters"] == ["name ILIKE '%x%'", "name ILIKE \"%it's%\"", ""]
    assert page.errors == []
