"""The registry pages in a real Chromium over `proj server`: models from real `proj run`s registered with the real
`proj models` CLI (several versions, a stage move archiving the old one, aliases, a protected alias moved with a
reason, tags, a rename to a name that needs URL-encoding): the list and its search and pages, a model's versions,
a version's lineage and history, links between the pages, keyboard access."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import quote

import pytest

from helpers.browser import readme_screenshot, wait_until
from helpers.cli import Proj
from helpers.git_repos import commit, git
from helpers.projects import MODEL_PROJECT, PREDICTOR
from helpers.servers import proj_server
from proj.tracking.open import open_store
from proj.tracking.records import DatasetRecord, RunInput

ROOT = Path(__file__).resolve().parents[2]
NAME = "fraud eu #1 50%"  # renamed to this: a space, '#' and '%' must be encoded in links
QUOTED = "o'neil \"q\" 100%_x"  # both quotes: no quoted string of MLflow's filter grammar can hold the name


def _ok(proj: Proj, *args: str) -> str:
    out = proj(*args)
    assert out.code == 0, out
    return out.stdout


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A store with two real runs of a git project and two registered models built through the CLI."""
    work = tmp_path_factory.mktemp("registry-ui")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PROJ_", "MLFLOW_"))}
    env.update(PROJ_CACHE_DIR=str(work / "cache"), PROJ_TRACKING_URI=str(work / "store"))
    proj = Proj(work, env)
    repo = work / "project"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    sha = commit(repo, MODEL_PROJECT, "first")
    runs = []
    for k in ("2", "3"):
        if k == "3":  # the second run is of a dirty tree: its lineage carries the uncommitted patch
            (repo / "predictor.py").write_text(PREDICTOR + "# tuned by hand, not committed\n")
        _ok(proj, "run", str(repo), "--env-manager", "local", "-P", f"k={k}")
        runs.append(proj.runs()[0]["id"])
    first, second = runs
    store = open_store(str(work / "store"))  # a dataset as an MLflow client logs one (mlflow.log_input)
    store.log_inputs(second, [RunInput(DatasetRecord("payments-2026-11", "d1g35t42", "local", '{"uri": "payments.csv"}'),
                                       {"mlflow.data.context": "training"})])
    store.close()
    models = ["models"]
    _ok(proj, *models, "register", f"runs:/{first}/model", "fraud", "--tag", "owner=ana")
    _ok(proj, *models, "register", f"runs:/{second}/model", "fraud", "--reason", "retrained with k=3")
    _ok(proj, *models, "register", f"runs:/{second}/model", "fraud")
    _ok(proj, *models, "register", f"runs:/{first}/model", "churn")
    _ok(proj, *models, "register", f"runs:/{first}/model", QUOTED)
    _ok(proj, *models, "register", f"runs:/{second}/model", "churn")
    _ok(proj, *models, "delete", "churn/2", "--reason", "trained on the wrong month")
    _ok(proj, *models, "stage", "fraud", "1", "Production")
    _ok(proj, *models, "alias", "fraud", "champion", "1")
    _ok(proj, *models, "protect", "fraud", "--alias", "champion")
    _ok(proj, *models, "stage", "fraud", "2", "Production", "--archive-existing", "--reason", "better acc on holdout")
    assert proj("models", "alias", "fraud", "champion", "2").code != 0  # protected: refused without a reason
    _ok(proj, *models, "alias", "fraud", "champion", "2", "--reason", "recall +4% on the holdout")
    _ok(proj, *models, "alias", "fraud", "challenger", "3")
    _ok(proj, *models, "tag", "fraud/2", "validated=yes")
    _ok(proj, *models, "tag", "fraud", "team=risk")
    _ok(proj, *models, "describe", "fraud", "Scores card payments for fraud")
    _ok(proj, *models, "rename", "fraud", NAME)
    return {"work": work, "store": work / "store", "first": first, "second": second, "sha": sha}


@pytest.fixture(scope="module")
def ui_server(registry: dict[str, Any]) -> Iterator[Any]:
    with proj_server(registry["store"], registry["work"]) as server:
        yield server


