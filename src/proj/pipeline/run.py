"""One run as a pipeline of small named steps, carried out by ``submit`` (the CLI, the API, the worker).

    plan_run:     resolve_source -> load_project -> select_entry_point -> bind_params -> choose_env -> check
    start_run:    the record is created only now, so bad input never leaves a run behind
    execute_run:  ensure_env (phase "environment") -> execute (phase "execution") -> after-run hooks,
                  with a final status (FINISHED, FAILED + phase, KILLED) set on every exit path
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from proj import settings
from proj.collect import models as collect_models
from proj.collect.metrics import METRICS_FILE, MetricsTailer
from proj.envs.base import Backend, BuildLog, EnvChoice, Invocation, Lock
from proj.envs.registry import choose_env, get_backend
from proj.errors import OutputLost, ProjError, one_line
from proj.execution.process import OutputSink, Terminated
from proj.paths import atomic_write
from proj.pipeline.check import check_env
from proj.pipeline.inputs import fingerprint_inputs
from proj.pipeline.request import RunRequest
from proj.project.params import BoundParam, bind_params, render_command
from proj.project.spec import EntryPoint, Project, load_project, select_entry_point
from proj.report import Reporter
from proj.sources import workspace
from proj.sources.base import Source
from proj.sources.resolve import resolve_source
from proj.tracking.records import (
    FAILED,
    FINISHED,
    KILLED,
    NewRun,
    ParamRecord,
    RunRecord,
)
from proj.tracking.store import RunStore

CHILD_PATH = Path(__file__).parent.parent / "_childpath"
# Modules with optional ``child_env(store, run, reporter) -> dict`` and ``after_run(store, run, code, reporter)``.
RUN_HOOKS: tuple[Any, ...] = (collect_models,)
RESERVE_NAME, RESERVE_BYTES = ".space-reserve", 256 * 1024  # see _space_reserve
FINISH_RETRY_SECONDS = 3.0  # how long a run's end is retried on a full disk before the runner exits anyway


@dataclass
class Plan:
    """A validated run: nothing recorded, nothing built yet."""

    request: RunRequest
    source: Source
    project: Project
    entry_point: EntryPoint
    params: list[BoundParam]
    command: str
    choice: EnvChoice
    backend: Backend
    workdir: Path | None = None  # the run's private copy of a git checkout, removed by close()
    notes: list[str] = field(default_factory=list)  # warnings shown when the run starts

    def close(self) -> None:
        """Release what planning created (the private working copy)."""
        _remove_workdir(self.workdir)
        self.workdir = None


@dataclass
class Outcome:
    run: RunRecord
    exit_code: int
    status: str


@dataclass
class Submitted:
    """A started run: its outcome, or None when a detached worker carries it out."""

    store: RunStore
    run: RunRecord
    outcome: Outcome | None = None


def submit(req: RunRequest, open_store: Callable[[], RunStore], reporter: Reporter, *, detach: bool = False,
           recorded: RunRecord | None = None, stream: bool = True, stdout_to_stderr: bool = False) -> Submitted:
    """plan -> start -> execute. ``open_store`` is called once the request is valid, so bad input neither
    opens (nor creates) a store nor leaves a run behind. ``recorded``: the run a detached worker carries
    out, already started by its submitter (a plan that fails now marks it FAILED in phase "plan")."""
    store = open_store() if recorded is not None else None
    try:
        plan = plan_run(req)
    except ProjError as exc:
        if store is not None and recorded is not None:  # the source or project changed since submission
            store.finish_run(recorded.id, FAILED, phase="plan", reason=str(exc))
        raise
    try:
        for warning in [*plan.project.warnings, *plan.notes]:  # before the run starts; warnings survive -q
            reporter.warn(warning)
        plan.notes.clear()
        if store is None:
            store = open_store()
        run = recorded or start_run(store, plan)
    except BaseException:
        plan.close()
        raise
    if detach:
        store.set_owner(run.id, spawn_worker(Path(store.root), run.id))
        plan.close()  # the worker plans (and copies) again
        return Submitted(store, run)
    if recorded is None:
        reporter.info(f"run {run.id} started (experiment {run.experiment!r})")
    outcome = execute_run(store, plan, run, reporter=reporter, stream=stream, stdout_to_stderr=stdout_to_stderr)
    return Submitted(store, outcome.run, outcome)


def spawn_worker(store_root: Path, run_id: str) -> int:
    """Start ``proj.pipeline.worker`` in its own session, detached from the terminal; returns its pid."""
    logs = store_root / "runs" / run_id / "logs"
    with open(logs / "runner.log", "ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "proj.pipeline.worker", str(store_root), run_id],
                                stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
    return proc.pid


def plan_run(req: RunRequest) -> Plan:
    """Every check that can be made before a run exists; raises ProjError on bad input."""
    source = resolve_source(req.uri, req.version, cwd=Path(req.cwd), options=req.options.as_dict())
    workdir = None
    if source.kind == "git":  # runs work in a private copy: the cached checkout stays pristine
        workdir = workspace.private_copy(source)
    try:
        project = load_project(workdir or source.project_dir)
        entry = select_entry_point(project, req.entry_point, display=source.uri)
        params = bind_params(entry.parameters, req.params, cwd=Path(req.cwd), project_root=project.root)
        command = render_command(entry.command, params)
        choice = choose_env(project, req.env_manager)
        choice = EnvChoice(choice.backend, choice.origin, choice.spec_file, choice.project, req.options.as_dict())
        backend = get_backend(choice.backend)
        check_env(choice, backend)  # a mistake in the project's files exits 2, as from `proj validate`
    except BaseException:
        _remove_workdir(workdir)
        raise
    return Plan(req, source, project, entry, params, command, choice, backend, workdir,
                notes=_undeclared_notes(entry, params))


def _undeclared_notes(entry: EntryPoint, params: list[BoundParam]) -> list[str]:
    """An undeclared -P is passed on as --key value (as MLflow does); one that looks like a typo of a
    declared parameter gets a warning, since the declared one silently kept its default."""
    import difflib

    notes = []
    declared = list(entry.parameters)
    for p in params:
        if p.source != "extra" or not declared:
            continue
        close = [d for d in declared if d.lower() == p.name.lower()] or difflib.get_close_matches(p.name, declared, 1)
        if close:
            notes.append(f"-P {p.name} is not declared by entry point {entry.name}; did you mean {close[0]}? "
                         f"(passed on as --{p.name}, and {close[0]} keeps its default)")
    return notes


def _remove_workdir(workdir: Path | None) -> None:
    if workdir is not None:
        workspace.remove(workdir)


def start_run(store: RunStore, plan: Plan) -> RunRecord:
    """Create the RUNNING record and its folder; store the request and source files with it."""
    req = plan.request
    plan.source.collect_artifacts(store.root)  # e.g. the snapshot of a plain directory: only now a run exists
    params = [ParamRecord(p.name, p.raw, p.value, p.type, p.source) for p in plan.params]
    # Stored credential-free and pinned to what was resolved, so a detached worker (or a reproduction)
    # re-plans exactly this source without the network or the user's token. The store keeps the copy
    # that is replayed: request.json sits in the run folder, which the child (a container too) can rewrite.
    uri, version = plan.source.replay()
    request = replace(req, uri=uri, version=version).to_json()
    new = NewRun(experiment=req.experiment or settings.experiment_name(),
                 name=req.run_name, source=plan.source.to_record(), project_name=plan.project.name,
                 entry_point=plan.entry_point.name, command=plan.command, params=params, tags=dict(req.tags),
                 env_choice=plan.choice.describe(), reproduces=req.reproduces, inputs=_inputs(plan),
                 env_backend=plan.choice.backend, request=request)
    run = store.create_run(new, os.getpid())
    run_dir = Path(run.run_dir)
    atomic_write(run_dir / "request.json", request)  # for people to read; never trusted
    plan.source.write_artifacts(run_dir / "artifacts" / "source")
    return run


def _inputs(plan: Plan) -> dict[str, Any]:
    """Fingerprints of local ``path`` inputs (cached by stat), so reproductions can spot data changes."""
    paths = {p.name: str(p.value) for p in plan.params if p.type == "path" and os.path.isabs(str(p.value))}
    if not paths:
        return {}
    return fingerprint_inputs(paths)


def execute_run(store: RunStore, plan: Plan, run: RunRecord, *, reporter: Reporter, stream: bool = True,
                lock: Lock | None = None, stdout_to_stderr: bool = False) -> Outcome:
    """Build the env (from ``lock`` when reproducing), run the command, collect outputs; set a final
    status on every path."""
    run_dir = Path(run.run_dir)
    logs = run_dir / "logs"
    phase = "environment"
    for note in plan.notes:
        reporter.warn(note)
    plan.notes.clear()
    try:
        reporter.info(f"environment: {plan.choice.describe()}")
        build_log = BuildLog(logs / "env-build.log", reporter.info, reporter)  # warnings keep their level
        if lock is not None:
            env = plan.backend.from_lock(plan.choice, lock, build_log)
        else:
            env = plan.backend.ensure(plan.choice, build_log, refresh=plan.request.refresh_env)
        store.set_env(run.id, env.describe(), env.lock.format, env.lock.text)
        reporter.info(f"environment {env.key[:24]} " + ("reused" if env.cache_hit else f"ready in {env.build_seconds:.1f}s"))
        phase = "execution"
        invocation = _invocation(store, plan, run, run_dir / METRICS_FILE, reporter)
        reporter.info(f"running: {plan.command}")
        with _space_reserve(run_dir), OutputSink(logs / "stdout.log", logs / "stderr.log", echo=stream,
                        stdout_to_stderr=stdout_to_stderr) as sink, \
                MetricsTailer(store, run.id) as tailer, _leases(plan, env, run.id):
            code = env.execute(invocation, sink)
        if sink.failure is not None:  # e.g. a full disk: the child was stopped, its output is incomplete
            raise OutputLost(sink.failure)
        phase = "finish"
        if tailer.bad_lines:
            reporter.warn(f"skipped {tailer.bad_lines} line(s) of {METRICS_FILE} that were not valid metric records "
                 '(expected {"key": ..., "value": <number>, "step": <int>})')
        after_run_hooks(store, run, code, reporter)
    except (KeyboardInterrupt, Terminated) as exc:
        plan.close()
        store.finish_run(run.id, KILLED, phase=phase, reason="interrupted (Ctrl-C or SIGTERM)")
        return Outcome(store.get_run(run.id), 143 if isinstance(exc, Terminated) else 130, KILLED)
    except OutputLost as exc:
        plan.close()
        _finish_when_writable(store, run.id, FAILED, phase=phase, reason=str(exc))
        raise
    except ProjError as exc:
        plan.close()
        store.finish_run(run.id, FAILED, phase=phase, reason=str(exc))
        raise
    except BaseException as exc:
        plan.close()
        store.finish_run(run.id, FAILED, phase=phase, reason=one_line(f"internal error: {exc!r}"))  # masks URL credentials too
        raise
    plan.close()
    if code == 0:
        store.finish_run(run.id, FINISHED, exit_code=0)
    else:
        store.finish_run(run.id, FAILED, exit_code=code, phase="execution", reason=f"entry point exited with code {code}")
    final = store.get_run(run.id)
    return Outcome(final, code, final.status)


@contextmanager
def _space_reserve(run_dir: Path) -> Iterator[None]:
    """A little disk space held while the child runs and given back when it ends, so that when its output
    fills the disk the run's end can still be recorded."""
    path = run_dir / RESERVE_NAME
    try:
        with open(path, "wb") as fh:
            fh.write(bytes(RESERVE_BYTES))  # written, not sparse: the blocks are really taken
    except OSError:
        pass  # already full: the retries below are all there is
    try:
        yield
    finally:
        path.unlink(missing_ok=True)


