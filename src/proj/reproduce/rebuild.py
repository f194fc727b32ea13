"""``proj reproduce RUN``: the same code, the same locked environment, the same params; then compare.

    load the record -> materialize the source -> re-bind the recorded params (checking path inputs)
    -> plan with the recorded backend -> start a run linked to the old one -> build FROM THE LOCK
    -> execute -> compare with the original
"""
from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from proj.envs.base import BuildLog, Env, Lock
from proj.errors import CannotReproduce, ProjError
from proj.pipeline.request import RunOptions, RunRequest
from proj.pipeline.run import Plan, execute_run, plan_run, start_run
from proj.report import Reporter
from proj.reproduce.behaviour import env_runner
from proj.reproduce.compare import ArtifactOptions, Comparison, compare_runs
from proj.reproduce.source import materialize, read_plain, workspace
from proj.tracking.records import RUNNING, RunRecord
from proj.tracking.store import RunStore

REPRODUCES_TAG = "proj.reproduces"
# The verdict, on the reproduction run (identical, within-tolerance, differs, cannot): what the registry's
# --require-verdict reads, so it is written where every store keeps it, as a tag.
VERDICT_TAG = "proj.reproduce.verdict"
CANNOT = "cannot"


@dataclass
class Reproduction:
    original: RunRecord
    new: RunRecord
    comparison: Comparison
    notes: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return 1 if self.comparison.verdict == "differs" else 0


def reproduce(store: RunStore, run_ref: str, *, tolerance: float = 0.0, env_manager: str | None = None,
              reporter: Reporter, options: ArtifactOptions | None = None) -> Reproduction:
    """Rerun ``run_ref`` and compare; MLflow models that differ in bytes are compared by behaviour, loaded
    inside the reproduced environment."""
    old = store.get_run(run_ref)
    if old.status == RUNNING:
        raise CannotReproduce(f"run {old.id[:12]} is still RUNNING; wait for it or cancel it first")
    if old.parent_run_id:  # it has no command of its own: the program that opened it must run again
        top = old
        while top.parent_run_id:
            top = store.get_run(top.parent_run_id)
        raise CannotReproduce(f"run {old.id[:12]} is a child run (MLflow run {old.mlflow_run_id} opened by the program "
                              f"of run {top.id[:12]}); reproduce run {top.id[:12]} instead")
    notes: list[str] = []
    recorded = _recorded_request(store, old, notes)
    with workspace() as tmp:
        source = materialize(old, Path(tmp), notes)
        req = _request(recorded, old, source.project_dir, env_manager, notes)
        plan = plan_run(req)
        plan.source = source  # the new run records the original provenance, not the private copy
        plan.choice = dataclasses.replace(plan.choice, origin=f"run {old.id[:12]} (reproduced)")
        lock = _recorded_lock(store, old, plan.choice.backend, notes)
        reporter.info(f"reproducing {old.id[:12]} ({old.entry_point}) at {source.commit or 'snapshot'}"
                      f"{' with its uncommitted changes' if source.dirty else ''}")
        new = start_run(store, plan)
        try:
            outcome = execute_run(store, plan, new, reporter=reporter, lock=lock)
        except ProjError as exc:  # recorded FAILED in phase environment by the runner; the verdict is "cannot"
            record_verdict(store, new.id, CANNOT)
            raise CannotReproduce(f"run {old.id[:12]} could not be reproduced: {exc}") from None
        final = store.get_run(outcome.run.id)
        options = options or ArtifactOptions()
        env = _reproduced_env(store, plan, final, lock)
        if env is not None:
            options = dataclasses.replace(options, runner=env_runner(env))
        comparison = compare_runs(store, old, final, tolerance, options)
    record_verdict(store, final.id, comparison.verdict)
    return Reproduction(old, store.get_run(final.id), comparison, notes)


def record_verdict(store: RunStore, run_id: str, verdict: str) -> None:
    """Tag the reproduction run with its verdict, spelt as a flag value (``within tolerance`` -> ``within-tolerance``)."""
    store.log_batch(run_id, tags={VERDICT_TAG: verdict.replace(" ", "-")})


