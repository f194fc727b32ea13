"""The PostgreSQL store for real (a cluster of Debian's PostgreSQL in a temporary directory): `proj run` and
`proj runs` on postgresql:// URIs, `proj db upgrade` from an older schema, the server's refusal of an older or
newer one, one-line errors without the password, and 8 concurrent writers numbering versions and experiments."""
from __future__ import annotations

import multiprocessing
import os
import re
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from helpers.postgres import Cluster
from helpers.servers import free_port
from proj.tracking.records import MetricPoint, NewRun, ParamRecord

RUN_PROJECT = {
    "MLproject": """
        name: pgp
        entry_points:
          main:
            parameters:
              alpha: {type: float, default: 0.5}
            command: "python train.py {alpha}"
    """,
    "train.py": """
        import sys
        import mlflow
        mlflow.log_metric("loss", float(sys.argv[1]) * 2)
        print("trained")
    """,
}


def one_error_line(out) -> str:  # type: ignore[no-untyped-def]
    assert out.code != 0, out
    assert "Traceback" not in out.stderr, out
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("proj: error: "), out
    return lines[0]


def new_database(cluster: Cluster) -> str:
    return cluster.uri(cluster.create_database("pg"))


def test_proj_run_records_into_postgresql_and_runs_reads_it_back(proj, make_project, pg_cluster: Cluster,
                                                                 tmp_path: Path) -> None:
    uri = new_database(pg_cluster)
    files = tmp_path / "files"
    root = make_project(RUN_PROJECT)
    env = {"PROJ_STORE_FILES": str(files)}
    has_mlflow = subprocess.run([sys.executable, "-c", "import mlflow"], capture_output=True).returncode == 0
    if not has_mlflow:  # the project's own logging needs mlflow in the local env; the run itself does not
        (root / "train.py").write_text("import sys\nprint('trained', sys.argv[1])\n")
    out = proj("run", str(root), "--env-manager", "local", "-P", "alpha=2", "--tracking-uri", uri, env=env)
    assert out.code == 0, out
    listed = proj("runs", "list", "--json", "-n", "0", "--tracking-uri", uri, env=env)
    assert listed.code == 0, listed
    runs = listed.json()
    assert len(runs) == 1 and runs[0]["status"] == "FINISHED", listed
    run_id = runs[0]["id"]
    assert (files / "runs" / run_id / "logs").is_dir()  # the run folder is in the files root, not the database
    shown = proj("runs", "show", run_id, "--json", "--tracking-uri", uri, env=env)
    assert shown.code == 0, shown
    assert {p["key"]: p["value"] for p in shown.json()["params"]}["alpha"] == "2"
    count = pg_cluster.psql(uri.rsplit("/", 1)[1], f"SELECT count(*) FROM runs WHERE id = '{run_id}'")
    assert count == "1"  # really in PostgreSQL (no proj.db anywhere)
    assert not list(tmp_path.rglob("proj.db"))


def test_unreachable_server_and_bad_credentials_are_one_line_without_the_password(proj, pg_cluster: Cluster) -> None:
    closed = free_port()
    out = proj("runs", "list", "--tracking-uri", f"postgresql://ana:s3cr3t-pw@127.0.0.1:{closed}/teamdb")
    line = one_error_line(out)
    assert f"127.0.0.1:{closed}/teamdb" in line and "s3cr3t-pw" not in out.stderr and "refused" in line.lower(), out
    out = proj("runs", "list", "--tracking-uri", f"postgresql://nobody:s3cr3t-pw@127.0.0.1:{pg_cluster.port}/nodb")
    line = one_error_line(out)
    assert f"127.0.0.1:{pg_cluster.port}/nodb" in line and "s3cr3t-pw" not in out.stderr and "nobody" in line, out
    out = proj("db", "upgrade", f"postgresql+psycopg://ana:s3cr3t-pw@127.0.0.1:{closed}/teamdb")
    assert "s3cr3t-pw" not in one_error_line(out)


