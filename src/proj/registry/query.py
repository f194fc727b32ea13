"""Reading registered versions for ``proj models show|export`` and the API: found by model URI, described,
and exported from the registry's own copy of their files."""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from proj.errors import UsageError
from proj.registry import files
from proj.registry.uris import parse, resolve_version
from proj.tracking.registry_records import ModelVersionRecord
from proj.tracking.store import RunStore


def find(store: RunStore, model_uri: str) -> ModelVersionRecord:
    """The registered version ``models:/NAME/VERSION``, ``/STAGE``, ``/latest`` or ``@ALIAS`` names."""
    uri = parse(model_uri)
    if not uri.registered:
        raise UsageError(f"{model_uri} names no registered version: use models:/NAME/VERSION, models:/NAME/STAGE, "
                         "models:/NAME/latest or models:/NAME@ALIAS")
    return resolve_version(store, uri)


def describe_version(store: RunStore, version: ModelVersionRecord) -> dict[str, Any]:
    """The version record with its stored files and whether they are whole."""
    data = asdict(version)
    data["uri"] = f"models:/{version.name}/{version.version}"
    data["files"], data["problems"] = [], ["no stored files (registered without a copy)"]
    if version.files_sha256:
        data["files"] = files.manifest(store.root, version.files_sha256)
        data["problems"] = files.check(store.root, version.files_sha256)
    data["intact"] = not data["problems"]
    return data


def export_version(store: RunStore, version: ModelVersionRecord, dest: Path) -> Path:
    """Copy the version's stored files to ``dest``, each checked against its sha256 (the run may be gone)."""
    label = f"models:/{version.name}/{version.version}"
    if not version.files_sha256:
        raise UsageError(f"{label} has no stored files to export (registered without a copy)")
    return files.export_files(store.root, version.files_sha256, dest, label)
