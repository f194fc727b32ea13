"""``proj env lock``: resolve a local project's environment and write its lock next to its env file."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from proj.envs.base import BuildLog, EnvChoice
from proj.envs.registry import choose_env, get_backend
from proj.errors import UsageError
from proj.project.spec import load_project
from proj.sources.resolve import resolve_source


def lock_project(uri: str, *, version: str | None = None, env_manager: str | None = None, cwd: Path | None = None,
                 echo: Callable[[str], None] = lambda line: None) -> Path:
    """Resolve a project's environment and write its lock next to its env file, for committing."""
    source = resolve_source(uri, version, cwd=cwd or Path.cwd())
    if source.kind != "local":  # the lock goes next to the env file, to be committed: a checkout is no place
        raise UsageError(f"proj env lock writes into your own working copy; {uri} is a git source "
                         f"(clone it and run `proj env lock` in the clone)")
    project = load_project(source.project_dir)
    choice: EnvChoice = choose_env(project, env_manager)
    backend = get_backend(choice.backend)
    backend.check(choice)
    return backend.write_lock(choice, BuildLog(None, echo))
