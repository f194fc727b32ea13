"""The ``virtualenv`` backend: python_env.yaml -> uv-resolved pylock.toml -> a cached, atomically built venv.

Two caches make a warm run cheap. The *resolution* cache maps the spec's fingerprint (normalised
content, Python request, index settings) to the chosen interpreter and the lock, so the resolver is
not called again. The *env* cache (:mod:`proj.envs.cache`) maps that key, a hash of the
lock, interpreter version, platform and backend, to a built environment published by a marker.
"""
from __future__ import annotations

import hashlib
import os
import platform
import sys
from pathlib import Path
from typing import Any

from proj.envs.base import BuildLog, BuiltBackend, EnvChoice, Lock, Resolved, SubprocessEnv
from proj.envs.python_env import LOCK_NAME, PythonSpec, load_spec
from proj.envs.uv import run_tool
from proj.envs.virtualenv.interpreters import Interpreter, find_interpreter
from proj.envs.virtualenv.uvlock import compile_bytecode, compile_lock, install_lock
from proj.errors import EnvError
from proj.lockfiles.pylock import lock_packages, requires_python, with_spec_digest
from proj.paths import atomic_write

BACKEND = "virtualenv"
LOCK_FORMAT = "pylock.toml"


class VirtualEnv(SubprocessEnv):
    """A built virtualenv: commands run with its bin first on PATH, as after ``activate``."""

    backend = BACKEND

    def __init__(self, path: Path, key: str, lock: Lock, *, hit: bool, seconds: float,
                 details: dict[str, Any]) -> None:
        self.path = path
        self.key = key
        self.lock = lock
        self.cache_hit = hit
        self.build_seconds = seconds
        self.details = details

    def home(self) -> Path:
        return self.path

    def process_env(self, base: dict[str, str]) -> dict[str, str]:
        env = dict(base)
        env.pop("PYTHONHOME", None)  # would point the venv's python at another installation's stdlib
        env["VIRTUAL_ENV"] = str(self.path)
        env["PATH"] = str(self.path / "bin") + (os.pathsep + base["PATH"] if base.get("PATH") else "")
        return env


class VirtualenvBackend(BuiltBackend[PythonSpec]):
    """The steps of the env lifecycle (:class:`BuiltBackend`) for a uv-locked virtualenv."""

    name = BACKEND
    lock_format = LOCK_FORMAT

    def check_spec(self, choice: EnvChoice) -> None:
        """Read and validate the spec, and make sure its Python exists, before any run is recorded."""
        spec = self.spec(choice)
        if self.cached_resolution(spec) is None:
            find_interpreter(spec.python, str(spec.source or "default environment"))

    def load_spec(self, choice: EnvChoice) -> PythonSpec:
        project = choice.project
        conda = choice.spec_file is not None and (
            (project is not None and project.conda_env == choice.spec_file)
            or (choice.spec_file.name.startswith("conda") and choice.spec_file.suffix in (".yaml", ".yml")))
        return load_spec(choice.spec_file, project.root if project is not None else None, conda=conda)

    def fingerprint(self, spec: PythonSpec) -> str:
        return spec.fingerprint()

    def warn(self, spec: PythonSpec, log: BuildLog, *, cold: bool) -> None:
        if spec.stale_lock and not cold:  # every run, warm or cold, until the lock is rewritten
            log.warn(spec.stale_lock)
        for warning in spec.warnings if cold else ():
            log.warn(warning)

    def usable(self, resolved: Resolved) -> bool:
        return os.access(resolved.facts.get("python", ""), os.X_OK)  # the interpreter may have been removed

    def resolve(self, spec: PythonSpec, log: BuildLog) -> Resolved:
        return resolve(spec, log)

    def recorded(self, spec: PythonSpec, lock: Lock) -> Resolved:
        """A recorded lock, on the Python it was resolved for when uv recorded it."""
        recorded = requires_python(lock.text)
        request = recorded if recorded and recorded.count(".") == 2 else spec.python
        interp = find_interpreter(request, "the recorded lock")
        return Resolved(Lock(LOCK_FORMAT, lock.text), "recorded lock", _facts(interp))

    def key(self, spec: PythonSpec, resolved: Resolved) -> str:
        return env_key(resolved.lock.text, resolved.facts["python_version"])

    def build(self, spec: PythonSpec, resolved: Resolved, dest: Path, log: BuildLog) -> dict[str, Any]:
        build_venv(dest, resolved, spec, log)
        return _metadata(resolved, spec)

    def health(self, path: Path) -> str | None:
        return venv_health(path)

    def make_env(self, choice: EnvChoice, spec: PythonSpec, resolved: Resolved, key: str, path: Path, *,
                 hit: bool, seconds: float) -> VirtualEnv:
        facts = resolved.facts
        details = {"python": facts["python"], "python_version": facts["python_version"],
                   "python_source": facts["python_source"], "python_request": spec.python, "origin": choice.origin,
                   "lock_origin": resolved.origin, "spec_file": str(spec.source) if spec.source else None,
                   "env_path": str(path)}
        return VirtualEnv(path, key, resolved.lock, hit=hit, seconds=seconds, details=details)

    def write_lock(self, choice: EnvChoice, log: BuildLog) -> Path:
        """Resolve afresh (ignoring any shipped lock) and write pylock.toml next to the env file.

        The lock records the spec's digest, so a later edit of the spec is noticed instead of the
        old lock being installed silently.
        """
        spec = self.spec(choice)
        if spec.source is None or spec.lock_path is None:
            root = choice.project.root if choice.project is not None else Path.cwd()
            raise EnvError(f"nothing to lock: no python_env.yaml (or conda.yaml) in {root}; "
                           f"add one listing the dependencies, then run `proj env lock` again")
        fresh = PythonSpec(spec.python, spec.requirements, spec.source, None, spec.warnings)
        res = resolve(fresh, log)  # not remembered: the fresh spec has no shipped lock, the real one does
        target = spec.lock_path
        atomic_write(target, with_spec_digest(res.lock.text, spec.digest()))
        log.write(f"wrote {target} (python {res.facts['python_version']})")
        return target


