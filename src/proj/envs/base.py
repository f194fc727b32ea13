"""The environment interface every backend implements, and the data that flows through it.

A backend turns an :class:`EnvChoice` (which backend, which spec file, and why) into a built
:class:`Env`. For backends that build a directory, :class:`BuiltBackend` holds that lifecycle once
(resolution cache -> ready check -> build slot -> build -> publish; "rebuilding because ..."; a
refresh beside a leased env) and the backend supplies its steps: load_spec, resolve, key, build,
health and make_env.
"""
from __future__ import annotations

import hashlib
import os
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Generic, TypeVar

from proj.envs.cache import EnvCache, Slot, read_resolution, write_resolution
from proj.errors import EnvError
from proj.execution.process import OutputSink, run_process, shell_argv
from proj.project.spec import Project
from proj.redact import mask_url
from proj.report import Reporter


@dataclass(frozen=True)
class EnvChoice:
    """Which backend runs the project, the spec file it reads, and where that choice came from."""

    backend: str
    origin: str  # e.g. "--env-manager", "python_env in MLproject", "python_env.yaml", "default"
    spec_file: Path | None
    project: Project
    options: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        where = f" ({self.spec_file.name})" if self.spec_file else ""
        return f"{self.backend}{where}, from {self.origin}"


@dataclass(frozen=True)
class Lock:
    """The exact resolved environment: a format name and the lock file text."""

    format: str  # e.g. "pylock.toml", "requirements.txt", "conda-lock.yml", "docker-image", "pip-freeze"
    text: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()


@dataclass(frozen=True)
class Invocation:
    """What to run: a shell command in a directory, with extra variables, paths and mounts."""

    command: str
    cwd: Path
    env: dict[str, str]  # PROJ_* variables and the like, added on top of the backend's environment
    pythonpath: tuple[Path, ...] = ()  # directories holding proj's dependency-free client module
    path_params: dict[str, Path] = field(default_factory=dict)  # name -> host path (docker mounts them)
    mounts: dict[Path, str] = field(default_factory=dict)  # host dir -> "rw"/"ro" that must be visible
    # Called with the child's pid (= its process group) once it runs, so a reaper can stop it later.
    on_start: Callable[[int], None] | None = field(default=None, compare=False)


@dataclass
class BuildLog:
    """Where a build writes its output: the run's env-build.log plus a progress line on the console."""

    path: Path | None
    echo: Callable[[str], None] = lambda line: None
    reporter: Reporter | None = None  # warnings go here as data; without one they are echoed as "warning: ..."

    def warn(self, message: str) -> None:
        """Something that may be a mistake: kept in the build log, told through the reporter (never hidden)."""
        self._to_file(f"warning: {message}")
        if self.reporter is not None:
            self.reporter.warn(message)
        else:
            self.echo(mask_url(f"warning: {message}"))

    def write(self, text: str) -> None:
        text = mask_url(text)  # tools echo requirement lines as given: `pkg @ https://user:token@host/x.whl`
        self._to_file(text)
        if not text.startswith("$ "):  # the exact tool command lines are for the log, not the terminal
            self.echo(text.rstrip("\n"))

    def _to_file(self, text: str) -> None:
        text = mask_url(text)
        if self.path is not None:
            with open(self.path, "a", encoding="utf-8", errors="replace") as fh:
                fh.write(text if text.endswith("\n") else text + "\n")


class Env(ABC):
    """A ready environment. Subprocess-based backends only need :meth:`process_env` and ``argv``."""

    backend: str
    key: str
    cache_hit: bool
    build_seconds: float
    lock: Lock
    details: dict[str, Any]

    def describe(self) -> dict[str, Any]:
        """What the run record stores about this environment (the lock is stored separately)."""
        return {
            "backend": self.backend,
            "key": self.key,
            "cache_hit": self.cache_hit,
            "build_seconds": round(self.build_seconds, 3),
            "lock_format": self.lock.format,
            "lock_sha256": self.lock.sha256,
            **self.details,
        }

    def home(self) -> Path | None:
        """The env cache directory this env runs from (leased by the run, so no rebuild removes it)."""
        return None

    @abstractmethod
    def execute(self, invocation: Invocation, sink: OutputSink) -> int:
        """Run the command to completion, streaming output to ``sink``; return its exit code.

        On KeyboardInterrupt the whole process tree (or container) must be stopped before re-raising.
        """


