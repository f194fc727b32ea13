"""Nothing an entry point started outlives its run: background jobs, a `setsid` grandchild, a double-fork
daemon -- after Ctrl-C of the runner, and after `kill -9` of the runner followed by a reaper."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Iterator

import pytest

from helpers.cli import wait_for

# Each process the entry point leaves carries the marker in its argv, so the test can look for it in
# /proc/*/cmdline. The leader ("main") waits until the file `stop` appears, then exits.
SPAWNER = {
    "MLproject": "entry_points:\n  main:\n    parameters: {marker: str}\n    command: bash start.sh {marker}\n",
    "start.sh": """\
        python -c 'import time; time.sleep(300)' "$1-background" &
        setsid python -c 'import time; time.sleep(300)' "$1-setsid" &
        python daemon.py "$1-daemon"
        echo ready
        exec python -c 'import os, time
        while not os.path.exists("stop"): time.sleep(0.05)' "$1-main"
        """,
    # The classic daemon: fork, setsid, fork again; the intermediate parent exits at once.
    "daemon.py": """\
        import os, sys, time
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                os.execvp(sys.executable, [sys.executable, "-c", "import time; time.sleep(300)", sys.argv[1]])
            os._exit(0)
        os.wait()
        """,
}


def with_marker(marker: str, what: str = "") -> list[int]:
    """Live (non-zombie) processes whose command line holds ``<marker>-<what>`` (the runner's own holds
    ``marker=<marker>`` only, so it is not counted)."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{name}/cmdline").read_bytes()
            state = Path(f"/proc/{name}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if f"{marker}-{what}".encode() in cmdline and state not in ("Z", "X"):
            found.append(int(name))
    return found


@pytest.fixture
def marker() -> Iterator[str]:
    """A unique marker; whatever still carries it when the test ends (it failed) is killed."""
    marker = f"survivor-{uuid.uuid4().hex}"
    yield marker
    for pid in with_marker(marker):
        os.kill(pid, signal.SIGKILL)


def start(proj, make_project, marker: str) -> tuple[subprocess.Popen, Path]:
    root = make_project(SPAWNER)
    runner = proj.popen("run", str(root), "--env-manager", "local", "-P", f"marker={marker}")
    # All four: background job, setsid child, double-forked daemon, and the leader itself.
    # The leader is exec'd last, after "ready"; daemon.py's own forks carry the marker for a moment too.
    wait_for(lambda: with_marker(marker, "main"), 60, "the entry point's leader")
    wait_for(lambda: len(with_marker(marker)) == 4, 30, "the entry point's four processes")
    return runner, root


def test_ctrl_c_stops_background_setsid_and_daemon_children(proj, make_project, marker) -> None:
    runner, _ = start(proj, make_project, marker)
    runner.send_signal(signal.SIGINT)
    _, err = runner.communicate(timeout=60)
    assert runner.returncode == 130, err
    assert with_marker(marker) == []  # the runner returned only after all of them were gone
    [run] = proj.runs()
    assert run["status"] == "KILLED", run
    assert "ready" in (Path(proj.show(run["id"])["run_dir"]) / "logs" / "stdout.log").read_text(), err


def test_kill_9_of_the_runner_then_the_reaper_stops_everything_even_without_the_leader(proj, make_project, marker) -> None:
    runner, root = start(proj, make_project, marker)
    runner.kill()  # kill -9: the runner cannot stop anything
    runner.wait(timeout=10)
    (root / "stop").write_text("")  # and the group leader ends too, leaving its group and the others
    wait_for(lambda: len(with_marker(marker)) == 3, 30, "the group leader to exit")
    collected = proj("runs", "collect")
    assert collected.code == 0, collected
    wait_for(lambda: with_marker(marker) == [], 10, f"no process with {marker} left")
    [run] = proj.runs()
    assert run["status"] == "FAILED" and run["failure_phase"] == "runner", run
    assert "ready" in (Path(proj.show(run["id"])["run_dir"]) / "logs" / "stdout.log").read_text()


def test_kill_9_with_the_leader_alive_stops_the_group_and_the_escaped(proj, make_project, marker) -> None:
    runner, _ = start(proj, make_project, marker)
    runner.kill()
    runner.wait(timeout=10)
    collected = proj("runs", "collect")
    assert collected.code == 0, collected
    wait_for(lambda: with_marker(marker) == [], 10, f"no process with {marker} left")
    [run] = proj.runs()
    assert run["status"] == "FAILED", run


def test_a_reused_group_id_is_not_signalled() -> None:
    """The recorded group is gone and its id now belongs to an unrelated session: the reaper leaves it."""
    from proj.execution.process import stop_run_processes

    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"], start_new_session=True,
                                env={k: v for k, v in os.environ.items() if k != "PROJ_RUN_ID"})
    try:
        stop_run_processes("no-such-run", stranger.pid, "not-its-start-time")
        assert stranger.poll() is None  # still running: neither its start time nor a marker matched
    finally:
        stranger.kill()
        stranger.wait()