def _model_hash(name: str) -> str:
    return "#/models/" + quote(name, safe="")


def _texts(page: Any, selector: str) -> list[str]:
    return [t.strip() for t in page.locator(selector).all_inner_texts()]


def _rows(page: Any) -> list[str]:
    return page.eval_on_selector_all("tr[data-model]", "rows => rows.map(r => r.dataset.model)")


def test_models_list_shows_stages_aliases_and_search_narrows_it(page: Any) -> None:
    page.goto("/#/models")
    wait_until(lambda: _rows(page) == ["churn", NAME, QUOTED], what="the models listed")
    row = page.locator("tr[data-model]", has_text="fraud eu")
    latest = {li.get_attribute("data-stage"): li.inner_text().split()[-1] for li in row.locator("ul.latest li").all()}
    assert latest == {"Production": "v2", "None": "v3", "Archived": "v1"}
    assert sorted(t.strip() for t in row.locator(".alias").all_inner_texts()) == ["@challenger → v3", "@champion → v2"]
    assert row.locator(".tag").inner_text() == "team=risk"
    assert row.locator("a", has_text=NAME).get_attribute("href") == _model_hash(NAME)

    search = page.get_by_label("Search registered models by name")
    search.fill("EU #1")  # case-insensitive, with characters MLflow's LIKE would read as wildcards around it
    wait_until(lambda: _rows(page) == [NAME], what="the search to narrow the list")
    assert "q=EU" in page.evaluate("location.hash")
    search.fill("50%")
    wait_until(lambda: _rows(page) == [NAME], what="a literal % to match")
    search.fill("eu #1 50%'")  # a quote cannot end MLflow's quoted string: it matches as any one character
    wait_until(lambda: not _rows(page), what="no model with a quote in its name")
    search.fill("nothing-like-this")
    wait_until(lambda: 'No model\'s name contains "nothing-like-this"' in page.locator("table.models").inner_text(),
               what="the empty list saying what was searched")
    assert not _rows(page) and "q=nothing-like-this" in page.evaluate("location.hash")
    page.reload()  # the search is in the URL
    wait_until(lambda: page.locator("table.models td.empty").count() == 1, what="the search kept across a reload")
    assert search.input_value() == "nothing-like-this"
    assert page.errors == []


def test_models_list_pages(page: Any) -> None:
    page.goto("/#/models?n=1")
    wait_until(lambda: _rows(page) == ["churn"], what="the first page")
    previous, following = page.get_by_role("button", name="← Previous"), page.get_by_role("button", name="Next →")
    assert previous.is_disabled()
    following.click()
    wait_until(lambda: _rows(page) == [NAME], what="the second page")
    following.click()
    wait_until(lambda: _rows(page) == [QUOTED], what="the third page")
    assert following.is_disabled() and not previous.is_disabled()
    previous.click()
    wait_until(lambda: _rows(page) == [NAME], what="back to the second page")
    previous.click()
    wait_until(lambda: _rows(page) == ["churn"], what="back to the first page")
    assert previous.is_disabled()
    assert page.errors == []


