"""One model directory: check it stays inside the run folder, validate and complete ``MLmodel``, write
the env files from the run's lock, and hash every file for the store.

Bad input never fails the run: an unreadable or invalid ``MLmodel`` or an escaping symlink makes the
model *invalid* with a reason, and the directory is left as the entry point wrote it.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from proj.errors import UnsafeModel, UnsafePath
from proj.paths import contained, linked_part
from proj.report import Reporter
from proj.safe_yaml import load_untrusted
from proj.tracking.records import ModelRecord

MLMODEL = "MLmodel"


@dataclass
class LockInfo:
    """The run's lock and the interpreter version, which is all the env files need."""

    format: str | None
    text: str
    python: str | None
    platform: str | None = None  # the conda subdir the env was built for


def files_of(model_dir: Path, allowed_root: Path, _seen: frozenset[Path] = frozenset()) -> list[Path]:
    """Every file under ``model_dir``; raises UnsafeModel if a symlink resolves outside ``allowed_root``
    (or loops back into a folder being listed)."""
    root = allowed_root.resolve()
    seen = _seen | {model_dir.resolve()}
    found = []
    for dirpath, dirnames, filenames in os.walk(model_dir, followlinks=False):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            if path.is_symlink():
                target = path.resolve()
                if not target.is_relative_to(root) or not target.exists():
                    raise UnsafeModel(f"{path.relative_to(model_dir)} is a symlink to {target}, outside the run folder")
                if target.is_dir():  # os.walk does not descend into it: list it here
                    if any(target == s or s.is_relative_to(target) for s in seen):
                        raise UnsafeModel(f"{path.relative_to(model_dir)} is a symlink loop (to {target})")
                    found += [path / p.relative_to(target) for p in files_of(target, root, seen)]
                    continue
            if name in filenames:
                found.append(path)
    return sorted(found)


def hash_files(model_dir: Path, files: list[Path]) -> tuple[list[dict[str, Any]], int]:
    """``[{path, size, sha256}]`` relative to the model dir, and the total size."""
    out, total = [], 0
    for path in files:
        sha, size = file_digest(path)
        out.append({"path": path.relative_to(model_dir).as_posix(), "size": size, "sha256": sha})
        total += size
    return out, total


