"""Fixtures of the UI tests: one system Chromium per module, a fresh page per test, a store served by proj server."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest

from helpers.browser import chromium, new_page, screenshot
from helpers.servers import Server, proj_server


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as b:
        yield b


@pytest.fixture()
def page(browser: Any, request: pytest.FixtureRequest, ui_server: Server) -> Iterator[Any]:
    """A page on ``ui_server`` (each module defines ``ui_server``); a screenshot of the last view is kept."""
    with new_page(browser, ui_server.url) as p:
        yield p
        try:
            screenshot(p, request.node.name.replace("/", "_"))
        except Exception:  # a page that already crashed: the test's own failure says why
            pass


def serve(store: Path, log_dir: Path, *extra: str) -> Any:
    """``proj server`` over ``store`` for a module's ``ui_server`` fixture."""
    return proj_server(store, log_dir, *extra)
