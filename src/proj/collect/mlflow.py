"""Ingest what a child logged with ``mlflow`` into its private file store, into the proj run.

Reads MLflow's file-store layout directly (no mlflow import): ``<exp>/<run>/{meta.yaml,params,metrics,
tags,artifacts}`` (MLflow 2 and 3) and ``<exp>/models/<model_id>/{meta.yaml,artifacts}`` (MLflow 3
logged models). A store the child left half-written is ingested as far as it can be read, with a warning.

Every name in the store was chosen by the child (run names, model names, artifact entries, even symlinks),
while proj writes as the user who started it, on the host for a ``docker_env`` run: each destination goes
through ``proj.paths.contained`` and a refused name is stored under a generated one, with a warning.
"""
from __future__ import annotations

import math
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from proj.errors import UnsafePath
from proj.models.dirs import find_model_dirs
from proj.paths import contained, safe_name, shorten, unsafe_reason
from proj.report import Reporter
from proj.safe_yaml import load_untrusted
from proj.tracking.records import FAILED, FINISHED, KILLED, ChildRun, MetricPoint, ParamRecord
from proj.tracking.store import RunStore

NOT_RUN_DIRS = ("models", ".trash", "datasets", "traces")
# MLflow's RunStatus numbers as its file store writes them; RUNNING (1) and SCHEDULED (2) were never ended.
ENDED_STATUSES = {3: FINISHED, 4: FAILED, 5: KILLED, "FINISHED": FINISHED, "FAILED": FAILED, "KILLED": KILLED}


@dataclass
class MlflowRun:
    path: Path
    run_id: str
    name: str | None = None
    start_time: float = 0.0
    end_time: float | None = None
    status: Any = None  # as meta.yaml has it (a RunStatus number)
    parent: str | None = None
    has_meta: bool = False
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    metrics: list[MetricPoint] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def ingest_mlflow(store: RunStore, run_id: str, mlruns: Path, artifacts: Path, reporter: Reporter, *,
                  exit_code: int | None = None, copy_artifacts: bool = True) -> dict[str, list[str]]:
    """Params, metrics, tags, artifacts and models of every MLflow run in ``mlruns``.

    The first top-level run with readable metadata is the proj run itself (as ``mlflow run`` makes it); every
    other MLflow run becomes a child run of it, or of the child its ``mlflow.parentRunId`` names, with its
    own data and run folder. Returns ``{proj run id: model paths relative to that run's artifacts}``.
    ``copy_artifacts=False`` (the run replaced its ``artifacts`` folder) ingests only params, metrics and tags.

    Every destination is checked against the run folder (``artifacts.parent``, made by proj), never against
    ``artifacts`` itself, which the child may have replaced with a symlink.
    """
    runs = _parents_first(sorted(find_runs(mlruns), key=lambda r: (r.parent is not None, not r.has_meta, r.start_time)))
    allowed = artifacts.parent  # the proj run folder, where the MLflow store lives
    owners: dict[str, str] = {}  # MLflow run id -> proj run id
    models: dict[str, list[str]] = {run_id: []}
    started = store.get_run(run_id).start_time if runs else 0.0
    for run in runs:
        for problem in run.problems:
            reporter.warn(f"mlflow store: {problem}")
        if not owners:
            target = run_id
            store.set_mlflow_run_id(run_id, run.run_id)
        else:
            target = store.record_child_run(_child(run, owners.get(run.parent or "", run_id), started, exit_code)).id
        owners.setdefault(run.run_id, target)
        models.setdefault(target, [])
        params = [ParamRecord(k, v, v, "string", "logged") for k, v in run.params.items()]
        tags = {k: v for k, v in run.tags.items() if not k.startswith("mlflow.")}
        tags["mlflow.run_id"] = run.run_id
        store.log_batch(target, run.metrics, params, tags)
        dest = _anchor_of(store, target, run_id, allowed)
        src = run.path / "artifacts"
        if not copy_artifacts:
            pass
        elif src.is_symlink():  # would copy whatever folder it names, e.g. one of the host's
            reporter.warn(f"mlflow store: {src} is a symlink; its artifacts are not copied")
        elif src.is_dir() and any(src.iterdir()):
            fallback = f"mlflow/{_label(run.run_id, 'mlflow run id', reporter)}"
            models[target] += _copy_artifacts(src, "", dest, allowed, reporter, fallback=fallback)
    for model in find_logged_models(mlruns, reporter) if copy_artifacts else []:
        target = _model_owner(model, runs, owners, run_id, reporter)
        dest = _anchor_of(store, target, run_id, allowed)
        folder = _place_model(model, dest, allowed, reporter)
        if folder is not None:
            models.setdefault(target, []).append(folder)
    if runs:
        children = len(set(owners.values()) - {run_id})
        reporter.info(f"mlflow: ingested {len(runs)} run(s)" + (f" ({children} as child runs)" if children else "")
             + f" and {sum(len(v) for v in models.values())} model(s) from {mlruns}")
    return models