class SubprocessEnv(Env):
    """An environment that runs the command as a local process tree (local, virtualenv, conda)."""

    def argv(self, command: str) -> list[str]:
        return shell_argv(command)

    @abstractmethod
    def process_env(self, base: dict[str, str]) -> dict[str, str]:
        """The child's environment variables, derived from ``base`` (the caller's environment)."""

    def execute(self, invocation: Invocation, sink: OutputSink) -> int:
        env = self.process_env(dict(os.environ))
        env.update(invocation.env)
        if invocation.pythonpath:
            extra = os.pathsep.join(str(p) for p in invocation.pythonpath)
            env["PYTHONPATH"] = extra + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        return run_process(self.argv(invocation.command), cwd=invocation.cwd, env=env, sink=sink,
                           on_start=invocation.on_start)


class Backend(ABC):
    """One kind of environment. Instances are cheap; heavy imports happen inside the methods."""

    name: str

    def check_spec(self, choice: EnvChoice) -> None:
        """Mistakes in the project's own files (a bad spec, a missing Dockerfile): ``proj validate`` and
        ``proj run`` both report them as the project's (exit 2)."""
        return None  # an optional hook, not abstract: a backend with no spec file (local) keeps this

    def check_host(self, choice: EnvChoice) -> None:
        """What this machine and the command line must provide (a daemon, host variables, options)."""
        return None  # optional, as check_spec

    def check(self, choice: EnvChoice) -> None:
        """Everything that can fail before a run record exists, without building."""
        self.check_spec(choice)
        self.check_host(choice)

    @abstractmethod
    def ensure(self, choice: EnvChoice, log: BuildLog, *, refresh: bool = False) -> Env:
        """Return a ready environment: reuse the cached one for this lock, or build it atomically."""

    def write_lock(self, choice: EnvChoice, log: BuildLog) -> Path:
        """Resolve the project's spec and write its lock next to the env file (``proj env lock``)."""
        raise EnvError(f"the {self.name} backend has no lock file to write")

    def from_lock(self, choice: EnvChoice, lock: Lock, log: BuildLog) -> Env:
        """Rebuild exactly the environment a recorded lock describes (used by ``proj reproduce``)."""
        raise EnvError(f"the {self.name} backend cannot rebuild an environment from a recorded lock")


@dataclass(frozen=True)
class Resolved:
    """A spec resolved on this machine: the lock, where it came from, and the facts it was resolved for
    (e.g. the interpreter) that the env key and the build need besides the lock text."""

    lock: Lock
    origin: str  # "resolved with uv", "solved", "pylock.toml shipped with the project", "recorded lock", ...
    facts: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"format": self.lock.format, "text": self.lock.text, "origin": self.origin, "facts": self.facts}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Resolved | None:
        try:
            facts = data.get("facts") or {}
            return cls(Lock(str(data["format"]), str(data["text"])), str(data["origin"]),
                       {str(k): str(v) for k, v in facts.items()})
        except (KeyError, TypeError, AttributeError):
            return None  # an entry written by another version of proj: resolve again


S = TypeVar("S")  # the backend's normalised spec


