"""The Python API: ``proj.run(...)`` returns a :class:`SubmittedRun` (as ``mlflow.projects.run`` does)."""
from __future__ import annotations

import os
import signal
import time
from typing import Any

from proj.errors import RunFailed, UsageError
from proj.execution.liveness import is_alive
from proj.pipeline.reaper import open_to_act, reap_dead_runs
from proj.pipeline.request import RunOptions, RunRequest
from proj.pipeline.run import submit
from proj.project.params import as_text
from proj.report import Reporter, StderrReporter
from proj.tracking.records import KILLED, RUNNING, RunRecord
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
            reap_dead_runs(self._store)
            time.sleep(0.1)

    def cancel(self) -> None:
        """Stop the run (its whole process group or container) and mark it KILLED."""
        cancel_run(self._store, self.run_id)


def cancel_run(store: RunStore, run_ref: str, timeout: float = 15.0) -> RunRecord:
    """Ask the run's owner process to stop (it marks the run KILLED); mark it directly if the owner is gone."""
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
        conda_frontend: str | None = None, reporter: Reporter | None = None) -> SubmittedRun:
    """Run a project, as ``mlflow.projects.run`` does.

    Synchronous runs stream output here and raise :class:`proj.errors.RunFailed` (carrying the
    :class:`SubmittedRun`) when the run does not finish; asynchronous ones run in a detached worker and
    return at once. Bad input raises :class:`proj.errors.ProjError` before any run exists. What proj has to
    say goes to ``reporter`` (default: ``proj: ...`` lines on stderr; a :class:`proj.report.Collector` keeps it).
    """
    options = RunOptions(require_clean=require_clean, docker_args=tuple(docker_args or ()), build_image=build_image,
                         keep_container=keep_container, conda_frontend=conda_frontend)
    req = RunRequest(uri=uri, entry_point=entry_point, params={k: as_text(v) for k, v in (parameters or {}).items()},
                     version=version, env_manager=env_manager, experiment=experiment_name, run_name=run_name,
                     tags=dict(tags or {}), cwd=os.getcwd(), refresh_env=refresh_env, options=options)
    done = submit(req, lambda: open_to_act(tracking_uri), reporter or StderrReporter(), detach=not synchronous)
    submitted = SubmittedRun(done.store, done.run.id, done.outcome.exit_code if done.outcome else None)
    if done.outcome is not None and done.outcome.status != "FINISHED":
        raise RunFailed(f"run {done.run.id} {done.outcome.status} (exit code {done.outcome.exit_code})", submitted)
    return submitted
