"""Faults of the run store, with real processes and real SQLite files: concurrent reapers after kill -9,
a damaged or emptied proj.db, a read-only store, a full disk. Reading never writes; acting collects."""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest

from helpers.cli import require, wait_for
from proj.tracking.records import NewRun, ParamRecord
from proj.tracking.sqlite import SqliteStore

SLEEPER = {
    "MLproject": "entry_points:\n  main:\n    command: python sleeper.py\n",
    "sleeper.py": """\
        import os, time
        with open("pid.txt", "w") as fh:
            fh.write(str(os.getpid()))
        print("ready", flush=True)
        time.sleep(300)
        """,
}
QUICK = {
    "MLproject": "entry_points:\n  main:\n    parameters: {i: int}\n    command: python quick.py {i}\n",
    "quick.py": """\
        import sys
        import proj_client
        for step in range(20):
            proj_client.log_metric("loss", 1.0 / (step + 1 + int(sys.argv[1])), step=step)
        """,
}


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def one_error_line(out) -> str:
    """The command failed with exactly one `proj: error:` line and no traceback; returns that line."""
    assert out.code != 0, out
    assert "Traceback" not in out.stderr, out
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("proj: error: "), out
    return lines[0]


def point_count(store: Path, run_id: str, key: str) -> int:
    with closing(sqlite3.connect(f"file:{store / 'proj.db'}?mode=ro", uri=True)) as db:
        return db.execute("SELECT count(*) FROM metrics WHERE run_id = ? AND key = ?", (run_id, key)).fetchone()[0]


def quick_runs(proj, make_project, count: int = 3) -> list[str]:
    root = make_project(QUICK, name="quick")
    for i in range(count):
        out = proj("run", str(root), "--env-manager", "local", "-P", f"i={i}")
        assert out.code == 0, out
    return [r["id"] for r in proj.runs()]


def dead_runner_run(store: Path) -> str:
    """A RUNNING record whose owner is a process that has exited (as after kill -9 of its runner)."""
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    writer = SqliteStore(store)
    run = writer.create_run(NewRun("e", None, {"kind": "local"}, "p", "main", "x",
                                   [ParamRecord("a", "1", 1, "int", "user")], {}, "local"), pid=os.getpid())
    writer.close()
    with closing(sqlite3.connect(store / "proj.db")) as db, db:
        db.execute("UPDATE runs SET pid = ? WHERE id = ?", (gone.pid, run.id))
    (store / "runs" / run.id / "metrics.jsonl").write_text('{"key": "late", "value": 1}\n')
    return run.id


def settle(store: Path) -> None:
    """Close the store as its last writer would: the WAL is folded in and -wal/-shm removed, so a reader
    that cannot write has to open the bare file (the hardest case for read-only access)."""
    conn = sqlite3.connect(store / "proj.db")
    conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    conn.close()
    assert not (store / "proj.db-wal").exists() and not (store / "proj.db-shm").exists()


def test_concurrent_reapers_after_kill_9_ingest_every_point_exactly_once(proj, make_project) -> None:
    root = make_project(SLEEPER)
    runner = proj.popen("run", str(root), "--env-manager", "local")
    child = int(wait_for(lambda: (root / "pid.txt").exists() and (root / "pid.txt").read_text(), what="pid.txt"))
    [run] = proj.runs()
    store = Path(proj.env["PROJ_TRACKING_URI"])
    # Stopped, the runner's tailer cannot ingest what comes next; killed, it never will: the reapers must.
    os.kill(runner.pid, signal.SIGSTOP)
    with open(Path(run["run_dir"]) / "metrics.jsonl", "a") as fh:
        fh.writelines(json.dumps({"key": "m", "value": i, "step": i}) + "\n" for i in range(1000))
    os.kill(runner.pid, signal.SIGKILL)
    runner.wait(timeout=10)
    seen = proj.show(run["id"])  # reading shows the truth without collecting anything
    assert (seen["status"], seen["failure_phase"], seen["collected"]) == ("FAILED", "runner", False), seen
    assert point_count(store, run["id"], "m") == 0 and alive(child)
    reapers = [proj.popen("runs", "collect") for _ in range(8)]
    results = [(r.wait(timeout=120), r.stderr.read()) for r in reapers]
    assert all(code == 0 for code, _ in results), results
    assert sum("collected 1 run(s)" in err for _, err in results) == 1, results  # exactly one reaper won
    assert point_count(store, run["id"], "m") == 1000
    collected = proj.show(run["id"])
    assert (collected["status"], collected["failure_phase"], collected["collected"]) == ("FAILED", "runner", True)
    assert collected["metrics"]["m"]["step"] == 999
    wait_for(lambda: not alive(child), 10, "the orphaned entry point to be stopped")


