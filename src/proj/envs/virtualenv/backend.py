"""The ``virtualenv`` backend: python_env.yaml -> uv-resolved pylock.toml -> a cached, atomically built venv.

Two caches make a warm run cheap. The *resolution* cache maps the spec's fingerprint (normalised
content, Python request, index settings) to the chosen interpreter, the lock and the env key, so the
resolver is not called again. The *env* cache (:mod:`proj.envs.cache`) maps that key, a hash of the
lock, interpreter version, platform and backend, to a built environment published by a marker.
"""
from __future__ import annotations

import hashlib
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from proj.envs.base import Backend, BuildLog, EnvChoice, Lock, SubprocessEnv
from proj.envs.cache import EnvCache, read_resolution, report_beside, write_resolution
from proj.envs.python_env import LOCK_NAME, PythonSpec, load_spec
from proj.envs.virtualenv.interpreters import find_interpreter
from proj.envs.uv import run_tool
from proj.envs.virtualenv.uvlock import compile_bytecode, compile_lock, install_lock
from proj.errors import EnvError
from proj.lockfiles.pylock import lock_packages, requires_python, with_spec_digest
from proj.paths import atomic_write

BACKEND = "virtualenv"
LOCK_FORMAT = "pylock.toml"


@dataclass(frozen=True)
class Resolution:
    """A spec resolved on this machine: the interpreter, the lock, and the env key they make."""

    python: str
    python_version: str
    python_source: str
    lock_text: str
    lock_origin: str  # "resolved with uv", "pylock.toml shipped with the project", "recorded lock"
    key: str


class VirtualEnv(SubprocessEnv):
    """A built virtualenv: commands run with its bin first on PATH, as after ``activate``."""

    backend = BACKEND

    def __init__(self, path: Path, res: Resolution, *, hit: bool, seconds: float, details: dict[str, Any]) -> None:
        self.path = path
        self.key = res.key
        self.lock = Lock(LOCK_FORMAT, res.lock_text)
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


class VirtualenvBackend(Backend):
    name = BACKEND

    def __init__(self, cache: EnvCache | None = None) -> None:
        self.cache = cache or EnvCache()
        self._specs: dict[tuple[Any, ...], PythonSpec] = {}

    def check(self, choice: EnvChoice) -> None:
        """Read and validate the spec, and make sure its Python exists, before any run is recorded."""

        spec = self.spec(choice)
        if _read_resolution(spec.fingerprint()) is None:
            find_interpreter(spec.python, str(spec.source or "default environment"))

    def ensure(self, choice: EnvChoice, log: BuildLog, *, refresh: bool = False) -> VirtualEnv:
        start = time.perf_counter()
        spec = self.spec(choice)
        if spec.stale_lock:  # every run, warm or cold, until the lock is rewritten
            log.write(f"warning: {spec.stale_lock}")
        res = None if refresh else _read_resolution(spec.fingerprint())
        path = self.cache.lookup(res.key, venv_health) if res is not None else None
        if res is not None and path is not None:
            self.cache.touch(res.key, path)  # the warm path: no resolver, no build, a few stat calls
            return self._env(res, choice, spec, path, hit=True, start=start)
        for warning in spec.warnings:
            log.write(f"warning: {warning}")
        if res is None:
            res = resolve(spec, log)
        return self._build(res, choice, spec, log, start, refresh=refresh)

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
        res = resolve(fresh, log, remember=False)
        target = spec.lock_path
        atomic_write(target, with_spec_digest(res.lock_text, spec.digest()))
        log.write(f"wrote {target} (python {res.python_version})")
        return target

    def from_lock(self, choice: EnvChoice, lock: Lock, log: BuildLog) -> VirtualEnv:
        """Rebuild exactly a recorded lock, on the Python it was resolved for when uv recorded it."""

        start = time.perf_counter()
        spec = self.spec(choice)
        recorded = requires_python(lock.text)
        request = recorded if recorded and recorded.count(".") == 2 else spec.python
        interp = find_interpreter(request, "the recorded lock")
        res = Resolution(interp.path, interp.version, interp.source, lock.text, "recorded lock",
                         env_key(lock.text, interp.version))
        return self._build(res, choice, spec, log, start, refresh=False)

    def spec(self, choice: EnvChoice) -> PythonSpec:
        """The normalised spec for a choice (read once per backend instance: check, then ensure)."""
        ident = (choice.spec_file, choice.project.root if choice.project is not None else None)
        if ident not in self._specs:
            project = choice.project
            conda = choice.spec_file is not None and (
                (project is not None and project.conda_env == choice.spec_file)
                or (choice.spec_file.name.startswith("conda") and choice.spec_file.suffix in (".yaml", ".yml")))
            self._specs[ident] = load_spec(choice.spec_file, project.root if project is not None else None,
                                           conda=conda)
        return self._specs[ident]

    def _build(self, res: Resolution, choice: EnvChoice, spec: PythonSpec, log: BuildLog, start: float, *,
               refresh: bool) -> VirtualEnv:
        with self.cache.slot(res.key, venv_health, refresh=refresh) as slot:
            hit = slot.hit
            if not hit:
                if slot.rebuild_reason:
                    log.write(f"rebuilding environment {res.key}: {slot.rebuild_reason}")
                build_venv(slot.path, res, spec, log)
                self.cache.publish(res.key, _metadata(res, spec))
                report_beside(slot, log)
        self.cache.touch(res.key, slot.path)
        return self._env(res, choice, spec, slot.path, hit=hit, start=start)

    def _env(self, res: Resolution, choice: EnvChoice, spec: PythonSpec, path: Path, *, hit: bool,
             start: float) -> VirtualEnv:
        details = {"python": res.python, "python_version": res.python_version, "python_source": res.python_source,
                   "python_request": spec.python, "origin": choice.origin, "lock_origin": res.lock_origin,
                   "spec_file": str(spec.source) if spec.source else None, "env_path": str(path)}
        return VirtualEnv(path, res, hit=hit, seconds=time.perf_counter() - start, details=details)