def test_model_page_lists_versions_with_stages_aliases_and_history(page: Any, registry: dict[str, Any]) -> None:
    page.goto("/#/models")
    page.get_by_role("link", name=NAME).click()
    page.locator("table.versions tbody tr[data-version]").first.wait_for()
    assert page.evaluate("location.hash") == _model_hash(NAME)
    assert page.locator("h1").inner_text() == NAME
    assert page.locator("p.description").inner_text() == "Scores card payments for fraud"
    rows = page.locator("table.versions tbody tr[data-version]")
    assert [r.get_attribute("data-version") for r in rows.all()] == ["3", "2", "1"]
    assert _texts(page, "table.versions tbody .stage") == ["None", "Production", "Archived"]
    champion = rows.nth(1).locator(".alias")
    assert champion.inner_text().lower().split() == ["@champion", "protected"]  # the protected alias is marked
    assert _texts(page, "table.versions tbody tr[data-version='3'] .alias") == ["@challenger"]
    assert rows.nth(2).locator(".alias").count() == 0
    assert rows.nth(1).locator("a.mono, td.mono a").get_attribute("href") == f"#/runs/{registry['second']}"
    assert rows.nth(2).locator("td.mono a").get_attribute("href") == f"#/runs/{registry['first']}"
    assert rows.nth(1).locator(".tag").inner_text() == "validated=yes"
    assert rows.nth(2).locator(".tag").inner_text() == "owner=ana"
    assert _texts(page, "table.versions tbody td:nth-child(6)") == ["READY"] * 3
    assert page.locator(".model-fields .alias-protected").inner_text().startswith("@champion → v2")

    actions = page.eval_on_selector_all("ol.timeline li", "items => items.map(i => i.dataset.action)")
    assert actions[0] == "model_created" and actions[-1] == "renamed"
    assert actions.count("version_created") == 3 and "protected" in actions
    renamed = page.locator("ol.timeline li[data-action='renamed']")
    assert renamed.locator(".from").inner_text() == "fraud" and renamed.locator(".to").inner_text() == NAME
    archived = page.locator("ol.timeline li[data-action='stage'][data-version='1']").last
    assert archived.locator(".change").inner_text() == "Production → Archived"
    assert archived.locator(".reason").inner_text() == "better acc on holdout"
    assert page.errors == []


def test_version_page_shows_lineage_and_its_timeline(page: Any, registry: dict[str, Any]) -> None:
    page.goto("/" + _model_hash(NAME))
    page.locator("table.versions a", has_text="v2").click()
    page.locator("ol.chain").wait_for()
    assert page.evaluate("location.hash") == _model_hash(NAME) + "/versions/2"
    title = page.locator("h1").inner_text()
    assert title.startswith(f"{NAME} v2") and "Production" in title and "@champion" in title
    assert page.locator(".version-fields .tag").inner_text() == "validated=yes"

    steps = page.eval_on_selector_all("ol.chain > li.step", "items => items.map(i => i.dataset.step)")
    assert steps == ["version", "run", "source", "environment", "inputs", "model", "metrics", "reproduced"]
    run_link = page.locator("li[data-step='run'] a.run-link")
    assert run_link.get_attribute("href") == f"#/runs/{registry['second']}"
    assert registry["second"] in run_link.inner_text()
    assert page.locator("li[data-step='source'] code.commit").inner_text() == registry["sha"]
    source = page.locator("li[data-step='source']").inner_text()
    assert "main" in source and "dirty" in source and "1 file(s)" in source  # the branch, the recorded patch
    env = page.locator("li[data-step='environment']").inner_text()
    assert "local" in env and "pip-freeze" in env and "Lock digest" in env
    assert page.locator("li[data-step='inputs'] li[data-input='data']").count() == 1
    dataset = page.locator("li[data-step='inputs'] li[data-dataset='payments-2026-11']").inner_text()
    assert "d1g35t42" in dataset and "training" in dataset
    assert sorted(_texts(page, "li[data-step='model'] .flavor")) == ["pickle", "python_function"]
    assert "0.75" in page.locator("li[data-step='metrics']").inner_text()  # acc = 0.25 * 3
    assert page.locator("li[data-step='version']").inner_text().count("intact") == 1

    events = page.locator("ol.timeline li")
    assert [e.get_attribute("data-action") for e in events.all()] == ["version_created", "stage", "alias_set", "tag_set"]
    assert [e.get_attribute("data-version") for e in events.all()] == ["2"] * 4  # only this version's events
    assert events.nth(0).locator(".reason").inner_text() == "retrained with k=3"
    assert events.nth(1).locator(".change").inner_text() == "None → Production"
    assert events.nth(1).locator(".reason").inner_text() == "better acc on holdout"
    moved = events.nth(2)
    assert moved.locator(".action").inner_text() == "alias @champion"
    assert moved.locator(".change").inner_text() == "v1 → v2"
    assert moved.locator(".reason").inner_text() == "recall +4% on the holdout"
    assert all(e.locator(".who").inner_text() for e in events.all())  # who made each change
    times = [e.locator("time").get_attribute("datetime") for e in events.all()]
    assert times == sorted(times)  # oldest first

    readme_screenshot(page, "registry-version")  # for the README (1400x900, light)
    page.locator(".crumbs a", has_text="fraud eu").click()  # back up to the model, then the list
    page.locator("table.versions").wait_for()
    page.locator(".crumbs a", has_text="Models").click()
    wait_until(lambda: _rows(page) == ["churn", NAME, QUOTED], what="the models list again")
    assert page.errors == []


