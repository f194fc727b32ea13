"""The server's auth decisions (server.auth.guard) over a real auth store and a real run store."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from proj.auth.permissions import EXPERIMENT, NO_PERMISSIONS, READ
from proj.auth.policy import identify
from proj.auth.sqlite import SqliteAuthStore
from proj.errors import UsageError
from proj.server.auth import rules as r
from proj.server.auth.guard import Denied, ServerAuth
from proj.tracking.open import open_store
from proj.tracking.records import NewRun, ParamRecord


def _run(experiment: str) -> NewRun:
    return NewRun(experiment, None, {"uri": "/p", "kind": "local"}, "p", "main", "python t.py",
                  [ParamRecord("alpha", "0.1", 0.1, "float", "user")], {}, "local")


def test_a_list_of_runs_past_the_cap_is_refused_not_checked_in_part(tmp_path: Path) -> None:
    tracking = open_store(str(tmp_path / "store"))
    mine = tracking.create_run(_run("mine"), pid=os.getpid())
    theirs = tracking.create_run(_run("theirs"), pid=os.getpid())
    auth = ServerAuth(SqliteAuthStore(tmp_path / "auth.db"), NO_PERMISSIONS, lambda: tracking)
    user = auth.store().create_user("reader", "reader-password-1")
    auth.store().set_grant("reader", EXPERIMENT, str(mine.experiment_id), READ.name)
    ident = identify(auth.store(), user)
    rule = r.rule_for("/api/2.0/proj/runs/compare", "GET")
    assert rule is not None
    auth.check(ident, rule, "/api/2.0/proj/runs/compare", "GET", {"run_ids": [mine.id] * 3}, tracking)
    with pytest.raises(Denied):
        auth.check(ident, rule, "/api/2.0/proj/runs/compare", "GET", {"run_ids": [mine.id, theirs.id]}, tracking)
    # a run the reader may not read, after 1000 it may: refused as a whole, never let through unchecked
    with pytest.raises(UsageError, match="run_ids"):
        auth.check(ident, rule, "/api/2.0/proj/runs/compare", "GET", {"run_ids": [mine.id] * 1000 + [theirs.id]},
                   tracking)
    tracking.close()
