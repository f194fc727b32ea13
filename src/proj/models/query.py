"""Finding, describing and exporting recorded models (the core of ``proj models``)."""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from proj.errors import ModelExportError, ModelNotFound, UnsafePath
from proj.models.envfiles import ENV_FILES
from proj.models.mlmodel import file_digest
from proj.paths import contained, unsafe_reason
from proj.tracking.records import ModelRecord
from proj.tracking.store import RunStore


def resolve_model(store: RunStore, ref: str) -> ModelRecord:
    """The model named by ``RUN`` (its only model, or ``model``) or ``RUN/path``."""
    run_ref, _, path = ref.partition("/")
    run = store.get_run(run_ref)
    models = store.list_models(run_id=run.id)
    if not models:
        raise ModelNotFound(f"run {run.id[:12]} recorded no model (see `proj models list`)")
    paths = [m.path for m in models]
    if path:
        path = path.strip("/")
        match = [m for m in models if m.path == path]
    else:
        match = [m for m in models if m.path == "model"] if len(models) > 1 else models
    if not match:
        want = f"{run.id[:12]}/{path}" if path else f"{run.id[:12]} (it has several)"
        raise ModelNotFound(f"no model {want}; its models: {', '.join(paths)} (use RUN/PATH)")
    return match[0]


def model_dir(store: RunStore, model: ModelRecord) -> Path:
    """The model's folder, which must lie inside its run's artifacts (a record from a proj before the
    containment checks may name e.g. ``/tmp/x``, taken from a logged model's name)."""
    try:
        reason = unsafe_reason(model.path)
        if reason is not None:
            raise UnsafePath(f"model {model.ref}: path {model.path!r} {reason}")
        # anchored at the run folder (made by proj), not at artifacts/, which the run may have swapped for a link
        return contained(store.run_dir(model.run_id), f"artifacts/{model.path}", what=f"model {model.ref}: path")
    except UnsafePath as exc:
        raise ModelExportError(f"{exc}; refusing to read it") from None


def describe(store: RunStore, model: ModelRecord) -> dict[str, Any]:
    """Everything ``proj models show`` prints: flavors, signature, env files, lineage, files."""
    run = store.get_run(model.run_id)
    folder = model_dir(store, model)
    env_files = {}
    for name in ENV_FILES:
        try:
            env_files[name] = (folder / name).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
    return {
        **model.to_dict(),
        "dir": str(folder),
        "flavor_details": model.mlmodel.get("flavors", {}),
        "signature": model.mlmodel.get("signature"),
        "env_files": env_files,
        "lineage": {"run_id": run.id, "experiment": run.experiment, "status": run.status,
                    "entry_point": run.entry_point, "command": run.command, "source": run.source.get("uri") or
                    run.source.get("dir"), "commit": run.source.get("commit"), "dirty": run.source.get("dirty"),
                    "params": {p.key: p.typed for p in run.params}, "env_backend": run.env.get("backend"),
                    "lock_sha256": run.env.get("lock_sha256")},
    }


def export_model(store: RunStore, model: ModelRecord, dest: Path, *, allow_invalid: bool = False) -> Path:
    """Copy the recorded files of a model to ``dest``, checking each against its recorded sha256."""
    if not model.files:
        raise ModelExportError(f"model {model.ref} has no exportable files: {model.reason or 'empty'}")
    if not model.valid and not allow_invalid:
        raise ModelExportError(f"model {model.ref} is invalid ({model.reason}); pass --allow-invalid to export it anyway")
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise ModelExportError(f"destination {dest} exists and is not an empty directory")
    source = model_dir(store, model)
    if dest.resolve().is_relative_to(source):
        raise ModelExportError(f"destination {dest} is inside the model's own folder {source}")
    staging = dest.with_name(f".{dest.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        for entry in model.files:
            src, target = _member(store.run_dir(model.run_id), source, staging, entry["path"], model)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, target)  # follows links: all checked inside the run folder
            if file_digest(target)[0] != entry["sha256"]:
                raise ModelExportError(f"{source / entry['path']} changed since the run recorded it (sha256 differs)")
        if dest.exists():
            dest.rmdir()
        staging.rename(dest)
    except OSError as exc:
        raise ModelExportError(f"cannot export model {model.ref} to {dest}: {exc}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return dest


def _member(run_dir: Path, source: Path, staging: Path, rel: str, model: ModelRecord) -> tuple[Path, Path]:
    """(where to read, where to write) one recorded file: read inside the run folder (a model's links may
    point elsewhere in it, as packaging checked), written inside the export."""
    try:
        write = contained(staging, rel, what=f"model {model.ref}: file")  # first: refuses absolute names
        read = contained(run_dir, (source / rel).relative_to(run_dir.resolve()).as_posix(), what=f"model {model.ref}: file")
        return read, write
    except ValueError:  # source outside the run folder: model_dir refuses that, so only a changed folder gets here
        raise ModelExportError(f"model {model.ref}: file {rel!r} is not inside the run folder; refusing to export it") from None
    except UnsafePath as exc:
        raise ModelExportError(f"{exc}; refusing to export it") from None

