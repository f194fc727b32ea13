"""The ``conda`` backend: conda.yaml solved and installed with py-rattler, locked as conda-lock.yml.

Warm path (no rattler, no conda-lock import): the spec's fingerprint finds the cached resolution,
whose lock hash is the env key; the published env's metadata carries the activation delta.
Cold path: solve -> (pip: resolve with uv in a scratch prefix) -> render the lock -> install the
lock into the cache slot, verifying every package file -> activation -> publish.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from proj.envs.base import Backend, BuildLog, EnvChoice, Lock, SubprocessEnv
from proj.envs.cache import EnvCache, read_resolution, report_beside, resolution_path, write_resolution
from proj.envs.conda import activation
from proj.envs.conda import pip as conda_pip
from proj.envs.conda.channels import channel_urls
from proj.envs.conda.solve import check_match_specs, frontend_path, install, solve
from proj.envs.conda.spec import CondaSpec, fingerprint, load_spec, spec_digest, spec_from_data
from proj.errors import EnvError
from proj.lockfiles import conda_lock
from proj.lockfiles.conda_lock import LOCK_FORMAT, LOCK_NAME, recorded_spec_digest
from proj.paths import atomic_write, cache
from proj.platforms import current_platform
from proj.project.schema import load_validated


class CondaEnv(SubprocessEnv):
    backend = "conda"

    def __init__(self, key: str, prefix: Path, lock: Lock, delta: activation.Delta, hit: bool, seconds: float,
                 details: dict[str, Any]) -> None:
        self.key, self.prefix, self.lock, self.delta = key, prefix, lock, delta
        self.cache_hit, self.build_seconds, self.details = hit, seconds, details

    def home(self) -> Path:
        return self.prefix

    def process_env(self, base: dict[str, str]) -> dict[str, str]:
        return activation.apply(self.delta, base)


@dataclass
class _Target:
    """What to build: the lock text and where it came from (a shipped file, a cached or new solve)."""

    spec: CondaSpec
    lock_text: str
    source: str  # "conda-lock.yml", "cached resolution", "solved"
    platform: str

    @property
    def key(self) -> str:
        return env_key(self.lock_text, self.platform, self.spec.variables)


BACKEND = "conda"


class CondaBackend(Backend):
    name = BACKEND

    def check(self, choice: EnvChoice) -> None:
        """Spec, channel mapping, match specs and frontend: what can fail before a run is recorded."""
        spec = spec_for(choice)
        urls = _channel_urls(spec)  # a bad mirror setting fails before any run exists
        if not resolution_path(BACKEND, fingerprint(spec, urls, current_platform())).is_file():
            # Cold path only: a cached resolution means the spec parsed and solved, and rattler is slow to import.
            check_match_specs(spec)
        frontend = choice.options.get("conda_frontend")
        if frontend:
            frontend_path(frontend)

    def ensure(self, choice: EnvChoice, log: BuildLog, *, refresh: bool = False) -> CondaEnv:
        start = time.perf_counter()
        spec = spec_for(choice)
        target = _shipped_lock(spec, log) or (None if refresh else _cached_resolution(spec))
        if target is not None and not refresh:
            env = _warm(target, start)
            if env is not None:
                return env
        if target is None:
            target = resolve(spec, log)
        return build(target, log, start, choice.options.get("conda_frontend"), refresh=refresh)

    def write_lock(self, choice: EnvChoice, log: BuildLog) -> Path:
        spec = spec_for(choice)
        target = resolve(spec, log)
        out = spec.root / LOCK_NAME
        atomic_write(out, target.lock_text)
        log.write(f"wrote {out}")
        return out

    def from_lock(self, choice: EnvChoice, lock: Lock, log: BuildLog) -> CondaEnv:
        if lock.format != LOCK_FORMAT:
            raise EnvError(f"the conda backend cannot rebuild from a {lock.format!r} lock (expected {LOCK_FORMAT})")
        start = time.perf_counter()
        target = _Target(spec_for(choice), lock.text, "recorded lock", current_platform())
        return _warm(target, start) or build(target, log, start, choice.options.get("conda_frontend"))


def spec_for(choice: EnvChoice) -> CondaSpec:
    """The conda spec a choice names; a python_env.yaml or no file is translated as MLflow does."""

    path = choice.spec_file
    if path is not None and not _is_python_env(path):
        return load_spec(path)
    root = choice.project.root if choice.project is not None else Path.cwd()
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    pip: list[str] = []
    if path is not None:
        data = load_validated(path, "python_env")[0] or {}  # the virtualenv backend's checks and messages
        python = str(data.get("python", python))
        pip = [*map(str, data.get("build_dependencies") or []), *map(str, data.get("dependencies") or [])]
    deps: list[Any] = [f"python={python}"] + ([{"pip": pip}] if pip else [])
    return spec_from_data(path or root / "conda.yaml", {"channels": ["conda-forge"], "dependencies": deps})


def _is_python_env(path: Path) -> bool:
    return "python_env" in path.name


def env_key(lock_text: str, platform: str, variables: tuple[tuple[str, str], ...] = ()) -> str:
    """Lock + platform (+ conda.yaml ``variables``, which live in the env but not in the lock)."""
    extra = json.dumps(variables) if variables else ""
    digest = hashlib.sha256(f"conda\0{platform}\0{lock_text}\0{extra}".encode()).hexdigest()
    return f"conda-{digest[:24]}"


def _channel_urls(spec: CondaSpec) -> list[tuple[str, str]]:
    return channel_urls(list(spec.channels), spec.root)


def _shipped_lock(spec: CondaSpec, log: BuildLog) -> _Target | None:
    """A project that ships conda-lock.yml next to its conda.yaml is installed from it, unsolved.

    The lock wins (that is what locking means), but a lock written for a different conda.yaml is
    called out, since the user probably edited the spec and forgot to re-lock.
    """

    path = spec.root / LOCK_NAME
    if not path.is_file():
        return None
    text = path.read_text(encoding="utf-8")
    recorded = recorded_spec_digest(text)
    if recorded is not None and recorded != spec_digest(spec):
        log.write(f"warning: {path} was written for a different {spec.path.name}; installing the lock as is "
                  f"(run `proj env lock` to re-solve)")
    return _Target(spec, text, str(path), current_platform())


def _cached_resolution(spec: CondaSpec) -> _Target | None:
    platform = current_platform()
    data = read_resolution(BACKEND, fingerprint(spec, _channel_urls(spec), platform))
    if data is None or not isinstance(data.get("lock"), str):
        return None
    return _Target(spec, data["lock"], "cached resolution", platform)


def resolve(spec: CondaSpec, log: BuildLog) -> _Target:
    """Solve the spec (conda part with rattler, pip part with uv) and cache the lock by fingerprint."""

    platform = current_platform()
    urls = _channel_urls(spec)
    records = solve(spec, urls, platform, log)
    pins = _resolve_pip(spec, records, platform, log) if spec.pip else []
    fp = fingerprint(spec, urls, platform)
    resolved = conda_lock.Resolved(records, pins)
    text = conda_lock.render(resolved, spec.path, list(spec.channels), platform, fp, spec_digest(spec))
    write_resolution(BACKEND, fp, {"lock": text, "spec": str(spec.path)})
    return _Target(spec, text, "solved", platform)


def _resolve_pip(spec: CondaSpec, records: list[Any], platform: str, log: BuildLog) -> list[Any]:
    """Pin the pip: part against the env's own Python, found in a scratch install of the conda part."""

    if not any(r.name.normalized == "python" for r in records):
        raise EnvError(f"{spec.path}: a pip: sub-list needs python among the conda dependencies")
    scratch = cache().conda_scratch / uuid.uuid4().hex
    try:
        install(records, scratch, log)
        provided = {conda_pip.normalise(r.name.normalized) for r in records}
        return conda_pip.resolve(spec.pip, scratch / "bin" / "python", spec.root, platform, provided, log)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _health(path: Path) -> str | None:
    return None if (path / "conda-meta").is_dir() else "its conda-meta directory is missing"


