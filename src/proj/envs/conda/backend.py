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
import uuid
from pathlib import Path
from typing import Any

from proj.envs.base import BuildLog, BuiltBackend, Env, EnvChoice, Lock, Resolved, SubprocessEnv
from proj.envs.cache import resolution_path
from proj.envs.conda import activation
from proj.envs.conda import pip as conda_pip
from proj.envs.conda.channels import channel_urls
from proj.envs.conda.solve import check_match_specs, frontend_path, install, solve
from proj.envs.conda.spec import CondaSpec, fingerprint, load_spec, spec_digest, spec_from_data
from proj.errors import EnvError
from proj.lockfiles import conda_lock
from proj.lockfiles.base import normalise_name
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


BACKEND = "conda"


class CondaBackend(BuiltBackend[CondaSpec]):
    """The steps of the env lifecycle (:class:`BuiltBackend`) for a rattler-installed conda env."""

    name = BACKEND
    lock_format = LOCK_FORMAT

    def __init__(self) -> None:
        super().__init__()
        self._frontend: str | None = None  # --conda-frontend / options: what the build step installs with

    def check_spec(self, choice: EnvChoice) -> None:
        """Spec, channel mapping, match specs and frontend: what can fail before a run is recorded."""
        spec = self.spec(choice)
        urls = _channel_urls(spec)  # a bad mirror setting fails before any run exists
        if not resolution_path(BACKEND, fingerprint(spec, urls, current_platform())).is_file():
            # Cold path only: a cached resolution means the spec parsed and solved, and rattler is slow to import.
            check_match_specs(spec)
        frontend = choice.options.get("conda_frontend")
        if frontend:
            frontend_path(frontend)

    def ensure(self, choice: EnvChoice, log: BuildLog, *, refresh: bool = False) -> Env:
        self._frontend = choice.options.get("conda_frontend")
        return super().ensure(choice, log, refresh=refresh)

    def from_lock(self, choice: EnvChoice, lock: Lock, log: BuildLog) -> Env:
        self._frontend = choice.options.get("conda_frontend")
        return super().from_lock(choice, lock, log)

    def load_spec(self, choice: EnvChoice) -> CondaSpec:
        return spec_for(choice)

    def fingerprint(self, spec: CondaSpec) -> str:
        return fingerprint(spec, _channel_urls(spec), current_platform())

    def pinned(self, spec: CondaSpec, log: BuildLog) -> Resolved | None:
        return _shipped_lock(spec, log)

    def resolve(self, spec: CondaSpec, log: BuildLog) -> Resolved:
        return resolve(spec, log)

    def recorded(self, spec: CondaSpec, lock: Lock) -> Resolved:
        resolved = super().recorded(spec, lock)
        return Resolved(resolved.lock, resolved.origin, {"platform": current_platform()})

    def key(self, spec: CondaSpec, resolved: Resolved) -> str:
        return env_key(resolved.lock.text, _platform(resolved), spec.variables)

    def build(self, spec: CondaSpec, resolved: Resolved, dest: Path, log: BuildLog) -> dict[str, Any]:
        """Install the lock into ``dest``, verifying every package file; then the pip part and activation."""
        parsed = conda_lock.parse(resolved.lock.text, _platform(resolved), resolved.origin)
        install(parsed.records, dest, log, self._frontend)
        _write_state(spec, dest)
        conda_pip.install(parsed.pins, dest / "bin" / "python", spec.root, log)
        return _metadata(spec, resolved, parsed, dest, self._frontend)

    def health(self, path: Path) -> str | None:
        if not (path / "conda-meta").is_dir():
            return "its conda-meta directory is missing"
        if "activation" not in self.cache.metadata(path.name, path):
            return "its metadata has no activation record (built by an older proj)"
        return None

    def make_env(self, choice: EnvChoice, spec: CondaSpec, resolved: Resolved, key: str, path: Path, *,
                 hit: bool, seconds: float) -> CondaEnv:
        meta = self.cache.metadata(key, path)
        details = {"prefix": str(path), "platform": _platform(resolved), "lock_source": resolved.origin,
                   "packages": meta.get("packages", []), "installer": meta.get("installer", "rattler")}
        return CondaEnv(key, path, resolved.lock, meta.get("activation", {}), hit, seconds, details)

    def write_lock(self, choice: EnvChoice, log: BuildLog) -> Path:
        spec = self.spec(choice)
        resolved = self.resolve_and_remember(spec, log)
        out = spec.root / LOCK_NAME
        atomic_write(out, resolved.lock.text)
        log.write(f"wrote {out}")
        return out


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


def _shipped_lock(spec: CondaSpec, log: BuildLog) -> Resolved | None:
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
        log.warn(f"{path} was written for a different {spec.path.name}; installing the lock as is "
                 f"(run `proj env lock` to re-solve)")
    return Resolved(Lock(LOCK_FORMAT, text), str(path), {"platform": current_platform()})


def resolve(spec: CondaSpec, log: BuildLog) -> Resolved:
    """Solve the spec: the conda part with rattler, the pip part with uv."""

    platform = current_platform()
    urls = _channel_urls(spec)
    records = solve(spec, urls, platform, log)
    pins = _resolve_pip(spec, records, platform, log) if spec.pip else []
    fp = fingerprint(spec, urls, platform)
    resolved = conda_lock.Resolved(records, pins)
    text = conda_lock.render(resolved, spec.path, list(spec.channels), platform, fp, spec_digest(spec))
    return Resolved(Lock(LOCK_FORMAT, text), "solved", {"platform": platform})


def _resolve_pip(spec: CondaSpec, records: list[Any], platform: str, log: BuildLog) -> list[Any]:
    """Pin the pip: part against the env's own Python, found in a scratch install of the conda part."""

    if not any(r.name.normalized == "python" for r in records):
        raise EnvError(f"{spec.path}: a pip: sub-list needs python among the conda dependencies")
    scratch = cache().conda_scratch / uuid.uuid4().hex
    try:
        install(records, scratch, log)
        provided = {normalise_name(r.name.normalized) for r in records}
        return conda_pip.resolve(spec.pip, scratch / "bin" / "python", spec.root, platform, provided, log)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _platform(resolved: Resolved) -> str:
    return resolved.facts.get("platform") or current_platform()


def _write_state(spec: CondaSpec, prefix: Path) -> None:
    """conda.yaml ``variables`` live in conda-meta/state, where conda (and rattler's activation) read them."""
    if spec.variables:
        state = {"env_vars": dict(spec.variables)}
        atomic_write(prefix / "conda-meta" / "state", json.dumps(state, indent=2))


def _metadata(spec: CondaSpec, resolved: Resolved, parsed: Any, prefix: Path, frontend: str | None) -> dict[str, Any]:
    python = next((r for r in parsed.records if r.name.normalized == "python"), None)
    return {
        "backend": "conda",
        "platform": _platform(resolved),
        "spec": str(spec.path),
        "lock_source": resolved.origin,
        "lock_format": LOCK_FORMAT,
        "lock": resolved.lock.text,
        "python": str(prefix / "bin" / "python") if python is not None else None,
        "python_version": str(python.version) if python is not None else None,
        "packages": [f"{r.name.normalized}={r.version}={r.build}" for r in parsed.records]
                    + [f"pip:{p.name}=={p.version}" for p in parsed.pins],
        "installer": frontend or "rattler",
        "activation": activation.compute(prefix),
    }
