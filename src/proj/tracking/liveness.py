"""Finding runs whose runner died (kill -9, power loss) so nothing stays RUNNING forever.

A run records the pid and the kernel start time of the process that owns it. If that process is
gone, or the pid now belongs to a different process, reading commands show the run as FAILED (runner,
not yet collected) without writing anything; a command that acts on runs collects it (`reap_dead_runs`).
"""
from __future__ import annotations

import os

from proj.execution.process import stop_run_processes
from proj.tracking.records import FAILED, RUNNING, RunRecord
from proj.tracking.store import RunStore, open_store

NOT_COLLECTED = ("not yet collected: `proj runs collect` (or the next `proj run`, `runs cancel` or `reproduce`)"
                 " stops what it left running, ingests its metrics and models and records this")


def process_start_time(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (field 22 of /proc/PID/stat), to tell pid reuse apart."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read().decode(errors="replace")
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    fields = stat[stat.rfind(")") + 2:].split()
    return fields[19] if len(fields) > 19 else None


def is_alive(pid: int | None, start: str | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    current = process_start_time(pid)
    if current is None or start is None:
        return True  # no /proc to compare with: trust the pid
    return current == start


def _stop_orphans(run_id: str, pgid: int | None, pgid_start: str | None) -> None:
    """The entry point outlived its runner: stop its whole group (whether or not the leader lives) and
    every process carrying the run's marker, wherever it moved (setsid, re-parented to init)."""
    stop_run_processes(run_id, pgid, pgid_start)


def _collect_outputs(store: RunStore, run_id: str) -> None:
    """What the dead run left (models, MLflow-logged data) is collected as a finished run's would be."""
    from proj.runner import after_run_hooks

    after_run_hooks(store, store.get_run(run_id), -1, lambda message: None)


def _died(pid: int | None) -> str:
    return f"the proj process running it (pid {pid}) died without recording an end"


def presented(run: RunRecord) -> RunRecord:
    """How a reader sees a run: RUNNING with a dead runner on this host reads as FAILED in phase runner,
    ``collected`` False. Nothing is written: a reading command must work on a read-only or full disk."""
    if run.status != RUNNING or run.host != os.uname().nodename or is_alive(run.pid, run.pid_start):
        return run
    run.status, run.failure_phase, run.collected = FAILED, "runner", False
    run.failure_reason = f"{_died(run.pid)}; {NOT_COLLECTED}"
    return run


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
    from proj.tracking.ingest import ingest_metrics_file

    _stop_orphans(run_id, child, child_start)
    try:
        ingest_metrics_file(store, run_id)
        _collect_outputs(store, run_id)
    except Exception:  # noqa: BLE001 - torn outputs must not stop the status fix
        pass
    store.finish_run(run_id, FAILED, phase="runner", reason=_died(pid))


def open_to_act(tracking_uri: str | None = None, *, create: bool = True) -> RunStore:
    """The store for a command that acts on runs (run, reproduce, cancel, collect): checked, then reaped."""
    store = open_store(tracking_uri, create=create, write=True)
    reap_dead_runs(store)
    return store
