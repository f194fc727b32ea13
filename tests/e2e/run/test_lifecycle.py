"""Run lifecycle with real processes: Ctrl-C, SIGTERM, kill -9 of the runner, concurrency, detach, cancel."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers.cli import wait_for

# The entry point writes its pid (and a grandchild's) and then sleeps; it reports a metric first.
SLEEPER = {
    "MLproject": "entry_points:\n  main:\n    command: python sleeper.py\n",
    "sleeper.py": """\
        import os, subprocess, sys, time
        import proj_client
        proj_client.log_metric("started", 1)
        if os.environ.get("SAVE_MODEL"):
            proj_client.save_model({"weights": [1, 2]}, flavor="pickle")
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
        with open("pids.txt", "w") as fh:
            fh.write(f"{os.getpid()} {child.pid}\\n")
        print("ready", flush=True)
        time.sleep(300)
        """,
}


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purposes.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def pids_of(root: Path) -> list[int]:
    text = wait_for(lambda: (root / "pids.txt").exists() and (root / "pids.txt").read_text().strip(), what="pids.txt")
    return [int(p) for p in text.split()]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_interrupt_kills_the_whole_group_and_marks_killed(proj, make_project, sig) -> None:
    root = make_project(SLEEPER)
    runner = proj.popen("run", str(root), "--env-manager", "local")
    pids = pids_of(root)
    runner.send_signal(sig)
    out, err = runner.communicate(timeout=30)
    assert runner.returncode == (130 if sig == signal.SIGINT else 143), err  # as a shell reports them
    for pid in pids:
        wait_for(lambda pid=pid: not alive(pid), 10, f"pid {pid} to die")
    [run] = proj.runs()
    assert run["status"] == "KILLED" and run["failure_phase"] == "execution", run
    shown = proj.show(run["id"])
    assert "ready" in (Path(shown["run_dir"]) / "logs" / "stdout.log").read_text()  # logs kept
    assert shown["metrics"]["started"]["value"] == 1.0


def test_killed_runner_reads_failed_and_the_next_acting_command_collects_it(proj, make_project) -> None:
    root = make_project(SLEEPER)
    proj.env["SAVE_MODEL"] = "1"
    runner = proj.popen("run", str(root), "--env-manager", "local")
    pids = pids_of(root)
    run_id = wait_for(lambda: proj.runs() and proj.runs()[0]["id"], what="the run record")
    log = Path(proj.env["PROJ_TRACKING_URI"]) / "runs" / run_id / "logs" / "stdout.log"
    wait_for(lambda: log.exists() and "ready" in log.read_text(), what="the entry point's output in its log")
    follower = proj.popen("runs", "logs", run_id, "--follow")  # started while the run is alive
    time.sleep(0.3)
    runner.kill()  # kill -9: the runner cannot record anything; its entry point is orphaned
    runner.wait(timeout=10)
    out, err = follower.communicate(timeout=30)  # the follower notices the dead owner and ends
    assert follower.returncode == 1 and "ready" in out and "FAILED (runner, not yet collected)" in err, err
    [run] = proj.runs()  # reading shows it FAILED but writes nothing: the orphan and the model are left as they are
    assert (run["status"], run["failure_phase"], run["collected"]) == ("FAILED", "runner", False), run
    assert "died" in run["failure_reason"] and all(alive(pid) for pid in pids)
    collect = proj("runs", "collect")  # as `proj run`, `runs cancel` and `reproduce` do first
    assert collect.code == 0 and f"collected 1 run(s) whose runner died: {run_id[:12]}" in collect.stderr, collect
    for pid in pids:
        wait_for(lambda pid=pid: not alive(pid), 10, f"orphan {pid} to be stopped")
    shown = proj.show(run["id"])
    assert (shown["status"], shown["failure_phase"], shown["collected"]) == ("FAILED", "runner", True), shown
    assert shown["metrics"]["started"]["value"] == 1.0  # what it reported is kept
    assert [m["path"] for m in shown["models"]] == ["model"] and shown["models"][0]["valid"]  # and its model


def test_eight_concurrent_runs_into_one_store_are_all_recorded(proj, make_project) -> None:
    root = make_project({
        "MLproject": "entry_points:\n  main:\n    parameters: {i: int}\n    command: python work.py {i}\n",
        "work.py": """\
            import sys
            import proj_client
            i = int(sys.argv[1])
            for step in range(200):
                proj_client.log_metric("m", i * 1000 + step, step=step)
            """,
    })
    procs = [proj.popen("run", str(root), "--env-manager", "local", "-P", f"i={i}") for i in range(8)]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    runs = proj.runs()
    assert len(runs) == 8 and {r["status"] for r in runs} == {"FINISHED"}
    for r in runs:
        shown = proj.show(r["id"])
        i = int(shown["params"][0]["value"])
        assert shown["metrics"]["m"] == {"key": "m", "value": i * 1000 + 199.0, "step": 199,
                                         "timestamp": shown["metrics"]["m"]["timestamp"]}
    out = proj("runs", "list", "--json")
    assert len(out.json()) == 8


def test_detach_then_follow_logs_then_cancel(proj, make_project) -> None:
    root = make_project(SLEEPER)
    out = proj("run", str(root), "--env-manager", "local", "--detach")
    assert out.code == 0, out
    run_id = out.stdout.strip()
    pids = pids_of(root)
    assert proj.show(run_id)["status"] == "RUNNING"
    wait_for(lambda: "ready" in proj("runs", "logs", run_id).stdout, what="log output")
    cancelled = proj("runs", "cancel", run_id[:10])
    assert cancelled.code == 0, cancelled
    assert proj.show(run_id)["status"] == "KILLED"
    for pid in pids:
        wait_for(lambda pid=pid: not alive(pid), 10, f"pid {pid} to die")


def test_detached_run_finishes_and_follow_returns(proj, make_project) -> None:
    root = make_project({"MLproject": "entry_points:\n  main:\n"
                                      "    command: 'for i in 1 2 3; do echo line $i; sleep 0.2; done'\n"})
    run_id = proj("run", str(root), "--env-manager", "local", "--detach").stdout.strip()
    follow = proj("runs", "logs", run_id, "--follow", "--stream", "stdout", timeout=60)
    assert follow.code == 0 and "line 3" in follow.stdout and "FINISHED (exit code 0)" in follow.stderr, follow
    failing = make_project({"MLproject": "entry_points:\n  main:\n    command: 'sleep 0.5; exit 4'\n"}, name="f")
    run_id = proj("run", str(failing), "--env-manager", "local", "--detach").stdout.strip()
    follow = proj("runs", "logs", "last", "--follow", timeout=60)
    assert follow.code == 4 and f"run {run_id} FAILED (exit code 4)" in follow.stderr, follow


def test_python_api_sync_and_async(proj_env, make_project, tmp_path) -> None:
    root = make_project(SLEEPER)
    quick = make_project({"MLproject": "entry_points:\n  main:\n    parameters: {x: float}\n    command: 'exit 0'\n",
                          "fail.sh": "exit 3\n"}, name="quick")
    script = f"""