def test_archived_version_and_keyboard_navigation(page: Any, registry: dict[str, Any]) -> None:
    page.goto("/#/models")
    wait_until(lambda: len(_rows(page)) == 3, what="the list")
    for _ in range(40):  # Tab from the top of the page until the model's link has the focus
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent") == NAME:
            break
    else:
        pytest.fail("the model's link was never reached with Tab")
    page.keyboard.press("Enter")
    page.locator("table.versions tbody tr[data-version]").first.wait_for()
    for _ in range(60):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.getAttribute('href')") == _model_hash(NAME) + "/versions/1":
            break
    else:
        pytest.fail("the link to version 1 was never reached with Tab")
    page.keyboard.press("Enter")
    page.locator("ol.chain").wait_for()
    assert page.locator("h1 .stage").inner_text() == "Archived"
    assert page.locator("h1 .alias").count() == 0  # the alias moved away from v1
    assert page.locator("li[data-step='run'] a.run-link").get_attribute("href") == f"#/runs/{registry['first']}"
    assert "clean" in page.locator("li[data-step='source']").inner_text()
    actions = page.eval_on_selector_all("ol.timeline li", "items => items.map(i => i.dataset.action)")
    assert actions == ["version_created", "tag_set", "stage", "alias_set", "stage"]
    assert page.locator("ol.timeline li").last.locator(".reason").inner_text() == "better acc on holdout"
    assert page.errors == []


def test_a_name_with_both_quotes_opens_its_versions(page: Any, registry: dict[str, Any]) -> None:
    page.goto("/#/models")
    page.get_by_role("link", name=QUOTED).click()
    page.locator("table.versions tbody tr[data-version]").first.wait_for()
    assert page.locator("h1").inner_text() == QUOTED
    assert [r.get_attribute("data-version") for r in page.locator("table.versions tbody tr[data-version]").all()] == ["1"]
    page.locator("table.versions a", has_text="v1").click()
    page.locator("li[data-step='run'] a.run-link").wait_for()
    assert page.locator("li[data-step='run'] a.run-link").get_attribute("href") == f"#/runs/{registry['first']}"
    assert [e.get_attribute("data-action") for e in page.locator("ol.timeline li").all()] == ["version_created"]
    assert page.errors == []


def test_a_deleted_version_stays_in_the_history_without_a_link(page: Any) -> None:
    page.goto("/#/models/churn")
    page.locator("table.versions tbody tr[data-version]").first.wait_for()
    assert [r.get_attribute("data-version") for r in page.locator("table.versions tbody tr[data-version]").all()] == ["1"]
    gone = page.locator("ol.timeline li[data-action='version_deleted']")
    assert gone.locator(".reason").inner_text() == "trained on the wrong month"
    assert gone.locator("a").count() == 0 and gone.locator(".gone").inner_text() == "v2"
    assert page.locator("ol.timeline li[data-action='version_created'] a", has_text="v1").count() == 1
    assert page.errors == []


def test_an_unknown_model_says_so_in_one_line(page: Any) -> None:
    page.goto("/" + _model_hash("fraud"))  # the name before the rename
    page.locator("#error").wait_for()
    assert "fraud" in page.locator("#error").inner_text() and "not found" in page.locator("#error").inner_text().lower()
    # the only errors are the 404 itself and the router's log of it
    assert all("404" in e or "not found" in e.lower() for e in page.errors), page.errors