def test_live_tailer_and_final_ingest_land_each_point_once(proj, make_project) -> None:
    root = make_project({
        "MLproject": "entry_points:\n  main:\n    command: python slow.py\n",
        "slow.py": """\
            import json, os, time
            with open(os.environ["PROJ_METRICS_FILE"], "a") as fh:
                for i in range(1000):
                    fh.write(json.dumps({"key": "m", "value": i, "step": i}) + "\\n")
                    if i % 100 == 99:
                        fh.flush()
                        time.sleep(0.3)  # across several polls of the tailer
            """,
    })
    out = proj("run", str(root), "--env-manager", "local")
    assert out.code == 0, out
    [run] = proj.runs()
    assert point_count(Path(proj.env["PROJ_TRACKING_URI"]), run["id"], "m") == 1000


@pytest.mark.parametrize("where", ["runs-table", "middle"])
def test_a_damaged_page_is_one_line_and_no_run_is_created(proj, make_project, where) -> None:
    ids = quick_runs(proj, make_project)
    store = Path(proj.env["PROJ_TRACKING_URI"])
    db = store / "proj.db"
    with closing(sqlite3.connect(db)) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # every page in the main file, as after a clean close
        page = conn.execute("PRAGMA page_size").fetchone()[0]
        runs_root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'runs'").fetchone()[0]
    size = db.stat().st_size
    offset = (runs_root - 1) * page + 100 if where == "runs-table" else (size // 2 // page) * page
    with open(db, "r+b") as fh:
        fh.seek(offset)
        fh.write(b"\xa5" * (page - 100 if where == "runs-table" else page))
    folders = sorted(p.name for p in (store / "runs").iterdir())
    if where == "runs-table":  # every reading command reads the runs table: each says so in one line
        for args in (["runs", "list"], ["runs", "list", "--json"], ["runs", "show", ids[0]],
                     ["runs", "diff", ids[0], ids[1]]):
            line = one_error_line(proj(*args))
            assert str(db) in line and "damaged" in line and ".recover" in line, line
    else:  # what a reading command reaches may be intact; it may never show a traceback
        for args in (["runs", "list"], ["runs", "show", ids[0]], ["runs", "diff", ids[0], ids[1]]):
            out = proj(*args)
            # `runs diff` exits 1 when the runs differ (these do): that is an answer, not an error
            ok = out.code == 0 or (args[1] == "diff" and out.code == 1 and not out.stderr.strip())
            assert ok or one_error_line(out), out
    root = make_project(QUICK, name="quick")
    line = one_error_line(proj("run", str(root), "--env-manager", "local", "-P", "i=9"))
    assert str(db) in line and "damaged" in line, line
    assert sorted(p.name for p in (store / "runs").iterdir()) == folders  # no run was created


def test_an_empty_store_file_beside_run_folders_is_refused(proj, make_project) -> None:
    quick_runs(proj, make_project, count=2)
    store = Path(proj.env["PROJ_TRACKING_URI"])
    (store / "proj.db").write_bytes(b"")
    for args in (["runs", "list"], ["models", "list"], ["runs", "show", "last"]):
        line = one_error_line(proj(*args))
        assert f"{store / 'proj.db'} is empty but 2 run folders exist" in line, line
    root = make_project(QUICK, name="quick")
    line = one_error_line(proj("run", str(root), "--env-manager", "local", "-P", "i=9"))
    assert "is empty but 2 run folders exist" in line
    assert (store / "proj.db").stat().st_size == 0 and len(list((store / "runs").iterdir())) == 2


def test_reading_never_writes_and_shows_a_dead_runner_as_not_collected(proj, make_project) -> None:
    quick_runs(proj, make_project, count=1)
    store = Path(proj.env["PROJ_TRACKING_URI"])
    dead = dead_runner_run(store)
    before = (store / "proj.db").read_bytes()
    listed = proj("runs", "list")
    assert listed.code == 0 and "FAILED (runner, not yet collected)" in listed.stdout, listed
    [seen] = [r for r in proj.runs() if r["id"] == dead]
    assert (seen["status"], seen["collected"]) == ("FAILED", False) and "not yet collected" in seen["failure_reason"]
    assert proj("runs", "list", "--status", "running", "--json").json() == []
    assert dead in [r["id"] for r in proj("runs", "list", "--status", "failed", "--json").json()]
    assert proj("runs", "logs", dead, "--follow").code == 1  # ends: the runner is gone
    assert proj("models", "list").code == 0 and proj("runs", "show", dead).code == 0
    assert (store / "proj.db").read_bytes() == before  # nothing was written, not even a migration
    with closing(sqlite3.connect(store / "proj.db")) as db:
        assert db.execute("SELECT status FROM runs WHERE id = ?", (dead,)).fetchone() == ("RUNNING",)
    assert proj("runs", "collect").code == 0  # an acting command collects it
    collected = proj.show(dead)
    assert (collected["status"], collected["collected"]) == ("FAILED", True) and "late" in collected["metrics"]


@pytest.fixture
def ro_view(tmp_path: Path):
    """A read-only bind mount of a directory (root only): writes fail there even for root."""
    made = []

    def mount(src: Path) -> Path:
        dst = tmp_path / f"ro-{len(made)}"
        dst.mkdir()
        done = subprocess.run(["mount", "--bind", "-o", "ro", str(src), str(dst)], capture_output=True, text=True)
        require(done.returncode == 0, f"cannot bind-mount read-only (needs root): {done.stderr.strip()}")
        made.append(dst)
        probe = subprocess.run(["touch", str(dst / ".probe")], capture_output=True)
        require(probe.returncode != 0, "the bind mount is not read-only here")
        return dst

    yield mount
    for dst in made:
        subprocess.run(["umount", "-l", str(dst)], capture_output=True)


def test_a_read_only_store_can_be_read(proj, make_project, ro_view) -> None:
    ids = quick_runs(proj, make_project, count=2)
    store = Path(proj.env["PROJ_TRACKING_URI"])
    dead = dead_runner_run(store)
    settle(store)
    view = ro_view(store)
    env = {"PROJ_TRACKING_URI": str(view)}
    listed = proj("runs", "list", "--json", env=env)
    assert listed.code == 0, listed
    assert {r["id"]: r["status"] for r in listed.json()} == {**{i: "FINISHED" for i in ids}, dead: "FAILED"}
    for args in (["runs", "show", ids[0]], ["runs", "diff", ids[0], ids[1]], ["models", "list"],
                 ["runs", "logs", ids[0]], ["runs", "list", "--status", "failed"]):
        out = proj(*args, env=env)
        assert out.code in (0, 1) and "Traceback" not in out.stderr and not out.stderr.startswith("proj: error"), out
    line = one_error_line(proj("runs", "collect", env=env))  # acting needs a writable store: one line
    assert str(view) in line, line
    root = make_project(QUICK, name="quick")
    one_error_line(proj("run", str(root), "--env-manager", "local", "-P", "i=9", env=env))


def test_an_older_schema_is_read_without_migrating(tmp_path: Path) -> None:
    writer = SqliteStore(tmp_path)
    run = writer.create_run(NewRun("e", None, {}, "p", "main", "x", [], {}, "local"), pid=os.getpid())
    writer.close()
    with closing(sqlite3.connect(tmp_path / "proj.db")) as db, db:
        db.execute("ALTER TABLE runs DROP COLUMN inputs_json")  # as a store written before the column existed
        db.execute("UPDATE meta SET value = 'old' WHERE key = 'schema_revision'")
    before = (tmp_path / "proj.db").read_bytes()
    reader = SqliteStore(tmp_path, readonly=True)
    assert reader.get_run(run.id).inputs == {} and reader.list_models() == []
    reader.close()
    assert (tmp_path / "proj.db").read_bytes() == before


def test_a_store_on_a_full_disk_can_be_read(proj, make_project, tmp_path: Path) -> None:
    mount = tmp_path / "tiny"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True, text=True)
    require(done.returncode == 0, f"cannot mount a tmpfs (needs root): {done.stderr.strip()}")
    try:
        proj.env["PROJ_TRACKING_URI"] = str(mount / "store")
        ids = quick_runs(proj, make_project, count=2)
        dead = dead_runner_run(mount / "store")
        settle(mount / "store")
        with open(mount / "filler", "wb") as fh:  # fill the disk to the last block
            try:
                while True:
                    fh.write(b"\0" * 65536)
                    fh.flush()
            except OSError:
                pass
        with pytest.raises(OSError):
            (mount / "probe").write_bytes(b"\0" * 65536)
        listed = proj("runs", "list", "--json")
        assert listed.code == 0, listed
        assert {r["id"]: r["status"] for r in listed.json()} == {**{i: "FINISHED" for i in ids}, dead: "FAILED"}
        for args in (["runs", "show", ids[0]], ["runs", "diff", ids[0], ids[1]], ["models", "list"]):
            out = proj(*args)
            assert out.code in (0, 1) and "Traceback" not in out.stderr, out
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)
