"""The linters the project promises to keep clean (ruff, mypy --strict), run as a user would, from the repo root."""
from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

from helpers.cli import require
from helpers.paths import REPO

# Both read their settings from pyproject.toml; one group keeps the two heavy runs on one xdist worker.
pytestmark = pytest.mark.xdist_group("lint")


def _run_tool(module: str, *args: str) -> subprocess.CompletedProcess[str]:
    require(importlib.util.find_spec(module) is not None, f"{module} is not installed (pip install -e '.[test]')")
    return subprocess.run([sys.executable, "-m", module, *args], cwd=REPO, capture_output=True, text=True, check=False)


def test_ruff_reports_nothing() -> None:
    out = _run_tool("ruff", "check", "--no-cache", "--output-format", "concise", "src", "tests", "benchmarks")
    if out.returncode != 0:
        pytest.fail(f"ruff check src tests benchmarks found problems:\n{out.stdout}{out.stderr}", pytrace=False)


def test_mypy_strict_reports_nothing() -> None:
    out = _run_tool("mypy")
    if out.returncode != 0:
        pytest.fail(f"mypy (strict, per pyproject.toml) found problems:\n{out.stdout}{out.stderr}", pytrace=False)