def _parents_first(runs: list[MlflowRun]) -> list[MlflowRun]:
    """``runs`` reordered so a nested run comes after the run it names as parent (the first stays first)."""
    known = {r.run_id for r in runs}
    done: set[str] = set()
    ordered: list[MlflowRun] = []
    pending = list(runs)
    while pending:
        ready = [r for r in pending if not ordered or r.parent not in known or r.parent in done or r.parent == r.run_id]
        if not ready:  # parent tags that form a loop: take them as they come (they attach to the proj run)
            ready = pending[:1]
        for run in ready if ordered else ready[:1]:
            ordered.append(run)
            done.add(run.run_id)
            pending.remove(run)
    return ordered


def _child(run: MlflowRun, parent: str, started: float, exit_code: int | None) -> ChildRun:
    """The child-run record of ``run``: MLflow's own status and times; a run never ended counts as failed."""
    status, reason = ENDED_STATUSES.get(run.status), None
    if status is None:
        how = "the runner died" if exit_code in (None, -1) else f"the program exited with code {exit_code}"
        status, reason = FAILED, (f"its MLflow run was never ended ({how})" if run.has_meta
                                  else "its MLflow run has no meta.yaml (left half-written)")
    start = run.start_time or min((m.timestamp for m in run.metrics), default=started)
    end = run.end_time or max((m.timestamp for m in run.metrics), default=start)
    return ChildRun(parent_run_id=parent, mlflow_run_id=run.run_id, name=run.name, status=status,
                    start_time=start, end_time=end, failure_reason=reason)


def _anchor_of(store: RunStore, target: str, run_id: str, run_dir: Path) -> Path:
    """The run folder (made by proj) whose ``artifacts`` receive ``target``'s files: the trusted anchor."""
    return run_dir if target == run_id else store.run_dir(target)


def _place_model(model: LoggedModel, anchor: Path, allowed: Path, reporter: Reporter) -> str | None:
    """Copy a logged model under its name, or under ``mlflow/models/<id>`` when the name cannot be placed
    (it crosses a file the run wrote, or the filesystem refuses it): the run still finishes."""
    folder = _free_name(anchor / "artifacts", model.name, model.path.name, reporter)
    try:
        return folder if _safe_copy(model.path / "artifacts", anchor, f"artifacts/{folder}", allowed, reporter) else None
    except OSError as exc:
        fallback = f"mlflow/models/{model.path.name}"
        if _taken(anchor / "artifacts", fallback):
            fallback += f"-{os.getpid()}"
        if fallback == folder:
            raise
        reporter.warn(f"mlflow store: logged model name {shorten(repr(model.name))} cannot be placed "
             f"({exc.strerror or exc}); stored as {fallback} instead")
    try:
        return fallback if _safe_copy(model.path / "artifacts", anchor, f"artifacts/{fallback}", allowed, reporter) else None
    except OSError as exc:
        reporter.warn(f"mlflow store: logged model {model.path.name} not copied: {shorten(str(exc))}")
        return None


def _model_owner(model: LoggedModel, runs: list[MlflowRun], owners: dict[str, str], run_id: str, reporter: Reporter) -> str:
    """The proj run of the MLflow run that logged ``model``: its ``source_run_id``, else the ``run_id`` in its
    MLmodel, else the run whose ``outputs`` name it. Never another run's: unknown means the proj run itself."""
    for source in (model.source_run_id, model.mlmodel_run_id):
        if source and source in owners:
            return owners[source]
    for run in runs:
        if (run.path / "outputs" / model.path.name).is_dir():
            return owners[run.run_id]
    if model.source_run_id or model.mlmodel_run_id:
        reporter.warn(f"mlflow store: logged model {model.path.name} names run "
             f"{shorten(str(model.source_run_id or model.mlmodel_run_id))}, which is not in the store; kept with the run itself")
    return run_id


def find_runs(mlruns: Path) -> list[MlflowRun]:
    runs = []
    for exp in _subdirs(mlruns):
        if exp.name in NOT_RUN_DIRS:
            continue
        for run_dir in _subdirs(exp):
            if run_dir.name not in NOT_RUN_DIRS and any((run_dir / d).exists()
                                                        for d in ("meta.yaml", "params", "metrics", "tags")):
                runs.append(read_run(run_dir))
    return runs