def _older(cluster: Cluster) -> str:
    """A database at schema step 1 (as a proj of that version left it): no append-only triggers yet."""
    from proj.tracking import migrations
    from proj.tracking.postgres import _STEPS, connect

    uri = new_database(cluster)
    db = connect(uri)
    db.begin_write()
    _STEPS[1](db)
    db.execute("INSERT INTO meta VALUES (?, ?)", (migrations.VERSION_KEY, "1"))
    db.execute("COMMIT")
    db.close()
    return uri


def test_db_upgrade_brings_an_older_schema_up_and_says_from_and_to(proj, pg_cluster: Cluster) -> None:
    from proj.tracking import migrations

    uri = _older(pg_cluster)
    name = uri.rsplit("/", 1)[1]
    pg_cluster.psql(name, "INSERT INTO registry_events (time, model_key, model, kind) VALUES (1, 1, 'm', 'x')")
    pg_cluster.psql(name, "DELETE FROM registry_events")  # step 1 has no append-only rule yet
    out = proj("db", "upgrade", uri)
    assert out.code == 0, out
    assert out.stdout.strip() == f"PostgreSQL 127.0.0.1:{pg_cluster.port}/{name}: schema version 1 -> {migrations.LATEST}"
    assert pg_cluster.psql(name, f"SELECT value FROM meta WHERE key = '{migrations.VERSION_KEY}'") == str(migrations.LATEST)
    pg_cluster.psql(name, "INSERT INTO registry_events (time, model_key, model, kind) VALUES (1, 1, 'm', 'x')")
    with pytest.raises(subprocess.CalledProcessError) as refused:
        pg_cluster.psql(name, "DELETE FROM registry_events")
    assert "append-only" in refused.value.stderr
    again = proj("db", "upgrade", uri)
    assert again.code == 0 and again.stdout.strip().endswith(f"schema version {migrations.LATEST}, up to date"), again


def test_db_upgrade_of_an_older_sqlite_store(proj, tmp_path: Path) -> None:
    from proj.tracking import migrations
    from proj.tracking.sqlite import SqliteStore

    store = tmp_path / "older"
    SqliteStore(store).close()
    with sqlite3.connect(store / "proj.db") as db:
        db.execute("UPDATE meta SET value = 'older' WHERE key = 'schema_revision'")
        db.execute("UPDATE meta SET value = '1' WHERE key = ?", (migrations.VERSION_KEY,))
    out = proj("db", "upgrade", str(store))
    assert out.code == 0 and out.stdout.strip() == f"{store}: schema version 1 -> {migrations.LATEST}", out


def test_db_upgrade_of_a_store_that_is_not_there_creates_nothing(proj, tmp_path: Path) -> None:
    missing = tmp_path / "typo" / "store"
    out = proj("db", "upgrade", str(missing))
    assert out.code != 0 and out.stderr.startswith("proj: error:") and str(missing) in out.stderr, out
    assert out.stderr.strip().count("\n") == 0 and not (tmp_path / "typo").exists()