def _warm(target: _Target, start: float) -> CondaEnv | None:
    """The published env for this lock, or None; reads only JSON (no rattler, no conda-lock)."""
    cache = EnvCache()
    key = target.key
    path = cache.lookup(key, _health)
    if path is None:
        return None
    meta = cache.metadata(key, path)
    if "activation" not in meta:
        return None
    cache.touch(key, path)
    return _env(key, path, target, meta, hit=True, seconds=time.perf_counter() - start)


def build(target: _Target, log: BuildLog, start: float, frontend: str | None, *, refresh: bool = False) -> CondaEnv:
    """Install the lock into its cache slot (published only when complete)."""

    cache = EnvCache()
    with cache.slot(target.key, _health, refresh=refresh) as slot:  # a leased env is rebuilt beside, never removed
        if slot.hit:
            return _env(target.key, slot.path, target, cache.metadata(target.key, slot.path), True,
                        time.perf_counter() - start)
        if slot.rebuild_reason:
            log.write(f"rebuilding {target.key}: {slot.rebuild_reason}")
        resolved = conda_lock.parse(target.lock_text, target.platform, target.source)
        install(resolved.records, slot.path, log, frontend)
        _write_state(target.spec, slot.path)
        python = slot.path / "bin" / "python"
        conda_pip.install(resolved.pins, python, target.spec.root, log)
        meta = _metadata(target, resolved, slot.path, frontend)
        cache.publish(target.key, meta)
        report_beside(slot, log)
    cache.touch(target.key, slot.path)  # counts this run as a use, as the warm path does
    return _env(target.key, slot.path, target, cache.metadata(target.key, slot.path), False,
                time.perf_counter() - start)


def _write_state(spec: CondaSpec, prefix: Path) -> None:
    """conda.yaml ``variables`` live in conda-meta/state, where conda (and rattler's activation) read them."""
    if spec.variables:
        state = {"env_vars": dict(spec.variables)}
        atomic_write(prefix / "conda-meta" / "state", json.dumps(state, indent=2))


def _metadata(target: _Target, resolved: Any, prefix: Path, frontend: str | None) -> dict[str, Any]:
    python = next((r for r in resolved.records if r.name.normalized == "python"), None)
    return {
        "backend": "conda",
        "platform": target.platform,
        "spec": str(target.spec.path),
        "lock_source": target.source,
        "lock_format": LOCK_FORMAT,
        "lock": target.lock_text,
        "python": str(prefix / "bin" / "python") if python is not None else None,
        "python_version": str(python.version) if python is not None else None,
        "packages": [f"{r.name.normalized}={r.version}={r.build}" for r in resolved.records]
                    + [f"pip:{p.name}=={p.version}" for p in resolved.pins],
        "installer": frontend or "rattler",
        "activation": activation.compute(prefix),
    }


def _env(key: str, prefix: Path, target: _Target, meta: dict[str, Any], hit: bool, seconds: float) -> CondaEnv:
    details = {"prefix": str(prefix), "platform": target.platform, "lock_source": target.source,
               "packages": meta.get("packages", []), "installer": meta.get("installer", "rattler")}
    return CondaEnv(key, prefix, Lock(LOCK_FORMAT, target.lock_text), meta.get("activation", {}), hit, seconds,
                    details)
