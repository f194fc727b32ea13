"""Shared fixtures: a project factory, a real `proj` subprocess runner, and guards for real parts.

Parts that are absent (docker daemon, git, mlflow, ...) skip their tests with a reason locally;
with PROJ_TEST_REQUIRE_ALL=1 (set by CI) the same absence is a failure.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from wheels import offline, wheelhouse  # noqa: F401 - fixtures shared by the virtualenv-based tests

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "example-projects"
REQUIRE_ALL = os.environ.get("PROJ_TEST_REQUIRE_ALL") == "1"


def require(condition: bool, reason: str) -> None:
    """Skip (or fail, under PROJ_TEST_REQUIRE_ALL=1) when a real part the test needs is absent."""
    if condition:
        return
    if REQUIRE_ALL:
        pytest.fail(f"required part missing: {reason}", pytrace=False)
    pytest.skip(reason)


def wait_for(predicate: Any, timeout: float = 30.0, what: str = "condition") -> Any:
    """Poll ``predicate`` until it returns something truthy (returned), or fail after ``timeout`` seconds."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@dataclass
class Outcome:
    """The result of one `proj` invocation; its repr shows everything a failing assert needs."""

    cmd: list[str]
    code: int
    stdout: str
    stderr: str

    def __repr__(self) -> str:
        return (f"\n$ {' '.join(self.cmd)}\nexit code: {self.code}\n--- stdout ---\n{self.stdout}"
                f"\n--- stderr ---\n{self.stderr}")

    def json(self) -> Any:
        return json.loads(self.stdout)["data"]


class Proj:
    """Runs the real `proj` CLI as a subprocess in a test's directory, with an isolated store."""

    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        self.cwd = cwd
        self.env = env

    def __call__(self, *args: str, cwd: Path | None = None, timeout: float = 240, input: str | None = None,
                 env: dict[str, str] | None = None) -> Outcome:
        cmd = [sys.executable, "-m", "proj.cli.main", *args]
        proc = subprocess.run(cmd, cwd=cwd or self.cwd, env={**self.env, **(env or {})}, capture_output=True,
                              text=True, timeout=timeout, input=input)
        return Outcome(["proj", *args], proc.returncode, proc.stdout, proc.stderr)

    def popen(self, *args: str, cwd: Path | None = None, **kwargs: Any) -> subprocess.Popen:
        cmd = [sys.executable, "-m", "proj.cli.main", *args]
        return subprocess.Popen(cmd, cwd=cwd or self.cwd, env=self.env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, **kwargs)

    def runs(self) -> list[dict[str, Any]]:
        out = self("runs", "list", "--json", "-n", "0")
        assert out.code == 0, out
        return out.json()

    def show(self, run_id: str) -> dict[str, Any]:
        out = self("runs", "show", run_id, "--json")
        assert out.code == 0, out
        return out.json()


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One env/git cache for the whole session (per xdist worker): built envs are reused across tests."""
    return tmp_path_factory.mktemp("proj-cache")


@pytest.fixture
def proj_env(shared_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PROJ_", "MLFLOW_"))}
    env["PROJ_CACHE_DIR"] = str(shared_cache)
    env["PROJ_TRACKING_URI"] = str(tmp_path / "store")
    for key in [k for k in os.environ if k.startswith("PROJ_") and k != "PROJ_TEST_REQUIRE_ALL"]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("PROJ_CACHE_DIR", env["PROJ_CACHE_DIR"])
    monkeypatch.setenv("PROJ_TRACKING_URI", env["PROJ_TRACKING_URI"])
    return env


@pytest.fixture
def proj(tmp_path: Path, proj_env: dict[str, str]) -> Proj:
    return Proj(tmp_path, proj_env)


@pytest.fixture
def make_project(tmp_path: Path):
    """Write a project: ``make_project({"MLproject": "...", "train.py": "..."}, name="p")`` -> its dir."""

    def make(files: dict[str, str | bytes], name: str = "project") -> Path:
        root = tmp_path / name
        root.mkdir(parents=True, exist_ok=True)
        for rel, content in files.items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(textwrap.dedent(content))
        return root

    return make