def read_run(run_dir: Path) -> MlflowRun:
    run = MlflowRun(run_dir, run_dir.name)
    meta = _yaml(run_dir / "meta.yaml", run.problems)
    if isinstance(meta, dict):
        run.has_meta = True
        if meta.get("lifecycle_stage") == "deleted":
            run.problems.append(f"run {run.run_id} is marked deleted; ingested anyway")
        run.run_id = str(meta.get("run_id") or run.run_id)
        run.name = meta.get("run_name") or None
        run.start_time = _seconds(meta.get("start_time"), run.problems) or 0.0
        run.end_time = _seconds(meta.get("end_time"), run.problems)
        run.status = meta.get("status")
    run.params = _key_files(run_dir / "params", run.problems)
    run.tags = _key_files(run_dir / "tags", run.problems)
    run.name = run.name or run.tags.get("mlflow.runName")
    run.parent = run.tags.get("mlflow.parentRunId")
    for key, text in _key_files(run_dir / "metrics", run.problems).items():
        run.metrics += _metric_points(key, text, run.problems)
    return run


def _seconds(ms: Any, problems: list[str]) -> float | None:
    """MLflow's millisecond timestamps as seconds; None when absent or not a number."""
    if ms is None or ms == "":
        return None
    try:
        value = float(ms) / 1000
    except (TypeError, ValueError):
        problems.append(f"timestamp {shorten(repr(ms))} in meta.yaml is not a number; ignored")
        return None
    return value if math.isfinite(value) and value > 0 else None


def _metric_points(key: str, text: str, problems: list[str]) -> list[MetricPoint]:
    """Lines ``timestamp_ms value [step]``; exact duplicates (MLflow 3 repeats some) are dropped."""
    seen, points, bad = set(), [], 0
    for line in text.splitlines():
        parts = line.split()
        if not parts:
            continue
        try:
            ts, value, step = int(parts[0]), float(parts[1]), int(parts[2]) if len(parts) > 2 else 0
        except (ValueError, IndexError):
            bad += 1
            continue
        if (ts, value, step) not in seen:
            seen.add((ts, value, step))
            points.append(MetricPoint(key, value, step, ts / 1000))
    if bad:
        problems.append(f"metric {key!r}: {bad} unreadable line(s) skipped")
    return points


@dataclass
class LoggedModel:
    path: Path  # <exp>/models/<model_id>
    name: str
    source_run_id: str | None
    mlmodel_run_id: str | None
    created: float


def find_logged_models(mlruns: Path, reporter: Reporter) -> list[LoggedModel]:
    """MLflow 3 logged models ``<exp>/models/<model_id>`` that have an MLmodel, in the order they were logged."""
    found = []
    for exp in _subdirs(mlruns):
        if (exp / "models").is_symlink():  # a walk through it would read (and copy) a host folder
            reporter.warn(f"mlflow store: {exp / 'models'} is a symbolic link; not followed")
            continue
        for model in _subdirs(exp / "models"):
            problems: list[str] = []
            meta = _yaml(model / "meta.yaml", problems)
            for problem in problems:
                reporter.warn(f"mlflow store: {problem}")
            if (model / "artifacts").is_symlink():
                reporter.warn(f"mlflow store: {model / 'artifacts'} is a symbolic link; not followed")
                continue
            if not (model / "artifacts" / "MLmodel").is_file():
                reporter.warn(f"mlflow store: logged model {model.name} has no artifacts/MLmodel (half-written?); skipped")
                continue
            meta = meta if isinstance(meta, dict) else {}
            mlmodel = _yaml(model / "artifacts" / "MLmodel", [])
            source = meta.get("source_run_id")
            logged_by = mlmodel.get("run_id") if isinstance(mlmodel, dict) else None
            found.append(LoggedModel(model, str(meta.get("name") or model.name), str(source) if source else None,
                                     str(logged_by) if logged_by else None,
                                     _seconds(meta.get("creation_timestamp"), []) or 0.0))
    return sorted(found, key=lambda m: (m.created, m.path.name))