import proj, time
r = proj.run({str(quick)!r}, parameters={{"x": 0.5}}, env_manager="local")
assert r.wait() and r.get_status() == "FINISHED", r.get_status()
try:
    proj.run({str(quick)!r}, parameters={{"x": 0.5}}, env_manager="local", experiment_nmae="typo")
    raise SystemExit("a misspelled option was accepted")
except TypeError:
    pass
from proj.errors import RunFailed
try:
    proj.run({str(quick)!r}, parameters={{"x": 0.5}}, env_manager="local", entry_point="fail.sh")
    raise SystemExit("a failed synchronous run did not raise")
except RunFailed as exc:
    assert exc.run.get_status() == "FAILED"
a = proj.run({str(root)!r}, env_manager="local", synchronous=False)
assert a.get_status() == "RUNNING"
import pathlib
deadline = time.time() + 30
while not (pathlib.Path({str(root)!r}) / "pids.txt").exists() and time.time() < deadline:
    time.sleep(0.05)
a.cancel()
assert a.get_status() == "KILLED", a.get_status()
assert a.wait() is False
print("api-ok", r.run_id, a.run_id)
"""
    out = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=proj_env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0 and "api-ok" in out.stdout, out.stderr


def test_prune_leaves_the_env_and_checkout_of_a_running_run_alone(proj, make_project) -> None:
    import shutil

    from helpers.cli import require

    require(shutil.which("git") is not None, "git is not installed")
    root = make_project(SLEEPER)
    for args in (["init", "-q"], ["add", "-A"], ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x"]):
        subprocess.run(["git", *args], cwd=root, check=True)
    runner = proj.popen("run", f"file://{root}")  # a virtualenv run from a git checkout
    try:
        wait_for(lambda: proj.runs() and proj.runs()[0]["env"].get("key"), 120, "the env to be built")
        run = proj.runs()[0]
        checkout = Path(proj.show(run["id"])["source"]["dir"])
        work = Path(proj.env["PROJ_CACHE_DIR"]) / "git" / "work"  # runs work in a private copy
        wait_for(lambda: list(work.glob("*/pids.txt")), 60, "the entry point to start")
        assert proj("env", "prune", "--all").code == 0
        assert proj("cache", "prune", "--all").code == 0
        assert Path(proj.show(run["id"])["env"]["env_path"]).is_dir() and checkout.is_dir()
    finally:
        runner.send_signal(signal.SIGINT)
        runner.communicate(timeout=30)
    assert proj("env", "prune", "--all").code == 0
    assert not Path(proj.show(run["id"])["env"]["env_path"]).exists()


def test_cancel_never_signals_a_process_that_is_not_the_runs_owner(proj) -> None:
    import sqlite3

    from proj.tracking.records import NewRun
    from proj.tracking.sqlite import SqliteStore

    store_dir = Path(proj.env["PROJ_TRACKING_URI"])
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        run = SqliteStore(store_dir).create_run(NewRun("e", None, {}, "p", "main", "x", [], {}, "local"),
                                                 pid=bystander.pid)
        with sqlite3.connect(store_dir / "proj.db") as db:  # as if the owner died and its pid was reused
            db.execute("UPDATE runs SET pid_start = 'not-its-start-time' WHERE id = ?", (run.id,))
        out = proj("runs", "cancel", run.id)
        assert out.code == 0 and bystander.poll() is None, out
        assert proj.show(run.id)["status"] == "FAILED"  # the reaper saw a dead owner; nobody was signalled
        with sqlite3.connect(store_dir / "proj.db") as db:
            db.execute("UPDATE runs SET status = 'RUNNING', host = 'elsewhere' WHERE id = ?", (run.id,))
        out = proj("runs", "cancel", run.id)
        assert out.code == 2 and "running on host elsewhere" in out.stderr, out
        assert bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait()