def _finish_when_writable(store: RunStore, run_id: str, status: str, *, phase: str, reason: str) -> bool:
    """Record the end of a run on a disk that may be full: retry briefly (a stopped child, a deleted temp
    file free space), then give up -- the runner exits anyway and the next reaper marks the run."""
    deadline = time.monotonic() + FINISH_RETRY_SECONDS
    while True:
        try:
            store.finish_run(run_id, status, phase=phase, reason=reason)
            return True
        except Exception:  # noqa: BLE001 - "database or disk is full" and its kin, whatever the store raises
            if time.monotonic() > deadline:
                return False
            time.sleep(0.2)


def _invocation(store: RunStore, plan: Plan, run: RunRecord, metrics_file: Path, reporter: Reporter) -> Invocation:
    run_dir = Path(run.run_dir)
    artifacts = run_dir / "artifacts"
    model_dir = artifacts / "model"
    env = {
        "PROJ_RUN_ID": run.id,
        "PROJ_TRACKING_URI": getattr(store, "server_uri", None) or str(store.root),  # a server: the run's home
        "PROJ_ARTIFACT_DIR": str(artifacts),
        "PROJ_MODEL_DIR": str(model_dir),
        "PROJ_METRICS_FILE": str(metrics_file),
        "PROJ_EXPERIMENT_NAME": run.experiment,
    }
    if plan.source.commit:
        env["PROJ_SOURCE_COMMIT"] = plan.source.commit
    for hook in _hooks():
        if hasattr(hook, "child_env"):
            env.update(hook.child_env(store, run, reporter))
    path_params = {p.name: Path(p.value) for p in plan.params if p.type == "path" and os.path.isabs(str(p.value))}
    return Invocation(command=plan.command, cwd=plan.project.root, env=env, pythonpath=(CHILD_PATH,),
                      path_params=path_params, mounts={run_dir: "rw", CHILD_PATH: "ro"},
                      on_start=lambda pid: store.set_child(run.id, pid))


@contextmanager
def _leases(plan: Plan, env: Any, run_id: str) -> Iterator[None]:
    """Hold the cached env dir and git checkout this run uses, so neither ``prune`` nor a
    ``--refresh-env`` of another run removes them under it."""
    from proj.envs.cache import MARKER
    from proj.locks import in_use

    with ExitStack() as stack:
        home = env.home()
        if home is not None and home.is_dir():  # the exact slot it was given, not whatever is published now
            stack.enter_context(in_use(home, run_id, marker=MARKER))
        if plan.source.kind == "git":  # the pristine checkout the private copy came from
            checkout = workspace.checkout_root(plan.source)
            if checkout.is_dir():
                stack.enter_context(in_use(checkout))
        yield


def _hooks() -> list[Any]:
    return list(RUN_HOOKS)


def after_run_hooks(store: RunStore, run: RunRecord, code: int, reporter: Reporter) -> None:
    for hook in _hooks():
        if hasattr(hook, "after_run"):
            hook.after_run(store, run, code, reporter)
