"""Collecting runs whose runner died (kill -9, power loss) so nothing stays RUNNING forever.

A run records the pid and the kernel start time of the process that owns it. If that process is
gone, or the pid now belongs to a different process, reading commands show the run as FAILED (runner,
not yet collected) without writing anything (``tracking.view``); a command that acts on runs collects it
(``reap_dead_runs``): the reaper sits above the run pipeline because it calls its collectors.
"""
from __future__ import annotations

import os

from proj.collect.metrics import ingest_metrics_file
from proj.execution.liveness import is_alive
from proj.execution.process import stop_run_processes
from proj.pipeline.run import after_run_hooks
from proj.report import Silent
from proj.tracking.open import open_store
from proj.tracking.records import FAILED
from proj.tracking.store import RunStore
from proj.tracking.view import died


def _stop_orphans(run_id: str, pgid: int | None, pgid_start: str | None) -> None:
    """The entry point outlived its runner: stop its whole group (whether or not the leader lives) and
    every process carrying the run's marker, wherever it moved (setsid, re-parented to init)."""
    stop_run_processes(run_id, pgid, pgid_start)


def _collect_outputs(store: RunStore, run_id: str) -> None:
    """What the dead run left (models, MLflow-logged data) is collected as a finished run's would be."""
    after_run_hooks(store, store.get_run(run_id), -1, Silent())  # no one to tell: a background collector


def _dead_runs(store: RunStore) -> list[tuple[str, int | None, int | None, str | None]]:
    """(id, owner pid, child pid, child start) of RUNNING runs on this host whose owner is gone."""
    host = os.uname().nodename
    return [(run_id, pid, child, child_start) for run_id, run_host, pid, start, child, child_start
            in store.running_runs() if run_host == host and not is_alive(pid, start)]


def reap_dead_runs(store: RunStore) -> list[str]:
    """Collect every RUNNING run on this host whose owner process is gone: stop what it left running,
    ingest what it reported, mark it FAILED. Only commands that act on runs call this.

    Each run is decided ("still RUNNING, owner dead") and collected inside one write transaction, so of
    any number of concurrent reapers exactly one collects it, and every metric point lands once.
    """
    reaped = []
    for candidate, *_ in _dead_runs(store):  # a cheap look first: most commands find nothing and take no lock
        with store.transaction():
            found = [dead for dead in _dead_runs(store) if dead[0] == candidate]  # decided again, under the lock
            if found:
                _collect(store, *found[0])
                reaped.append(candidate)
    return reaped


def _collect(store: RunStore, run_id: str, pid: int | None, child: int | None, child_start: str | None) -> None:
    _stop_orphans(run_id, child, child_start)
    try:
        ingest_metrics_file(store, run_id)
        _collect_outputs(store, run_id)
    except Exception:  # noqa: BLE001 - torn outputs must not stop the status fix
        pass
    store.finish_run(run_id, FAILED, phase="runner", reason=died(pid))


def open_to_act(tracking_uri: str | None = None, *, create: bool = True) -> RunStore:
    """The store for a command that acts on runs (run, reproduce, cancel, collect): checked, then reaped."""
    store = open_store(tracking_uri, create=create, write=True)
    reap_dead_runs(store)
    return store
