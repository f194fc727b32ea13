"""Finding runs whose runner died (kill -9, power loss) so nothing stays RUNNING forever.

A run records the pid and the kernel start time of the process that owns it. If that process is
gone, or the pid now belongs to a different process, the run is marked FAILED on the next command.
"""
from __future__ import annotations

import os

from proj.tracking.records import FAILED
from proj.tracking.store import RunStore


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


def _stop_orphans(pgid: int) -> None:
    """The entry point outlived its runner: stop its whole group, as the runner would have."""
    import signal

    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _collect_outputs(store: RunStore, run_id: str) -> None:
    """What the dead run left (models, MLflow-logged data) is collected as a finished run's would be."""
    from proj.runner import after_run_hooks

    after_run_hooks(store, store.get_run(run_id), -1, lambda message: None)


def reap_dead_runs(store: RunStore) -> list[str]:
    """Mark FAILED every RUNNING run on this host whose owner process is gone; ingest what it left."""
    host = os.uname().nodename
    reaped = []
    for run_id, run_host, pid, start, child, child_start in store.running_runs():
        if run_host != host or is_alive(pid, start):
            continue
        if child and is_alive(child, child_start):
            _stop_orphans(child)
        from proj.tracking.ingest import ingest_metrics_file

        try:
            ingest_metrics_file(store, run_id)
            _collect_outputs(store, run_id)
        except Exception:  # noqa: BLE001 - torn outputs must not stop the status fix
            pass
        store.finish_run(run_id, FAILED, phase="runner",
                         reason=f"the proj process running it (pid {pid}) died without recording an end")
        reaped.append(run_id)
    return reaped
