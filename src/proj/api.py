"""The Python API: ``proj.run(...)`` returns a :class:`SubmittedRun` (as ``mlflow.projects.run`` does)."""
from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from proj.tracking.records import RUNNING, RunRecord
from proj.tracking.store import RunStore


class SubmittedRun:
    """A run started by :func:`run`: poll it, wait for it, or cancel it."""

    def __init__(self, store: RunStore, run_id: str, exit_code: int | None = None) -> None:
        self._store = store
        self.run_id = run_id
        self._exit_code = exit_code

    def get_status(self) -> str:
        return self._store.get_run(self.run_id).status

    def get_run(self) -> RunRecord:
        return self._store.get_run(self.run_id)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the run ends; True when it FINISHED."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            run = self._store.get_run(self.run_id)
            if run.status != RUNNING:
                return run.status == "FINISHED"
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"run {self.run_id} still RUNNING after {timeout}s")
            from proj.pipeline.reaper import reap_dead_runs

            reap_dead_runs(self._store)
            time.sleep(0.1)

    def cancel(self) -> None:
        """Stop the run (its whole process group or container) and mark it KILLED."""
        cancel_run(self._store, self.run_id)


def cancel_run(store: RunStore, run_ref: str, timeout: float = 15.0) -> RunRecord:
    """Ask the run's owner process to stop (it marks the run KILLED); mark it directly if the owner is gone."""
    from proj.errors import UsageError
    from proj.execution.process import is_alive
    from proj.tracking.records import KILLED

    run = store.get_run(run_ref)
    if run.status != RUNNING:
        return run
    if run.host != os.uname().nodename:
        raise UsageError(f"run {run.id[:12]} is running on host {run.host}; cancel it there")
    if run.pid and run.pid != os.getpid() and is_alive(run.pid, run.pid_start):
        os.kill(run.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and store.get_run(run.id).status == RUNNING:
            time.sleep(0.05)
    store.finish_run(run.id, KILLED, phase="execution", reason="cancelled")  # no-op if the owner already did
    return store.get_run(run.id)


def run(uri: str = ".", entry_point: str = "main", parameters: dict[str, Any] | None = None, *,
        version: str | None = None, env_manager: str | None = None, experiment_name: str | None = None,
        run_name: str | None = None, tags: dict[str, str] | None = None, tracking_uri: str | None = None,
        synchronous: bool = True, refresh_env: bool = False, require_clean: bool = False,
        docker_args: list[str] | None = None, build_image: bool = True, keep_container: bool = False,
        conda_frontend: str | None = None) -> SubmittedRun:
    """Run a project, as ``mlflow.projects.run`` does.

    Synchronous runs stream output here and raise :class:`proj.errors.RunFailed` (carrying the
    :class:`SubmittedRun`) when the run does not finish; asynchronous ones run in a detached worker and
    return at once. Bad input raises :class:`proj.errors.ProjError` before any run exists.
    """
    from proj.errors import RunFailed
    from proj.project.params import as_text
    from proj.pipeline.run import RunRequest, execute_run, plan_run, start_run

    options = {"require_clean": require_clean, "docker_args": list(docker_args or []), "build_image": build_image,
               "keep_container": keep_container, "conda_frontend": conda_frontend}
    from proj.pipeline.reaper import open_to_act

    store = open_to_act(tracking_uri)
    req = RunRequest(uri=uri, entry_point=entry_point, params={k: as_text(v) for k, v in (parameters or {}).items()},
                     version=version, env_manager=env_manager, experiment=experiment_name, run_name=run_name,
                     tags=dict(tags or {}), cwd=os.getcwd(), refresh_env=refresh_env, options=options)
    plan = plan_run(req)
    for warning in plan.project.warnings:
        print(f"proj: warning: {warning}", file=sys.stderr)
    record = start_run(store, plan)
    if not synchronous:
        from proj.pipeline.worker import spawn

        store.set_owner(record.id, spawn(Path(store.root), record.id))
        plan.close()  # the worker plans (and copies) again
        return SubmittedRun(store, record.id)
    outcome = execute_run(store, plan, record, echo=lambda m: print(f"proj: {m}", file=sys.stderr))
    submitted = SubmittedRun(store, record.id, outcome.exit_code)
    if outcome.status != "FINISHED":
        raise RunFailed(f"run {record.id} {outcome.status} (exit code {outcome.exit_code})", submitted)
    return submitted
