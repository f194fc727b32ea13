"""dbfile.write_transaction: a COMMIT that fails (SQLite busy: a reader holds its lock) ends the transaction, so
the handle is not left inside it, joining every later write that then never commits."""
from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from proj.tracking.dbfile import write_transaction


def test_a_failed_commit_rolls_back_and_leaves_no_transaction_open(tmp_path: Path) -> None:
    writer = sqlite3.connect(tmp_path / "x.db", isolation_level=None, timeout=0.1)
    reader = sqlite3.connect(tmp_path / "x.db", isolation_level=None, timeout=0.1)
    writer.execute("PRAGMA journal_mode=DELETE")  # a rollback journal: a reader's lock blocks the COMMIT
    writer.execute("CREATE TABLE t (x)")
    reader.execute("BEGIN")
    reader.execute("SELECT * FROM t").fetchall()
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        with write_transaction(writer, lambda: writer.execute("BEGIN IMMEDIATE")):
            writer.execute("INSERT INTO t VALUES (1)")
    assert not writer.in_transaction
    reader.execute("COMMIT")
    with write_transaction(writer, lambda: writer.execute("BEGIN IMMEDIATE")):  # the next write commits
        writer.execute("INSERT INTO t VALUES (2)")
    assert reader.execute("SELECT x FROM t").fetchall() == [(2,)]
