"""Lineage in one answer: a registered version -> its run -> the source commit and uncommitted patch -> the
environment lock (digest, package count) -> the input data fingerprints -> the run's metrics, and whether the
run was reproduced, with what verdict."""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from proj.errors import NotFound
from proj.registry import files
from proj.registry.service import reproduction
from proj.registry.uris import parse, resolve_version
from proj.reproduce.packages import lock_packages
from proj.sources.provenance import PATCH
from proj.tracking.records import RunRecord
from proj.tracking.registry_records import ModelVersionRecord
from proj.tracking.store import RunStore


def lineage(store: RunStore, model_uri: str) -> dict[str, Any]:
    """Everything ``proj models lineage`` prints, as data. ``model_uri`` is a registry URI or ``runs:/RUN/path``."""
    uri = parse(model_uri)
    version = resolve_version(store, uri) if uri.registered else None
    run_id = version.run_id if version else uri.run_id
    if uri.kind == "logged":
        run_id = store.get_logged_model(uri.model_id or "").source_run_id
    out: dict[str, Any] = {"uri": model_uri, "version": _version(store, version) if version else None}
    try:
        run = store.get_run(run_id) if run_id else None
    except NotFound:
        run = None
        out["run_missing"] = run_id
    out.update(_run_part(store, run) if run else {"run": None})
    return out


def _version(store: RunStore, version: ModelVersionRecord) -> dict[str, Any]:
    problems = files.check(store.root, version.files_sha256) if version.files_sha256 else ["no stored files"]
    stored = files.manifest(store.root, version.files_sha256) if version.files_sha256 and not problems else []
    return {"name": version.name, "version": version.version, "stage": version.current_stage,
            "aliases": version.aliases, "source": version.source, "model_id": version.model_id,
            "created": version.creation_time, "files_sha256": version.files_sha256,
            "files": len(stored), "size": sum(int(f["size"]) for f in stored), "intact": not problems,
            "problems": problems}


def _run_part(store: RunStore, run: RunRecord) -> dict[str, Any]:
    verdict, again = reproduction(store, run.id)
    return {
        "run": {"id": run.id, "status": run.status, "experiment": run.experiment, "entry_point": run.entry_point,
                "command": run.command, "start_time": run.start_time, "lifecycle_stage": run.lifecycle_stage,
                "params": {p.key: p.value for p in run.params}},
        "source": _source(run),
        "environment": _environment(store, run),
        "inputs": {name: {k: info.get(k) for k in ("path", "kind", "sha256", "bytes", "files")}
                   for name, info in sorted(run.inputs.items()) if isinstance(info, dict)},
        "metrics": {k: p.value for k, p in sorted(run.metrics.items())},
        "reproduced": {"verdict": verdict, "run_id": again.id if again else None,
                       "time": again.start_time if again else None},
    }


def _source(run: RunRecord) -> dict[str, Any]:
    src = run.source
    patch = Path(run.run_dir or "") / "artifacts" / "source" / PATCH
    recorded = (src.get("artifact_sha256") or {}).get(PATCH)
    info: dict[str, Any] = {"uri": src.get("uri") or src.get("dir"), "kind": src.get("kind"),
                            "remote": src.get("remote"), "commit": src.get("commit"), "branch": src.get("branch"),
                            "version": src.get("version"), "dirty": bool(src.get("dirty")), "patch": None}
    if recorded or src.get("dirty"):
        text = patch.read_bytes() if patch.is_file() else None
        info["patch"] = {"sha256": recorded, "bytes": len(text) if text is not None else None,
                         "files": text.count(b"\ndiff --git ") + text.startswith(b"diff --git ") if text else None,
                         "intact": text is not None and hashlib.sha256(text).hexdigest() == recorded}
    return info


def _environment(store: RunStore, run: RunRecord) -> dict[str, Any]:
    lock = store.get_lock(run.id)
    env = {"backend": run.env.get("backend"), "python": run.env.get("python_version"), "lock_format": None,
           "lock_sha256": run.env.get("lock_sha256"), "packages": None}
    if lock:
        env["lock_format"] = lock[0]
        env["lock_sha256"] = env["lock_sha256"] or hashlib.sha256(lock[1].encode()).hexdigest()
        env["packages"] = len(lock_packages(lock[0], lock[1]))
    return env
