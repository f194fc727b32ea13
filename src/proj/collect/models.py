"""The run hook for models: give the child a private MLflow store, then collect what the run produced.

``after_run`` costs a directory check and a walk of the artifacts folder when the run used neither
mlflow nor a model directory: PyYAML, jsonschema and the ingest code are imported only when needed.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from proj import settings
from proj.errors import printable
from proj.models.dirs import find_model_dirs
from proj.paths import linked_part
from proj.report import Reporter

MLFLOW_SUBDIR = "mlflow"
MODEL_SUBDIR = "model"
# Folders of the run folder that the child writes into (mounted into a docker_env container) and that proj
# reads or writes after the run: one the child swapped for a symlink must not be followed (it may name a host
# folder, and proj may run as root on the host).
CHILD_WRITTEN = ("artifacts", "logs", MLFLOW_SUBDIR)


def mlflow_root(run_dir: Path) -> Path:
    """The run's private MLflow file store."""
    return run_dir / MLFLOW_SUBDIR / "mlruns"


def child_env(store: Any, run: Any, reporter: Reporter) -> dict[str, str]:
    """MLflow in the child logs into a file store private to this run; proj ingests it afterwards.

    No MLFLOW_RUN_ID: that would need a run created beforehand in MLflow's own format; the child's
    ``start_run()`` creates one in the private store instead. MLflow 3 refuses file stores unless
    MLFLOW_ALLOW_FILE_STORE is set; MLflow 2 ignores the variable. A run recorded to a tracking server
    (tracking.rest) exists there already: the child gets its id and logs into it directly, nothing to ingest.
    """
    if settings.keep_mlflow_tracking_uri():
        return {}  # the user's own server gets the data; proj records only what it sees itself
    server = getattr(store, "server_uri", None)
    if server:  # the run lives on a tracking server: the program's start_run() continues it, as `mlflow run` does
        return {"MLFLOW_TRACKING_URI": server, "MLFLOW_RUN_ID": run.id, "MLFLOW_EXPERIMENT_ID": run.experiment_id}
    if os.environ.get("MLFLOW_TRACKING_URI"):
        reporter.note("your MLFLOW_TRACKING_URI is redirected to this run's private MLflow store, so what "
                      "the program logs lands in the proj run (set PROJ_KEEP_MLFLOW_TRACKING_URI=1 to keep yours)")
    return {
        "MLFLOW_TRACKING_URI": mlflow_root(Path(run.run_dir)).as_uri(),
        "MLFLOW_ALLOW_FILE_STORE": "true",
        "MLFLOW_EXPERIMENT_NAME": run.experiment,
    }


def after_run(store: Any, run: Any, exit_code: int, reporter: Reporter) -> None:
    run_dir = Path(run.run_dir)
    artifacts = run_dir / "artifacts"
    reporter = Escaping(reporter)
    replaced = replaced_folders(run_dir, reporter)
    mlflow_models: dict[str, list[str]] = {}
    if MLFLOW_SUBDIR in replaced:
        pass
    elif linked_part(run_dir, f"{MLFLOW_SUBDIR}/mlruns") is not None:
        reporter.warn(f"{mlflow_root(run_dir)} is a symbolic link; the run's MLflow data is not ingested")
    elif mlflow_root(run_dir).is_dir():
        from proj.collect.mlflow import ingest_mlflow

        mlflow_models = ingest_mlflow(store, run.id, mlflow_root(run_dir), artifacts, reporter, exit_code=exit_code,
                                      copy_artifacts="artifacts" not in replaced)
    # Child runs (the program's other MLflow runs) hold only what MLflow logged into them; their models
    # get the parent's environment files, as the same program in the same environment made them.
    for child_id, rels in mlflow_models.items():
        if child_id != run.id and rels:
            _package(store, run, Path(store.run_dir(child_id)), child_id, set(rels), reporter)
    if "artifacts" in replaced:
        return
    found = _package(store, run, run_dir, run.id, set(mlflow_models.get(run.id, ())), reporter)
    if MODEL_SUBDIR not in found:
        _warn_plain_model_dir(artifacts / MODEL_SUBDIR, reporter)


def replaced_folders(run_dir: Path, reporter: Reporter) -> set[str]:
    """The folders of ``CHILD_WRITTEN`` the run replaced with a symlink or a non-folder, each warned about in
    one line. A planted symlink is removed (the link only, never what it names), so no later command follows it."""
    replaced = set()
    for name in CHILD_WRITTEN:
        path = run_dir / name
        if path.is_symlink():
            try:
                path.unlink()
                done = "removed, not followed"
            except OSError:
                done = "not followed"
            reporter.warn(f"the run replaced {path} with a symbolic link; {done}")
        elif path.exists() and not path.is_dir():
            reporter.warn(f"the run replaced {path} with a file; not read")
        else:
            continue
        replaced.add(name)
    return replaced


class Escaping:
    """A Reporter that escapes what it passes on: every message here quotes names the run chose."""

    def __init__(self, reporter: Reporter) -> None:
        self._reporter = reporter

    def info(self, message: str) -> None:
        self._reporter.info(printable(message))

    def note(self, message: str) -> None:
        self._reporter.note(printable(message))

    def warn(self, message: str) -> None:
        self._reporter.warn(printable(message))


def _package(store: Any, run: Any, run_dir: Path, owner_id: str, mlflow_models: set[str], reporter: Reporter) -> list[str]:
    """Package and record every model under ``run_dir/artifacts`` as a model of ``owner_id``; returns them."""
    artifacts = run_dir / "artifacts"
    found = find_model_dirs(artifacts)
    if not found:
        return found
    from proj.models.mlmodel import LockInfo, package_model

    lock = store.get_lock(run.id)
    env = store.get_run(run.id).env
    info = LockInfo(lock[0] if lock else None, lock[1] if lock else "", env.get("python_version"), env.get("platform"))
    label = "" if owner_id == run.id else f" of child run {owner_id[:12]}"
    for rel in found:
        origin = "mlflow" if rel in mlflow_models else "run"
        record = package_model(artifacts / rel, run_id=owner_id, run_dir=run_dir, rel=rel, lock=info, reporter=reporter,
                               origin=origin)
        store.save_model(record)
        if record.valid:
            reporter.info(f"model {rel}{label}: {', '.join(record.flavors)} ({len(record.files)} files"
                 + (f", env files from the {record.env_source} lock)" if record.env_source else ")"))
    return found


def _warn_plain_model_dir(model_dir: Path, reporter: Reporter) -> None:
    if model_dir.is_symlink():  # saying whether what it names is empty would tell the run about a host folder
        reporter.warn(f"{model_dir} is a symbolic link; not packaged")
    elif model_dir.is_dir() and any(model_dir.iterdir()):
        reporter.warn(f"{model_dir} has files but no MLmodel file, so it is kept as plain artifacts, not a model. "
             "To make it a model, save it with proj_client.save_model(obj) (or mlflow.<flavor>.save_model(obj, "
             "os.environ['PROJ_MODEL_DIR'])), or write an MLmodel file with a 'flavors' block there.")

