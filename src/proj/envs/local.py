"""The ``local`` backend: the caller's own interpreter and PATH; nothing is built.

Its lock is a ``pip freeze``-style list of what the ``python`` on PATH sees. Computing that costs a
subprocess, so it is cached and reused while the interpreter's site directories are unchanged.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from proj.envs.base import Backend, BuildLog, EnvChoice, Lock, SubprocessEnv
from proj.paths import atomic_write, cache

# Run by the target interpreter: its version, the directories whose change invalidates the lock,
# and its installed distributions (first on sys.path wins, as at import time).
_FREEZE = r"""
import json, os, sys
from importlib import metadata
seen, lines = set(), []
for d in metadata.distributions():
    name = (d.metadata["Name"] or "").strip()
    norm = name.lower().replace("_", "-").replace(".", "-")
    if name and norm not in seen:
        seen.add(norm)
        lines.append(f"{name}=={d.version}")
dirs = [p for p in sys.path if p and os.path.isdir(p)]
print(json.dumps({"python": sys.executable, "version": ".".join(map(str, sys.version_info[:3])),
                  "dirs": dirs, "lock": "\n".join(sorted(lines, key=str.lower)) + "\n"}))
"""


class LocalEnv(SubprocessEnv):
    backend = "local"

    def __init__(self, lock: Lock, details: dict[str, Any], seconds: float, hit: bool) -> None:
        self.lock = lock
        self.details = details
        self.build_seconds = seconds
        self.cache_hit = hit
        digest = hashlib.sha256(f"local\0{os.uname().machine}\0{lock.text}".encode()).hexdigest()
        self.key = f"local-{digest[:16]}"

    def process_env(self, base: dict[str, str]) -> dict[str, str]:
        return base


class LocalBackend(Backend):
    """No :class:`BuiltBackend` lifecycle: nothing is built, the caller's interpreter is the env."""

    name = "local"

    def ensure(self, choice: EnvChoice, log: BuildLog, *, refresh: bool = False) -> LocalEnv:
        start = time.perf_counter()
        root = choice.project.root if choice.project is not None else Path.cwd()
        info, hit = _freeze(root, refresh)
        details = {"python": info["python"], "python_version": info["version"], "origin": choice.origin}
        return LocalEnv(Lock("pip-freeze", info["lock"]), details, time.perf_counter() - start, hit)


def _freeze(project_root: Path, refresh: bool) -> tuple[dict[str, Any], bool]:
    python = shutil.which("python") or shutil.which("python3") or sys.executable
    # What decides the interpreter behind `python` (a pyenv shim reads .python-version from the working
    # directory upwards) -- not the project's path, which changes for every run of a git source.
    ident = "\0".join([python, _version_file(project_root), *(os.environ.get(v, "") for v in
                                                              ("PYENV_VERSION", "VIRTUAL_ENV", "CONDA_PREFIX",
                                                               "PYTHONPATH"))])
    entry = cache().local_freeze(hashlib.sha256(ident.encode()).hexdigest()[:32])
    if not refresh:
        cached = _load_if_fresh(entry, python)
        if cached is not None:
            return cached, True
    out = subprocess.run([python, "-c", _FREEZE], cwd=project_root, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        return {"python": python, "version": "unknown", "dirs": [],
                "lock": f"# could not list packages: {out.stderr.strip()}\n"}, False
    info = json.loads(out.stdout)
    info["stamps"] = {d: _stamp(d) for d in info["dirs"] + [python]}
    try:
        atomic_write(entry, json.dumps(info))
    except OSError:
        pass  # caching is optional
    return info, False


def _version_file(start: Path) -> str:
    """The content of the nearest ``.python-version`` at or above ``start`` (empty when there is none)."""
    for folder in (start, *start.parents):
        try:
            return (folder / ".python-version").read_text().strip()
        except OSError:
            continue
    return ""


def _load_if_fresh(entry: Path, python: str) -> dict[str, Any] | None:
    try:
        info: dict[str, Any] = json.loads(entry.read_text())
    except (OSError, ValueError):
        return None
    stamps = info.get("stamps", {})
    if python not in stamps or any(_stamp(p) != s for p, s in stamps.items()):
        return None
    return info


def _stamp(path: str) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return -1