def resolve(spec: PythonSpec, log: BuildLog, *, remember: bool = True) -> Resolution:
    """Find the interpreter and produce the lock (the project's own, or uv's resolution); cache it."""

    interp = find_interpreter(spec.python, str(spec.source or "default environment"))
    if spec.shipped_lock is not None:
        text, origin = spec.shipped_lock, f"{LOCK_NAME} shipped with the project"
        log.write(f"using {spec.lock_path} (python {interp.version} at {interp.path})")
    else:
        log.write(f"resolving {len(spec.requirements)} requirement(s) of {spec.label} "
                  f"for python {interp.version} ({interp.path})")
        text, origin = compile_lock(list(spec.requirements), interp.path, log, spec.label), "resolved with uv"
    res = Resolution(interp.path, interp.version, interp.source, text, origin, env_key(text, interp.version))
    if remember:
        _write_resolution(spec.fingerprint(), res)
    return res


def build_venv(path: Path, res: Resolution, spec: PythonSpec, log: BuildLog) -> None:
    """Create the virtualenv in ``path`` with the found interpreter and install the lock into it."""

    log.write(f"creating virtualenv {path.name} with python {res.python_version}")
    run_tool([sys.executable, "-m", "virtualenv", "--no-download", "--no-seed", "--no-periodic-update",
              "--quiet", "-p", res.python, str(path)], log, "creating the virtualenv", cwd=path.parent)
    lock_path = path / LOCK_NAME
    lock_path.write_text(res.lock_text, encoding="utf-8")
    packages = lock_packages(res.lock_text)
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


def _metadata(res: Resolution, spec: PythonSpec) -> dict[str, Any]:
    return {"backend": BACKEND, "python": res.python, "python_version": res.python_version,
            "lock_format": LOCK_FORMAT, "lock_sha256": hashlib.sha256(res.lock_text.encode()).hexdigest(),
            "spec_file": str(spec.source) if spec.source else None, "packages": len(lock_packages(res.lock_text))}


def _read_resolution(fingerprint: str) -> Resolution | None:
    """The cached resolution for a spec, if its interpreter is still there."""
    data = read_resolution(BACKEND, fingerprint)
    try:
        res = Resolution(**data) if data is not None else None
    except TypeError:
        return None
    return res if res is not None and os.access(res.python, os.X_OK) else None


def _write_resolution(fingerprint: str, res: Resolution) -> None:
    write_resolution(BACKEND, fingerprint, asdict(res))
