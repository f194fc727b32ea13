"""A PostgreSQL store whose connection the server ends (a restart, an idle timeout): the call that meets it is one
StoreError line (while idle, BEGIN and SELECT are sent again: a long run's end is recorded), and the same handle
(the server keeps one per thread) works again on the next call. A role that
may not create the tables: one line too."""
from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from helpers.postgres import Cluster
from proj.errors import StoreError
from proj.tracking.open import open_store


def _end_connections(cluster: Cluster, uri: str) -> None:
    database = urlsplit(uri).path.lstrip("/")
    cluster.psql("postgres", f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{database}'")


def test_lost_while_idle_is_reconnected(pg_cluster: Cluster, pg_store_uri: str,
                                                        tmp_path: Path) -> None:
    store = open_store(pg_store_uri, files_root=tmp_path, upgrade=False)
    try:
        _end_connections(pg_cluster, pg_store_uri)  # while idle: BEGIN and SELECT are sent again on a new one
        with store.transaction():
            store.create_experiment("after idle")
        _end_connections(pg_cluster, pg_store_uri)
        assert store.get_experiment("0").name == "Default"
    finally:
        store.close()  # type: ignore[attr-defined]


def test_lost_inside_a_transaction_ends_it(pg_cluster: Cluster, pg_store_uri: str, tmp_path: Path) -> None:
    store = open_store(pg_store_uri, files_root=tmp_path, upgrade=False)
    try:
        with pytest.raises(StoreError, match="PostgreSQL store 127.0.0.1:"):
            with store.transaction():
                store.create_experiment("lost")
                _end_connections(pg_cluster, pg_store_uri)
                store.create_experiment("lost too")
        assert store.get_experiment_by_name("lost") is None  # the transaction's work went with the connection
        store.create_experiment("after")
        assert store.get_experiment_by_name("after") is not None
    finally:
        store.close()  # type: ignore[attr-defined]


def test_a_role_without_create_rights_is_one_line(proj, pg_cluster: Cluster, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    database = pg_cluster.create_database()
    pg_cluster.psql(database, "CREATE ROLE weak LOGIN")  # PostgreSQL 15: no CREATE on schema public for others
    uri = f"postgresql://weak@127.0.0.1:{pg_cluster.port}/{database}"
    try:
        for argv in (("db", "upgrade", uri), ("runs", "collect", "--tracking-uri", uri)):
            out = proj(*argv, env={"PROJ_STORE_FILES": str(tmp_path / "files")})
            assert out.code != 0, out
            assert "Traceback" not in out.stderr, out
            assert "permission denied for schema public" in out.stderr, out
            assert len([line for line in out.stderr.splitlines() if line.strip()]) == 1, out
    finally:
        pg_cluster.drop_database(database)
        pg_cluster.psql("postgres", "DROP ROLE IF EXISTS weak")


def test_a_run_whose_idle_connection_was_ended_finishes(proj, make_project, pg_cluster: Cluster,  # type: ignore[no-untyped-def]
                                                        pg_store_uri: str, tmp_path: Path) -> None:
    started, go = tmp_path / "started", tmp_path / "go"
    root = make_project({"MLproject": '''
        name: idle
        entry_points:
          main:
            command: "python wait.py"
    ''', "wait.py": f'''
        import pathlib, time
        pathlib.Path({str(started)!r}).touch()
        while not pathlib.Path({str(go)!r}).exists():
            time.sleep(0.05)
    '''})
    proj.env["PROJ_STORE_FILES"] = str(tmp_path / "files")
    runner = proj.popen("run", str(root), "--env-manager", "local", "--tracking-uri", pg_store_uri)
    deadline = time.monotonic() + 120
    while not started.exists() and runner.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        assert started.exists(), "the run's child never started"
        _end_connections(pg_cluster, pg_store_uri)  # the runner's connection sat idle while its child ran
        go.touch()
        _, err = runner.communicate(timeout=120)
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait()
    assert runner.returncode == 0, err
    assert "Traceback" not in err, err
    assert pg_cluster.psql(urlsplit(pg_store_uri).path.lstrip("/"), "SELECT status FROM runs") == "FINISHED"
