"""The real `proj` CLI as a subprocess (Proj, Outcome), polling (wait_for), and require() for absent real parts."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

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