def _server(proj, store: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    return proj("server", "--backend-store-uri", store, "--artifacts-destination", str(tmp_path / "files"),
                "--port", str(free_port()), timeout=60)


def test_server_refuses_a_newer_schema_and_tells_to_upgrade_an_older_one(proj, pg_cluster: Cluster,
                                                                        tmp_path: Path) -> None:
    from proj.tracking import migrations

    older = _older(pg_cluster)
    line = one_error_line(_server(proj, older, tmp_path))
    assert f"schema version 1, this proj needs {migrations.LATEST}" in line and f"proj db upgrade {older}" in line
    name = older.rsplit("/", 1)[1]
    assert pg_cluster.psql(name, f"SELECT value FROM meta WHERE key = '{migrations.VERSION_KEY}'") == "1"  # untouched
    pg_cluster.psql(name, f"UPDATE meta SET value = '99' WHERE key = '{migrations.VERSION_KEY}'")
    line = one_error_line(_server(proj, older, tmp_path))
    assert "schema version 99" in line and f"knows up to {migrations.LATEST}" in line and "upgrade proj" in line
    # The embedded store under the server follows the same rule; `proj run` keeps migrating it on open.
    from proj.tracking.sqlite import SqliteStore

    sqlite_store = tmp_path / "sqlite-older"
    SqliteStore(sqlite_store).close()
    with sqlite3.connect(sqlite_store / "proj.db") as db:
        db.execute("UPDATE meta SET value = 'older' WHERE key = 'schema_revision'")
    line = one_error_line(_server(proj, str(sqlite_store), tmp_path))
    assert f"proj db upgrade {sqlite_store}" in line
    with sqlite3.connect(sqlite_store / "proj.db") as db:
        assert db.execute("SELECT value FROM meta WHERE key = 'schema_revision'").fetchone()[0] == "older"


def _register(uri: str, files: str, count: int, barrier) -> list[int]:  # type: ignore[no-untyped-def]
    from proj.tracking.postgres import PostgresStore

    store = PostgresStore(uri, Path(files))
    barrier.wait()
    numbers = [store.create_model_version("shared", f"runs:/r{os.getpid()}/m{i}").version for i in range(count)]
    store.close()
    return numbers


def _experiments(uri: str, files: str, count: int, barrier) -> list[str]:  # type: ignore[no-untyped-def]
    from proj.tracking.postgres import PostgresStore

    store = PostgresStore(uri, Path(files))
    barrier.wait()
    made = []
    for i in range(count):
        made.append(store.create_experiment(f"exp-{os.getpid()}-{i}"))
        run = store.create_run(NewRun(f"shared-{i % 3}", None, {"kind": "local"}, "p", "main", "x",
                                      [ParamRecord("a", "1", 1, "int", "user")], {}, "local"), pid=os.getpid())
        made.append(run.experiment_id)
    store.close()
    return made


def test_eight_concurrent_writers_never_duplicate_or_skip_a_number(pg_cluster: Cluster, tmp_path: Path) -> None:
    from proj.tracking.postgres import PostgresStore

    uri = new_database(pg_cluster)
    store = PostgresStore(uri, tmp_path)
    store.create_registered_model("shared")
    writers, each = 8, 12
    ctx = multiprocessing.get_context("spawn")
    with ctx.Manager() as manager:
        barrier = manager.Barrier(writers)
        with ctx.Pool(writers) as pool:
            numbers = pool.starmap(_register, [(uri, str(tmp_path), each, barrier)] * writers)
        barrier = manager.Barrier(writers)
        with ctx.Pool(writers) as pool:
            made = pool.starmap(_experiments, [(uri, str(tmp_path), each, barrier)] * writers)
    flat = sorted(n for part in numbers for n in part)
    assert flat == list(range(1, writers * each + 1))  # every number once, none skipped
    assert sorted(v.version for v in store.search_model_versions("name = 'shared'", max_results=1000)[0]) == flat
    experiments, _ = store.search_experiments(max_results=1000)
    ids = sorted(int(e.id) for e in experiments)
    assert ids == list(range(0, len(ids)))  # Default is 0, then 1, 2, ... without a gap
    assert len(ids) == 1 + writers * each + 3  # each created once; the three shared ones once, not per writer
    assert {e.name for e in experiments} >= {"shared-0", "shared-1", "shared-2"}
    assert all(str(i) in {e.id for e in experiments} for part in made for i in part)
    store.close()


def _waiting_on_a_lock(uri: str, pid: int) -> bool:
    import psycopg

    for _ in range(200):
        with psycopg.connect(uri, autocommit=True) as conn:
            row = conn.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()
        if row and row[0] == "Lock":
            return True
        time.sleep(0.05)
    return False


def test_writers_of_different_runs_go_side_by_side_and_of_one_run_one_at_a_time(pg_cluster: Cluster,
                                                                                tmp_path: Path) -> None:
    """A log-batch takes the write lock shared and its run's lock: another run's batch is written while one is
    open, the same run's batch and any other write (an experiment) wait for it, and nothing is lost."""
    from proj.tracking.postgres import PostgresStore

    uri = new_database(pg_cluster)
    holder, other = PostgresStore(uri, tmp_path), PostgresStore(uri, tmp_path)
    run_a = holder.create_client_run("0", "u", 1000.0, {}, "a").id
    run_b = holder.create_client_run("0", "u", 1000.0, {}, "b").id
    other_pid = other._db._conn.info.backend_pid  # type: ignore[attr-defined]
    done: list[str] = []

    def write(run_id: str, step: int) -> None:
        other.log_client_batch(run_id, [MetricPoint("m", 1.0, step, 2000.0 + step)])
        done.append(run_id)

    with holder._run_tx(run_a) as db:  # run A's batch, still open
        holder._insert_metrics(db, run_a, [MetricPoint("m", 1.0, 0, 2000.0)])
        another = threading.Thread(target=write, args=(run_b, 0))
        another.start()
        another.join(timeout=30)
        assert done == [run_b]  # another run: written while A's transaction is open (one global lock would wait)
        same = threading.Thread(target=write, args=(run_a, 1))
        same.start()
        assert _waiting_on_a_lock(uri, other_pid)  # the same run: waits for A's transaction
        assert done == [run_b]
    same.join(timeout=60)
    assert done == [run_b, run_a]
    with holder._run_tx(run_a):
        making = threading.Thread(target=lambda: done.append(other.create_experiment("later")))
        making.start()
        assert _waiting_on_a_lock(uri, other_pid)  # a write of anything else waits too
    making.join(timeout=60)
    assert len(done) == 3
    assert [p.step for p in holder.metric_history(run_a, "m")] == [0, 1] and len(holder.metric_history(run_b, "m")) == 1
    holder.close()
    other.close()


def _batches(uri: str, files: str, run_id: str, writer: int, barrier: Any) -> int:
    from proj.tracking.postgres import PostgresStore

    store = PostgresStore(uri, Path(files))
    barrier.wait()
    for batch in range(10):
        store.log_client_batch(run_id, [MetricPoint(f"k{i % 3}", float(i), writer * 1000 + batch * 100 + i,
                                                    3000.0 + i) for i in range(100)])
    store.close()
    return 10 * 100


def test_eight_writers_of_one_run_keep_its_blocks_whole(pg_cluster: Cluster, tmp_path: Path) -> None:
    from proj.tracking.postgres import PostgresStore

    uri = new_database(pg_cluster)
    store = PostgresStore(uri, tmp_path)
    run_id = store.create_client_run("0", "u", 1000.0, {}, "shared").id
    ctx = multiprocessing.get_context("spawn")
    with ctx.Manager() as manager:
        barrier = manager.Barrier(8)
        with ctx.Pool(8) as pool:
            sent = sum(pool.starmap(_batches, [(uri, str(tmp_path), run_id, w, barrier) for w in range(8)]))
    assert sent == 8000  # every worker finished its batches (a failed one raises in starmap)
    for key in ("k0", "k1", "k2"):
        points = store.metric_history(run_id, key)
        rows = store._db.execute("SELECT count(*), sum(n), max(block) FROM metric_blocks WHERE run_id = ? AND key = ?",
                                 (run_id, key)).fetchone()
        # every point once, in blocks of 1024 with no gap and no block counted twice
        assert rows[0] == rows[2] + 1 and rows[1] == len(points) == len({(p.step, p.value) for p in points})
    assert sum(len(store.metric_history(run_id, k)) for k in ("k0", "k1", "k2")) == 8000
    store.close()


def test_an_imports_own_lookups_on_a_refused_connection_are_one_line(pg_cluster: Cluster) -> None:
    """transfer.service.store_refusals: what an import reads through the store's connection itself (outside its
    guarded methods) fails as those do, one StoreError line naming the database, not psycopg's traceback."""
    import psycopg

    from proj.errors import StoreError
    from proj.tracking.postgres import where
    from proj.transfer.service import store_refusals

    uri = new_database(pg_cluster)
    refused = uri.rsplit("/", 1)[0].rsplit(":", 1)[0] + ":1/nothing"  # nothing listens on port 1
    with pytest.raises(StoreError, match=re.escape(where(uri))) as caught:
        with store_refusals(None, uri):
            psycopg.connect(refused, connect_timeout=2)
    assert "\n" not in str(caught.value)
    with store_refusals(None, "/a/local/store"):  # not PostgreSQL: nothing is caught or imported
        pass
