"""A real browser for the UI tests: Debian's Chromium, headless, driven by Playwright's Python package.

Never `playwright install` (the registries carry no browser builds): the system browser is launched by its path.
Screenshots of what a test saw go to ``$PROJ_TEST_ARTIFACTS/screenshots`` (default ``test-artifacts/``).
"""
from __future__ import annotations

import os
import shutil
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from helpers.cli import require

CHROMIUM = os.environ.get("PROJ_TEST_CHROMIUM", "/usr/bin/chromium")
# Without the background-networking flags Chromium keeps trying to reach outside hosts (refused here).
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-sync", "--disable-quic", "--disable-dev-shm-usage"]
ARTIFACTS = Path(os.environ.get("PROJ_TEST_ARTIFACTS", Path(__file__).resolve().parents[2] / "test-artifacts"))


def require_browser() -> None:
    """Skip (fail under PROJ_TEST_REQUIRE_ALL=1) without the system Chromium or the playwright package."""
    require(Path(CHROMIUM).exists() or shutil.which("chromium") is not None,
            f"no Chromium at {CHROMIUM} (apt-get install -y chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        require(False, "the playwright package is not installed (pip install -e '.[test]')")


@contextmanager
def chromium() -> Iterator[Any]:
    """One headless Chromium for a module's tests (a Playwright Browser)."""
    require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


class PageErrors(list[str]):
    """Uncaught exceptions and console errors the page produced (a test asserts there were none)."""


@contextmanager
def new_page(browser: Any, base_url: str, *, dark: bool = False, width: int = 1400, height: int = 900) -> Iterator[Any]:
    """A fresh page (its own context: no cookies or storage shared between tests) with ``page.errors``."""
    context = browser.new_context(base_url=base_url, viewport={"width": width, "height": height},
                                  color_scheme="dark" if dark else "light")
    page = context.new_page()
    errors = PageErrors()
    page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
    page.on("console", lambda msg: errors.append(f"console.{msg.type}: {msg.text}") if msg.type == "error" else None)
    page.errors = errors
    page.set_default_timeout(15_000)
    try:
        yield page
    finally:
        context.close()


def screenshot(page: Any, name: str) -> Path:
    """Save what the page shows now as ``<artifacts>/screenshots/<name>.png`` (kept as a test artifact)."""
    path = ARTIFACTS / "screenshots" / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=False)
    return path


README_SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def readme_screenshot(page: Any, name: str) -> Path:
    """A picture for the README: ``docs/screenshots/<name>.png`` when PROJ_UPDATE_SCREENSHOTS=1 (so a test run
    leaves the checked-in files alone), else beside the other test artifacts."""
    folder = README_SHOTS if os.environ.get("PROJ_UPDATE_SCREENSHOTS") == "1" else ARTIFACTS / "readme"
    path = folder / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path))
    return path


def wait_until(predicate: Any, timeout: float = 15.0, what: str = "condition") -> Any:
    """Poll ``predicate`` (a Python callable reading the page) until it returns a true value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {value!r})")
        time.sleep(0.1)
