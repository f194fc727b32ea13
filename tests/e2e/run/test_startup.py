"""Start-up stays light: a warm `proj run` and the reading commands never import the heavy libraries."""
from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = {"docker", "git", "conda_lock", "rattler", "jsonschema", "requests", "yaml", "virtualenv"}


def imported(proj, *args: str) -> set[str]:
    """Top-level modules a real `proj` process imported (read from -X importtime)."""
    cmd = [sys.executable, "-X", "importtime", "-m", "proj.cli.main", *args]
    proc = subprocess.run(cmd, cwd=proj.cwd, env=proj.env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    names = set()
    for line in proc.stderr.splitlines():
        if line.startswith("import time:") and line.count("|") == 2:
            names.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    return names


@pytest.mark.parametrize("manager", ["local", "virtualenv"])
def test_a_warm_run_imports_no_heavy_library(proj, make_project, manager) -> None:
    root = make_project({"MLproject": "name: light\nentry_points:\n  main:\n    parameters: {a: float}\n"
                                      "    command: python -c pass\n"})
    args = ("-q", "run", str(root), "--env-manager", manager, "-P", "a=1")
    assert proj(*args).code == 0  # cold: builds, validates, freezes
    assert imported(proj, *args) & HEAVY == set()


@pytest.mark.parametrize("args", [("--help",), ("runs", "list"), ("runs", "list", "--json")])
def test_reading_commands_import_no_heavy_library(proj, args) -> None:
    assert imported(proj, *args) & HEAVY == set()