def _copy_artifacts(src: Path, dest: str, anchor: Path, allowed: Path, reporter: Reporter, *, fallback: str) -> list[str]:
    """Copy a run's artifacts into ``anchor/artifacts/dest``; an entry whose name is taken goes under ``fallback``.
    Returns the model directories (relative to ``artifacts``) among what was copied."""
    models = []
    artifacts = anchor / "artifacts"
    for entry in sorted(src.iterdir()):
        rel = f"{dest}/{entry.name}" if dest else entry.name
        if _taken(artifacts, rel):
            rel = f"{fallback}/{entry.name}"
        try:
            if not _safe_copy(entry, anchor, f"artifacts/{rel}", allowed, reporter):
                continue
        except OSError as exc:  # e.g. a name the filesystem refuses: the rest of the run's artifacts still land
            reporter.warn(f"mlflow store: {entry} not copied: {shorten(str(exc))}")
            continue
        target = artifacts / rel
        if target.is_dir():
            models += [f"{rel}/{m}" for m in find_model_dirs(target)]
            if (target / "MLmodel").is_file():
                models.append(rel)
    return models


def _safe_copy(src: Path, anchor: Path, rel: str, allowed: Path, reporter: Reporter) -> bool:
    """Copy a file or tree to ``anchor/rel`` (``anchor``: a run folder proj made), dereferencing symlinks only
    when they stay inside ``allowed``; False when it was refused. Every destination is checked, as the child
    may have planted symlinks there (even in place of ``artifacts``)."""
    root = allowed.resolve()
    if src.is_symlink():
        target = src.resolve()
        if not target.is_relative_to(root) or not target.exists():
            reporter.warn(f"mlflow store: {src} links outside the run folder ({target}); not copied")
            return False
        if target.is_dir():  # could loop back into what is being copied
            reporter.warn(f"mlflow store: {src} is a symlinked folder ({target}); not copied")
            return False
    try:
        dest = contained(anchor, rel, what="mlflow artifact destination")
    except UnsafePath as exc:
        reporter.warn(f"mlflow store: {exc}; {src} not copied")
        return False
    if src.is_dir():
        dest.mkdir(parents=True, exist_ok=True)
        for entry in sorted(src.iterdir()):
            _safe_copy(entry, anchor, f"{rel}/{entry.name}", allowed, reporter)
    elif src.is_file():
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest)
    return True


def _label(name: str, what: str, reporter: Reporter) -> str:
    """``name`` as a folder under ``artifacts/mlflow`` (and a key prefix), or a generated one when refused."""
    reason = unsafe_reason(name)
    if reason is None:
        return name
    fallback = safe_name(name)
    reporter.warn(f"mlflow store: {what} {shorten(repr(name))} {reason}; stored as mlflow/{fallback} instead")
    return fallback


def _free_name(artifacts: Path, name: str, model_id: str, reporter: Reporter) -> str:
    """The folder for a logged model: its name when free and safe, else one under ``mlflow/models``."""
    candidates = [name, f"{name}-{model_id}"]
    reason = unsafe_reason(name)
    if reason is not None:
        reporter.warn(f"mlflow store: logged model name {shorten(repr(name))} {reason}; "
             f"stored as mlflow/models/{model_id} instead")
        candidates = []
    for candidate in candidates + [f"mlflow/models/{model_id}"]:
        if not _taken(artifacts, candidate):
            return candidate
    return f"mlflow/models/{model_id}-{os.getpid()}"


def _taken(artifacts: Path, rel: str) -> bool:
    """Whether ``artifacts/rel`` exists (a dangling symlink counts: it is not ours to replace)."""
    path = artifacts / rel
    return path.exists() or path.is_symlink()



def _key_files(folder: Path, problems: list[str]) -> dict[str, str]:
    """``{key: content}`` of MLflow's one-file-per-key folders (a key with ``/`` is a subfolder)."""
    out: dict[str, str] = {}
    if folder.is_symlink():  # os.walk would follow it: every file of the host folder it names becomes a key
        problems.append(f"{folder} is a symbolic link; not followed")
        return out
    if not folder.is_dir():
        return out
    for dirpath, _dirs, files in os.walk(folder):
        for name in files:
            path = Path(dirpath) / name
            if path.is_symlink():  # MLflow never writes one; it could name any file proj can read
                problems.append(f"{path} is a symlink; skipped")
                continue
            try:
                out[path.relative_to(folder).as_posix()] = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                problems.append(f"{path} unreadable ({exc}); skipped")
    return out


def _yaml(path: Path, problems: list[str]) -> Any:
    import yaml

    if path.is_symlink():  # MLflow never writes one; it could name any file proj can read
        problems.append(f"{path} is a symlink; skipped")
        return None
    try:
        return load_untrusted(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        problems.append(f"{path} is missing (the run was left half-written?)")
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        problems.append(f"{path} is unreadable: {str(exc).splitlines()[0]}")
    return None


def _subdirs(path: Path) -> list[Path]:
    try:
        return sorted(p for p in path.iterdir() if p.is_dir() and not p.is_symlink())
    except OSError:
        return []
