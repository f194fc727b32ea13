"""The environment interface every backend implements, and the data that flows through it.

A backend turns an :class:`EnvChoice` (which backend, which spec file, and why) into a built
:class:`Env`: it resolves the spec into a lock, derives the cache key from that lock, builds (or
reuses) the environment, and then knows how to execute a command inside it.
"""
from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from proj.execution.process import OutputSink, run_process
from proj.redact import mask_url


@dataclass(frozen=True)
class EnvChoice:
    """Which backend runs the project, the spec file it reads, and where that choice came from."""

    backend: str
    origin: str  # e.g. "--env-manager", "python_env in MLproject", "python_env.yaml", "default"
    spec_file: Path | None = None
    project: Any = None  # proj.project.spec.Project (kept loose to avoid an import cycle)
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

    def write(self, text: str) -> None:
        text = mask_url(text)  # tools echo requirement lines as given: `pkg @ https://user:token@host/x.whl`
        if self.path is not None:
            with open(self.path, "a", encoding="utf-8", errors="replace") as fh:
                fh.write(text if text.endswith("\n") else text + "\n")
        if not text.startswith("$ "):  # the exact tool command lines are for the log, not the terminal
            self.echo(text.rstrip("\n"))


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
        from proj.execution.process import shell_argv

        return shell_argv(command)

    @abstractmethod
    def process_env(self, base: dict[str, str]) -> dict[str, str]:
        """The child's environment variables, derived from ``base`` (the caller's environment)."""

    def execute(self, invocation: Invocation, sink: OutputSink) -> int:
        import os

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

    def check(self, choice: EnvChoice) -> None:
        """Fail early, before any run record exists, on problems visible without building."""

    @abstractmethod
    def ensure(self, choice: EnvChoice, log: BuildLog, *, refresh: bool = False) -> Env:
        """Return a ready environment: reuse the cached one for this lock, or build it atomically."""

    def write_lock(self, choice: EnvChoice, log: BuildLog) -> Path:
        """Resolve the project's spec and write its lock next to the env file (``proj env lock``)."""
        from proj.errors import EnvError

        raise EnvError(f"the {self.name} backend has no lock file to write")

    def from_lock(self, choice: EnvChoice, lock: Lock, log: BuildLog) -> Env:
        """Rebuild exactly the environment a recorded lock describes (used by ``proj reproduce``)."""
        from proj.errors import EnvError

        raise EnvError(f"the {self.name} backend cannot rebuild an environment from a recorded lock")
