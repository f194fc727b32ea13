"""The UI shell in a real browser (Debian's Chromium): nav, theme, skip link, unknown routes, local assets only."""
from __future__ import annotations

import hashlib
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlsplit

import pytest

import helpers.browser as browser_helpers
import helpers.cli as cli_helpers
from browser.conftest import serve
from helpers.browser import screenshot, wait_until
from helpers.paths import REPO
from helpers.servers import Server
from proj.tracking.open import open_store
from proj.tracking.records import MetricPoint

STATIC = REPO / "src" / "proj" / "server" / "ui" / "static"
MODEL = "shell-model"


@pytest.fixture(scope="module")
def shell_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """Two experiments, three runs (one a child) with params and metric histories, a registered model version."""
    store_dir = tmp_path_factory.mktemp("shell") / "store"
    store = open_store(str(store_dir), create=True)
    now = time.time()
    experiment = store.create_experiment("shell-demo")
    store.create_experiment("shell-other")
    ids: dict[str, str] = {"experiment": experiment}
    for name, alpha in (("first", "0.1"), ("second", "0.2")):
        run = store.create_client_run(experiment, "tester", now, {}, name)
        store.log_client_batch(run.id, [MetricPoint("loss", 1.0 / (1 + step), step, now + step) for step in range(20)],
                               [("alpha", alpha)])
        store.update_run(run.id, status="FINISHED", end_time=now + 20)
        ids[name] = run.id
    child = store.create_client_run(experiment, "tester", now, {"mlflow.parentRunId": ids["first"]}, "child")
    store.update_run(child.id, status="FINISHED", end_time=now + 1)
    store.create_registered_model(MODEL)
    store.create_model_version(MODEL, f"runs:/{ids['first']}/model", ids["first"])
    store.close()
    return store_dir, ids