def resolve(spec: PythonSpec, log: BuildLog) -> Resolved:
    """Find the interpreter and produce the lock (the project's own, or uv's resolution)."""
    interp = find_interpreter(spec.python, str(spec.source or "default environment"))
    if spec.shipped_lock is not None:
        text, origin = spec.shipped_lock, f"{LOCK_NAME} shipped with the project"
        log.write(f"using {spec.lock_path} (python {interp.version} at {interp.path})")
    else:
        log.write(f"resolving {len(spec.requirements)} requirement(s) of {spec.label} "
                  f"for python {interp.version} ({interp.path})")
        text, origin = compile_lock(list(spec.requirements), interp.path, log, spec.label), "resolved with uv"
    return Resolved(Lock(LOCK_FORMAT, text), origin, _facts(interp))


def _facts(interp: Interpreter) -> dict[str, str]:
    return {"python": interp.path, "python_version": interp.version, "python_source": interp.source}


def build_venv(path: Path, res: Resolved, spec: PythonSpec, log: BuildLog) -> None:
    """Create the virtualenv in ``path`` with the found interpreter and install the lock into it."""
    log.write(f"creating virtualenv {path.name} with python {res.facts['python_version']}")
    run_tool([sys.executable, "-m", "virtualenv", "--no-download", "--no-seed", "--no-periodic-update",
              "--quiet", "-p", res.facts["python"], str(path)], log, "creating the virtualenv", cwd=path.parent)
    lock_path = path / LOCK_NAME
    lock_path.write_text(res.lock.text, encoding="utf-8")
    packages = lock_packages(res.lock.text)
    if packages:
        log.write(f"installing {len(packages)} locked package(s)")
        install_lock(lock_path, path / "bin" / "python", log, spec.label)
        compile_bytecode(path / "bin" / "python", log)


def venv_health(path: Path) -> str | None:
    """Why a published env cannot be used (None when it looks whole). Only stat calls: warm-path cheap."""
    if not (path / "pyvenv.cfg").is_file():
        return "pyvenv.cfg is missing"
    if not os.path.exists(path / "bin" / "python"):
        return "bin/python is missing (or the interpreter it points to is gone)"
    return None


def env_key(lock_text: str, python_version: str) -> str:
    """The env cache key: the resolved lock on this interpreter version, platform and backend."""
    ident = "\0".join([BACKEND, sys.platform, platform.machine(), python_version, lock_text])
    return "venv-" + hashlib.sha256(ident.encode()).hexdigest()[:24]


def _metadata(res: Resolved, spec: PythonSpec) -> dict[str, Any]:
    facts = res.facts
    return {"backend": BACKEND, "python": facts["python"], "python_version": facts["python_version"],
            "lock_format": LOCK_FORMAT, "lock_sha256": res.lock.sha256,
            "spec_file": str(spec.source) if spec.source else None, "packages": len(lock_packages(res.lock.text))}