class BuiltBackend(Backend, Generic[S]):
    """A backend whose environments are directories in the env cache: the lifecycle, concrete, once.

    ``ensure``: the spec's cached resolution (keyed by its fingerprint) -> the published env for its key
    (the warm path: no resolver, no lock) -> else resolve, take the key's build slot, build into it,
    publish. A broken env is rebuilt with its reason said; a refresh of an env a running run leased
    builds beside it (:meth:`EnvCache.slot`). ``from_lock`` is the same path from a given lock.
    """

    lock_format: str

    def __init__(self, cache: EnvCache | None = None) -> None:
        self.cache = cache or EnvCache()
        self._specs: dict[tuple[Any, ...], S] = {}

    # -- the steps a backend supplies ------------------------------------------------------------

    @abstractmethod
    def load_spec(self, choice: EnvChoice) -> S:
        """Read and normalise the spec file the choice names (called once per choice and instance)."""

    @abstractmethod
    def fingerprint(self, spec: S) -> str:
        """What a resolution depends on (normalised content, interpreter request, index settings)."""

    @abstractmethod
    def resolve(self, spec: S, log: BuildLog) -> Resolved:
        """Produce the exact lock for the spec (the resolver runs here; the base caches the result)."""

    @abstractmethod
    def key(self, spec: S, resolved: Resolved) -> str:
        """The env cache key: a hash of the lock and whatever else the built env depends on."""

    @abstractmethod
    def build(self, spec: S, resolved: Resolved, dest: Path, log: BuildLog) -> dict[str, Any]:
        """Build the env into the empty directory ``dest``; return the metadata its marker records."""

    @abstractmethod
    def health(self, path: Path) -> str | None:
        """Why a published env cannot be used (None when whole). Called on the warm path: stat calls only."""

    @abstractmethod
    def make_env(self, choice: EnvChoice, spec: S, resolved: Resolved, key: str, path: Path, *, hit: bool,
                 seconds: float) -> Env:
        """The :class:`Env` for a built directory."""

    # -- optional steps, with defaults -----------------------------------------------------------

    def pinned(self, spec: S, log: BuildLog) -> Resolved | None:
        """A lock the project ships that wins over any resolution, even under ``--refresh-env``."""
        return None

    def usable(self, resolved: Resolved) -> bool:
        """Whether a cached resolution still fits this machine (e.g. its interpreter still exists)."""
        return True

    def warn(self, spec: S, log: BuildLog, *, cold: bool) -> None:
        """Say what is worth a warning about the spec (``cold``: the env is about to be built)."""

    def recorded(self, spec: S, lock: Lock) -> Resolved:
        """A recorded lock as a resolution (``proj reproduce``); a backend may add the facts it needs."""
        if lock.format != self.lock_format:
            raise EnvError(f"the {self.name} backend cannot rebuild from a {lock.format!r} lock "
                           f"(expected {self.lock_format})")
        return Resolved(lock, "recorded lock")

    # -- the lifecycle ---------------------------------------------------------------------------

    def spec(self, choice: EnvChoice) -> S:
        """The normalised spec for a choice (read once per backend instance: check, then ensure)."""
        ident = (choice.backend, choice.spec_file, getattr(choice.project, "root", None))
        if ident not in self._specs:
            self._specs[ident] = self.load_spec(choice)
        return self._specs[ident]

    def cached_resolution(self, spec: S) -> Resolved | None:
        data = read_resolution(self.name, self.fingerprint(spec))
        resolved = Resolved.from_json(data) if data is not None else None
        return resolved if resolved is not None and self.usable(resolved) else None

    def resolve_and_remember(self, spec: S, log: BuildLog) -> Resolved:
        resolved = self.resolve(spec, log)
        write_resolution(self.name, self.fingerprint(spec), resolved.to_json())
        return resolved

    def ensure(self, choice: EnvChoice, log: BuildLog, *, refresh: bool = False) -> Env:
        start = time.perf_counter()
        spec = self.spec(choice)
        self.warn(spec, log, cold=False)
        resolved = self.pinned(spec, log) or (None if refresh else self.cached_resolution(spec))
        if resolved is not None and not refresh:
            env = self._warm(choice, spec, resolved, start)
            if env is not None:
                return env
        self.warn(spec, log, cold=True)
        if resolved is None:
            resolved = self.resolve_and_remember(spec, log)
        return self._build(choice, spec, resolved, log, start, refresh=refresh)

    def from_lock(self, choice: EnvChoice, lock: Lock, log: BuildLog) -> Env:
        """The same lifecycle, starting from a recorded lock instead of a resolution."""
        start = time.perf_counter()
        spec = self.spec(choice)
        resolved = self.recorded(spec, lock)
        return self._warm(choice, spec, resolved, start) or self._build(choice, spec, resolved, log, start,
                                                                        refresh=False)

    def _warm(self, choice: EnvChoice, spec: S, resolved: Resolved, start: float) -> Env | None:
        """The published, healthy env for this resolution, found lock-free; None when it must be built."""
        key = self.key(spec, resolved)
        path = self.cache.lookup(key, self.health)
        if path is None:
            return None
        self.cache.touch(key, path)  # counts the use; the marker's mtime is "last used"
        return self.make_env(choice, spec, resolved, key, path, hit=True, seconds=time.perf_counter() - start)

    def _build(self, choice: EnvChoice, spec: S, resolved: Resolved, log: BuildLog, start: float, *,
               refresh: bool) -> Env:
        key = self.key(spec, resolved)
        with self.cache.slot(key, self.health, refresh=refresh) as slot:
            if not slot.hit:  # another run may have built it while this one waited for the lock
                if slot.rebuild_reason:
                    log.write(f"rebuilding environment {key} because {slot.rebuild_reason}")
                self.cache.publish(key, self.build(spec, resolved, slot.path, log))
                _report_beside(slot, log)
        self.cache.touch(key, slot.path)
        return self.make_env(choice, spec, resolved, key, slot.path, hit=slot.hit,
                             seconds=time.perf_counter() - start)


def _report_beside(slot: Slot, log: BuildLog) -> None:
    """The one line a rebuild prints when a running run kept the old env."""
    if slot.beside:
        runs = ", ".join(slot.beside)
        log.write(f"refreshing: built a new env beside the one in use by run {runs}; later runs use the new one")