def _recorded_request(store: RunStore, old: RunRecord, notes: list[str]) -> RunRequest:
    """The request ``old`` ran with, from the store: the run folder's request.json is the child's to
    rewrite (a container mounts it), so it is only compared, never trusted."""
    text = store.get_request(old.id)
    request_file = Path(old.run_dir) / "request.json"
    if text is None:  # recorded by a proj that kept it only in the run folder
        if not request_file.exists():
            raise CannotReproduce(f"run {old.id[:12]} has no request.json (recorded by an older proj)")
        req = _parse_request(read_plain(request_file, old).decode("utf-8", "replace"), old)
        notes.append(f"request: run {old.id[:12]} was recorded by an older proj, its request.json cannot be "
                     f"verified, so its backend options ({', '.join(sorted(req.options.as_dict()))}) are not used")
        return dataclasses.replace(req, options=RunOptions())
    if request_file.exists() or request_file.is_symlink():
        data = read_plain(request_file, old) if not request_file.is_symlink() else b""
        if hashlib.sha256(data).hexdigest() != hashlib.sha256(text.encode()).hexdigest():
            raise CannotReproduce(f"run {old.id[:12]}'s recorded request was modified after the run (sha256 mismatch)")
    return _parse_request(text, old)


def _parse_request(text: str, old: RunRecord) -> RunRequest:
    try:
        return RunRequest.from_json(text)
    except (ValueError, TypeError) as exc:
        raise CannotReproduce(f"run {old.id[:12]}'s recorded request cannot be read: {exc}") from None


def _reproduced_env(store: RunStore, plan: Plan, run: RunRecord, lock: Lock | None) -> Env | None:
    """The environment the reproduction ran in, for loading its models: the same cached env again (a cache
    hit on the lock it recorded; None when it recorded none)."""
    recorded = store.get_lock(run.id)
    if recorded is None:
        return None
    quiet = BuildLog(None)
    try:
        if plan.choice.backend == "local":
            return plan.backend.ensure(plan.choice, quiet)
        return plan.backend.from_lock(plan.choice, lock or Lock(*recorded), quiet)
    except ProjError:
        return None


def _request(req: RunRequest, old: RunRecord, project_dir: Path, env_manager: str | None,
             notes: list[str]) -> RunRequest:
    params = {}
    for p in old.params:
        if p.source == "logged" or p.source == "default":
            continue  # defaults come from the (identical) project; logged ones the program sets itself
        params[p.key] = str(p.typed) if p.type == "path" else p.value
        if p.type == "path":
            _check_input(old, p.key, str(p.typed), notes)
    backend = env_manager or old.env.get("backend") or req.env_manager
    tags = {**req.tags, REPRODUCES_TAG: old.id}
    return dataclasses.replace(req, uri=str(project_dir), version=None, params=params, env_manager=backend,
                               tags=tags, reproduces=old.id, refresh_env=False,
                               options=dataclasses.replace(req.options, require_clean=False))


def _check_input(old: RunRecord, name: str, path: str, notes: list[str]) -> None:
    if "://" in path and not path.startswith("file://"):
        return
    if not Path(path).exists():
        raise CannotReproduce(f"input {name!r} ({path}) no longer exists, so run {old.id[:12]} cannot be reproduced")
    recorded = old.inputs.get(name, {}).get("sha256")
    if recorded:
        from proj.pipeline.inputs import fingerprint_inputs

        now = fingerprint_inputs({name: path}).get(name, {}).get("sha256")
        if now != recorded:
            notes.append(f"your data changed: input {name!r} ({path}) has different content than when "
                         f"run {old.id[:12]} read it")


def _recorded_lock(store: RunStore, old: RunRecord, backend: str, notes: list[str]) -> Lock | None:
    """The lock to rebuild from; None means 'build normally' (local envs cannot be rebuilt)."""
    recorded = store.get_lock(old.id)
    if recorded is None:
        raise CannotReproduce(f"run {old.id[:12]} has no recorded environment lock")
    if backend != old.env.get("backend"):
        notes.append(f"environment: {old.env.get('backend')} run reproduced with {backend}: built from the spec, "
                     f"not from the recorded lock")
        return None
    if backend == "local":
        notes.append("environment: a local-environment run cannot be rebuilt; its recorded packages are "
                     "compared with the current ones under 'environment'")
        return None
    return Lock(*recorded)