@pytest.fixture(scope="module")
def ui_server(shell_store: tuple[Path, dict[str, str]], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    store_dir, ids = shell_store
    with serve(store_dir, tmp_path_factory.mktemp("shell-logs")) as server:
        # the registered version's files, uploaded as an MLflow client does (the version page reads its MLmodel)
        mlmodel = b"artifact_path: model\nflavors:\n  python_function:\n    loader_module: shell_model\n"
        upload = urllib.request.Request(
            f"{server.url}/api/2.0/mlflow-artifacts/artifacts/{ids['experiment']}/{ids['first']}/artifacts/model/MLmodel",
            data=mlmodel, method="PUT")
        with urllib.request.urlopen(upload) as response:
            assert response.status == 200
        yield server


class Requests:
    """Every request the page makes, the responses it got, and how many are still in flight."""

    def __init__(self, page: Any) -> None:
        self.urls: list[str] = []
        self.responses: dict[str, Any] = {}
        self.pending: set[Any] = set()
        self.refused: list[str] = []  # answers >= 400, to say which request a console error is about
        page.on("request", self._started)
        page.on("requestfinished", lambda request: self.pending.discard(request))
        page.on("requestfailed", lambda request: self.pending.discard(request))
        page.on("response", self._answered)

    def _started(self, request: Any) -> None:
        self.urls.append(request.url)
        self.pending.add(request)

    def _answered(self, response: Any) -> None:
        self.responses.setdefault(response.url, response)
        if response.status >= 400:
            self.refused.append(f"{response.status} {response.url}")

    def outside(self) -> list[str]:
        """Requests to anywhere but the loopback server (data: and blob: URLs stay in the page)."""
        return [url for url in self.urls if urlsplit(url).scheme not in ("data", "blob", "about")
                and urlsplit(url).hostname != "127.0.0.1"]


def settle(page: Any, requests: Requests | None = None, quiet_ms: int = 400) -> str:
    """Wait until the page has rendered (main is neither empty nor loading) and, with ``requests``, until no
    request has been in flight for ``quiet_ms``; the text of <main>."""
    wait_until(lambda: _rendered(page) is not None, what="the page to render (or to show an error)")
    if requests is not None:
        quiet_since = time.monotonic()
        deadline = quiet_since + 15
        while time.monotonic() < deadline:
            page.wait_for_timeout(100)  # lets Playwright deliver the request events
            if requests.pending:
                quiet_since = time.monotonic()
            elif (time.monotonic() - quiet_since) * 1000 >= quiet_ms:
                break
    return page.inner_text("main").strip()


def _rendered(page: Any) -> str | None:
    """<main>'s text once the page has rendered, "" when it failed with an error shown; else None."""
    if page.locator("#error").is_visible():
        return ""
    text: str = page.inner_text("main").strip()
    return text if text and text != "Loading…" else None


def theme(page: Any) -> tuple[str, str]:
    """The theme the document says it has, and the page's background colour (what a person sees)."""
    return page.evaluate("[document.documentElement.dataset.theme, getComputedStyle(document.body).backgroundColor]")


def test_page_loads_with_the_nav(page: Any) -> None:
    page.goto("/")
    settle(page)
    nav = page.get_by_role("navigation", name="Main")
    assert [a.inner_text() for a in nav.get_by_role("link").all()] == ["Experiments", "Models"]
    assert page.get_by_role("link", name="Experiments").get_attribute("aria-current") == "page"
    page.get_by_role("link", name="Models").click()
    wait_until(lambda: page.get_by_role("link", name="Models").get_attribute("aria-current") == "page",
               what="Models to be the current nav entry")
    assert page.get_by_role("link", name="Experiments").get_attribute("aria-current") is None
    settle(page)
    assert page.title() == "proj"
    assert page.errors == []


def test_theme_toggle_switches_and_survives_a_reload(page: Any) -> None:
    page.goto("/")
    settle(page)
    light = theme(page)
    assert light[0] == "light"  # the context prefers light and nothing is saved yet
    toggle = page.get_by_role("button", name="Switch between dark and light theme")
    toggle.click()
    dark = theme(page)
    assert dark[0] == "dark" and dark[1] != light[1]
    assert page.evaluate("localStorage.getItem('proj.theme')") == "dark"
    screenshot(page, "shell-dark")
    page.reload()
    settle(page)
    assert theme(page) == dark  # kept across the reload, before any click
    page.get_by_role("button", name="Switch between dark and light theme").click()
    page.reload()
    settle(page)
    assert theme(page) == light
    assert page.errors == []


def test_system_dark_preference_is_the_default(browser: Any, ui_server: Server) -> None:
    with browser_helpers.new_page(browser, ui_server.url, dark=True) as page:
        page.goto("/")
        settle(page)
        assert theme(page)[0] == "dark"
        assert page.errors == []


def test_skip_link_moves_focus_to_the_content_from_the_keyboard(page: Any,
                                                                shell_store: tuple[Path, dict[str, str]]) -> None:
    # a run's page: the experiments and runs pages put the focus in their search box as they open
    route = f"#/runs/{shell_store[1]['first']}"
    page.goto("/" + route)
    before = settle(page, Requests(page))
    page.keyboard.press("Tab")
    skip = page.evaluate("[document.activeElement.textContent, document.activeElement.getBoundingClientRect().left]")
    assert skip[0] == "Skip to content" and skip[1] >= 0  # the first stop, and on screen while it has focus
    page.keyboard.press("Enter")
    wait_until(lambda: page.evaluate("document.activeElement.id") == "main", what="focus on <main>")
    assert page.evaluate("location.hash") == route  # the route stays: the link is not a page
    assert settle(page) == before
    assert page.errors == []


def test_unknown_route_says_not_found(page: Any) -> None:
    page.goto("/#/no/such/page")
    text = settle(page)
    assert page.get_by_role("heading", level=1).inner_text() == "Not found"
    assert "#/no/such/page" in text
    assert page.errors == []


def test_every_page_only_talks_to_the_server(page: Any, ui_server: Server,
                                             shell_store: tuple[Path, dict[str, str]]) -> None:
    """A walk over every page: each renders without an error, and no request leaves 127.0.0.1 (no CDN, no
    font or script from elsewhere); the static files come with an ETag and a Cache-Control."""
    ids = shell_store[1]
    requests = Requests(page)
    walk = [
        ("experiments", "#/experiments", "shell-demo"),
        ("runs", f"#/experiments/{ids['experiment']}", "second"),
        ("run", f"#/runs/{ids['first']}", "first"),
        ("compare", f"#/compare?runs={ids['first']},{ids['second']}", "second"),
        ("models", "#/models", MODEL),
        ("model", f"#/models/{MODEL}", "1"),
        ("version", f"#/models/{MODEL}/versions/1", MODEL),
    ]
    for name, route, expected in walk:
        page.goto("/" + route)
        text = settle(page, requests)
        assert page.errors == [], f"{name} page ({route}): {requests.refused}"
        assert page.locator("#error").is_hidden(), f"{name} page: {page.inner_text('#error')}"
        assert "Not found" not in text, name
        assert expected in text, f"{name} page ({route}) does not show {expected!r}: {text[:300]!r}"
    assert any("/ajax-api/2.0/proj/" in url for url in requests.urls)  # the recorder saw the pages' data calls
    assert requests.outside() == []
    static = {url: response for url, response in requests.responses.items() if urlsplit(url).path.startswith("/static/")}
    paths = {urlsplit(url).path for url in static}
    assert {"/static/js/app.js", "/static/css/app.css"} <= paths
    for url, response in static.items():
        assert response.status in (200, 304), url
        headers = response.all_headers()
        assert headers.get("etag") and headers.get("cache-control"), f"{url}: {headers}"


def test_static_files_revalidate_with_their_etag(ui_server: Server) -> None:
    with urllib.request.urlopen(ui_server.url + "/") as response:
        assert response.headers["ETag"] and response.headers["Cache-Control"] == "no-cache"
    for path in ("/static/js/app.js", "/static/css/app.css", "/static/vendor/uplot/uPlot.esm.js"):
        with urllib.request.urlopen(ui_server.url + path) as response:
            etag = response.headers["ETag"]
            assert etag and response.headers["Cache-Control"] == "no-cache", path
        again = urllib.request.Request(ui_server.url + path, headers={"If-None-Match": etag})
        with pytest.raises(urllib.error.HTTPError) as not_modified:
            urllib.request.urlopen(again)
        assert not_modified.value.code == 304, path


def test_the_wheel_ships_the_ui(tmp_path: Path) -> None:
    """proj's wheel, built from this tree, holds every file under ui/static (the shell, the pages, the vendored
    uPlot with its record), and VENDORED.md's sha256 column matches the vendored files."""
    cli_helpers.require(_importable("hatchling"), "hatchling is not installed (pip install -e '.[test]')")
    out = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                          str(tmp_path), str(REPO)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    (wheel,) = tmp_path.glob("proj-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        shipped = {name.removeprefix("proj/server/ui/static/") for name in names
                   if name.startswith("proj/server/ui/static/")}
        tree = {str(p.relative_to(STATIC)) for p in STATIC.rglob("*") if p.is_file()}
        assert {"index.html", "js/app.js", "vendor/uplot/uPlot.esm.js", "vendor/VENDORED.md"} <= shipped
        assert tree <= shipped, sorted(tree - shipped)
        rows = _vendored_rows(zf.read("proj/server/ui/static/vendor/VENDORED.md").decode())
        assert "uplot/uPlot.esm.js" in rows
        for file, digest in rows.items():
            data = zf.read(f"proj/server/ui/static/vendor/{file}")
            assert hashlib.sha256(data).hexdigest() == digest, file


def _vendored_rows(text: str) -> dict[str, str]:
    """file -> sha256 from VENDORED.md's table (columns: package, version, licence, source, file, sha256)."""
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 6 and re.fullmatch(r"[0-9a-f]{64}", cells[5]):
            rows[cells[4]] = cells[5]
    return rows


def _importable(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


@pytest.mark.parametrize("require_all", [False, True])
def test_a_missing_browser_skips_or_fails_under_require_all(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                            require_all: bool) -> None:
    """Without Chromium the UI tests skip locally and fail in CI (PROJ_TEST_REQUIRE_ALL=1), never pass."""
    monkeypatch.setattr(browser_helpers, "CHROMIUM", str(tmp_path / "no-chromium"))
    monkeypatch.setenv("PATH", str(tmp_path))  # nor a `chromium` anywhere on PATH
    monkeypatch.setattr(cli_helpers, "REQUIRE_ALL", require_all)
    outcome = pytest.fail.Exception if require_all else pytest.skip.Exception
    with pytest.raises(outcome, match="no Chromium"):
        browser_helpers.require_browser()
