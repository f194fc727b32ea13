"""Builds under stress: two runs at once build once; kill -9 mid-install leaves nothing reused."""
from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pytest

from helpers.wheels import make_gated_sdist

PY = "%d.%d" % sys.version_info[:2]
MLPROJECT = "name: c\nentry_points:\n  main:\n    command: \"python -c 'import {mod}; print({mod}.VERSION)'\"\n"


def wait_for(path: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def builds(proj) -> int:  # noqa: ANN001 - conftest Proj
    store = Path(proj.env["PROJ_TRACKING_URI"])
    return sum("creating virtualenv" in p.read_text() for p in store.rglob("env-build.log"))


@pytest.mark.slow
def test_concurrent_runs_build_the_env_once(offline, make_project) -> None:  # noqa: ANN001
    root = make_project({"MLproject": MLPROJECT.format(mod="tinyb"),
                         "python_env.yaml": f'python: "{PY}"\ndependencies: [tinyb]\n'})
    procs = [offline.popen("run", str(root)) for _ in range(2)]
    results = [p.communicate(timeout=180) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], results
    runs = offline.runs()
    assert len(runs) == 2 and len({r["env"]["key"] for r in runs}) == 1, runs
    assert builds(offline) == 1
    assert sorted(r["env"]["cache_hit"] for r in runs) == [False, True]


@pytest.mark.slow
def test_kill_9_mid_install_then_clean_rebuild(offline, make_project, wheelhouse: Path, tmp_path: Path,
                                               shared_cache: Path) -> None:  # noqa: ANN001
    gate = tmp_path / "gate"
    make_gated_sdist(wheelhouse, "gatedpkg", "1.0", gate)
    root = make_project({"MLproject": MLPROJECT.format(mod="gatedpkg"),
                         "python_env.yaml": f'python: "{PY}"\ndependencies: [gatedpkg, tinya]\n'})
    proc = offline.popen("run", str(root))
    try:
        wait_for(gate / "building")  # uv is now inside the package's build: the env is half-installed
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=30)
    envs = shared_cache / "envs"
    half = [p for p in envs.iterdir() if p.is_dir() and not (p / ".proj-env.json").exists()]
    assert len(half) == 1, "the interrupted build should be on disk, unpublished"
    (gate / "release").touch()
    out = offline("run", str(root))
    assert out.code == 0, out
    assert "a previous build did not finish" in out.stderr and out.stdout.strip().endswith("1.0"), out
    assert (half[0] / ".proj-env.json").exists()
    assert all((p / ".proj-env.json").exists() for p in envs.iterdir() if p.is_dir())


@pytest.mark.slow
def test_ctrl_c_mid_install_marks_the_run_killed_and_leaves_nothing(offline, make_project, wheelhouse: Path,
                                                                   tmp_path: Path, shared_cache: Path) -> None:  # noqa: ANN001
    gate = tmp_path / "gate"
    make_gated_sdist(wheelhouse, "gatedint", "1.0", gate)
    root = make_project({"MLproject": MLPROJECT.format(mod="gatedint"),
                         "python_env.yaml": f'python: "{PY}"\ndependencies: [gatedint]\n'})
    envs = shared_cache / "envs"
    before = {p.name for p in envs.iterdir()} if envs.is_dir() else set()
    proc = offline.popen("run", str(root))
    wait_for(gate / "building")
    backend_pid = int((gate / "building").read_text())
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    [run] = offline.runs()
    assert run["status"] == "KILLED" and run["failure_phase"] == "environment", run
    assert (Path(run["run_dir"]) / "logs" / "env-build.log").read_text()  # the build log is kept
    new = [p for p in envs.iterdir() if p.is_dir() and p.name not in before]
    assert new == [], "an interrupted build must not leave its directory behind"
    deadline = time.monotonic() + 10
    while _alive(backend_pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(backend_pid), "the build backend uv started must be stopped too"
    (gate / "release").touch()
    out = offline("run", str(root))
    assert out.code == 0 and out.stdout.strip().endswith("1.0"), out


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().rsplit(")", 1)[-1].split()[0] != "Z"