def file_digest(path: Path) -> tuple[str, int]:
    """(sha256 hex, size) of one file, read in chunks."""
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def read_mlmodel(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    """Parse and validate an MLmodel file: (data, None) or (None, the reason it is invalid)."""
    import yaml

    from proj.project.schema import _describe, _schema_errors

    try:
        text = path.read_text(encoding="utf-8")
        data = load_untrusted(text)
    except (OSError, UnicodeDecodeError) as exc:
        return None, f"{path}: cannot be read: {exc}"
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        return None, f"{path}{where}: not valid YAML: {getattr(exc, 'problem', None) or exc}"
    if not isinstance(data, dict):
        return None, f"{path}: expected a mapping with a 'flavors' key, got {type(data).__name__}"
    data = _plain(data)
    errors = _schema_errors(data, "mlmodel")
    if errors:
        return None, _describe(errors[0], path, text)
    return data, None


def _plain(value: Any) -> Any:
    """YAML timestamps (an unquoted utc_time_created) as the strings MLflow writes."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, (_dt.datetime, _dt.date)):
        return str(value)
    return value


def complete(data: dict[str, Any], run_id: str, size: int, env_written: bool) -> dict[str, Any]:
    """Fill in what MLflow would have written and the entry point left out; unknown keys are kept."""
    filled = dict(data)
    if not filled.get("run_id"):
        filled["run_id"] = run_id
    if not filled.get("model_uuid"):
        filled["model_uuid"] = uuid.uuid4().hex
    if not filled.get("utc_time_created"):
        filled["utc_time_created"] = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")
    if filled.get("model_size_bytes") is None:
        filled["model_size_bytes"] = size
    pyfunc = filled.get("flavors", {}).get("python_function")
    if env_written and isinstance(pyfunc, dict) and not pyfunc.get("env"):
        filled["flavors"] = {**filled["flavors"], "python_function": {
            **pyfunc, "env": {"conda": "conda.yaml", "virtualenv": "python_env.yaml"}}}
    return filled


def write_mlmodel(path: Path, data: dict[str, Any]) -> None:
    import yaml

    from proj.paths import atomic_write

    atomic_write(path, yaml.safe_dump(data, sort_keys=False, default_flow_style=False))


def package_model(model_dir: Path, *, run_id: str, run_dir: Path, rel: str, lock: LockInfo, reporter: Reporter,
                  origin: str = "run") -> ModelRecord:
    """Validate, complete and hash one model directory; never raises for bad input."""
    record = ModelRecord(run_id=run_id, path=rel, flavors=[], size=0, files=[], valid=False, origin=origin,
                         created=time.time())
    try:
        model_dir = anchored(model_dir, run_dir)
        files = files_of(model_dir, run_dir)
    except UnsafeModel as exc:
        record.reason = f"rejected: {exc}; nothing outside the run folder is hashed or exported"
        reporter.warn(f"model {rel} {record.reason}")
        return record
    data, reason = read_mlmodel(model_dir / MLMODEL)
    if data is None:
        record.reason = reason
        record.files, record.size = hash_files(model_dir, files)
        reporter.warn(f"model {rel} is invalid: {reason}")
        return record
    try:
        record.env_source = _write_env(model_dir, lock, data, reporter, rel)
        size = sum(p.stat().st_size for p in files_of(model_dir, run_dir) if p.name != MLMODEL)
        data = complete(data, run_id, size, record.env_source is not None)
        write_mlmodel(model_dir / MLMODEL, data)
        record.files, record.size = hash_files(model_dir, files_of(model_dir, run_dir))
    except OSError as exc:
        record.reason = f"cannot be completed: {exc}"
        reporter.warn(f"model {rel} {record.reason}")
        return record
    record.mlmodel, record.flavors, record.valid = data, list(data["flavors"]), True
    return record


def anchored(model_dir: Path, run_dir: Path) -> Path:
    """``model_dir`` (a path under ``run_dir``) resolved, checked from the run folder down: the run may have
    replaced ``artifacts`` or a folder on the way with a symlink to a host folder, which files_of, the MLmodel
    and env-file writes would otherwise follow. Raises UnsafeModel."""
    try:
        inside = model_dir.relative_to(run_dir).as_posix()
    except ValueError:
        raise UnsafeModel(f"{model_dir} is not inside the run folder {run_dir}") from None
    link = linked_part(run_dir, inside)
    if link is not None:
        raise UnsafeModel(f"{link.relative_to(run_dir)} is a symbolic link (to {os.readlink(link)})")
    try:
        return contained(run_dir, inside, what="model folder")
    except UnsafePath as exc:
        raise UnsafeModel(str(exc)) from None


def _write_env(model_dir: Path, lock: LockInfo, data: dict[str, Any], reporter: Reporter, rel: str) -> str | None:
    """Write the env files from the lock; the lock format on success, None when it names no packages."""
    import platform

    from proj.models.envfiles import LockParseError, parse_lock, write_env_files

    if not lock.format:
        reporter.warn(f"model {rel}: the run has no recorded lock; its env files are left as they are")
        return None
    try:
        spec = parse_lock(lock.format, lock.text, lock.platform)
    except LockParseError as exc:
        reporter.warn(f"model {rel}: the run's lock cannot be read ({exc}); env files left as they are")
        return None
    if spec is None:
        reporter.info(f"model {rel}: a {lock.format} lock lists no packages; env files left as they are")
        return None
    pyfunc = data.get("flavors", {}).get("python_function") or {}
    python = lock.python or pyfunc.get("python_version") or platform.python_version()
    write_env_files(model_dir, spec, str(python))
    return lock.format
