"""What a run's container sees: bind mounts and environment variables, derived from the invocation.

Host paths are mounted at the *same* absolute path inside the container (the run dir, proj's client
module, ``path`` parameters). The PROJ_* variables and the rendered command then need no rewriting,
and a path printed inside the container is valid on the host. The project itself sits at WORKDIR.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from proj.envs.base import Invocation
from proj.errors import EnvError
from proj.project.spec import DockerEnv


def host_environment(spec: DockerEnv, source: str, environ: dict[str, str] | None = None) -> dict[str, str]:
    """The declared ``environment``: names copied from the host, ``[NAME, value]`` pairs as given.

    A name the host does not define is an error (raised by ``check``, before any run exists)."""
    environ = dict(os.environ) if environ is None else environ
    result: dict[str, str] = {}
    missing = []
    for item in spec.environment:
        if isinstance(item, str):
            if item in environ:
                result[item] = environ[item]
            else:
                missing.append(item)
        else:
            result[item[0]] = item[1]
    if missing:
        raise EnvError(f"{source}: docker_env.environment copies {', '.join(missing)} from the host, "
                       f"but {'it is' if len(missing) == 1 else 'they are'} not set")
    return result


def declared_volumes(spec: DockerEnv, project_root: Path) -> list[str]:
    """``host:container[:mode]`` items; a relative host path (./x, ../x, ~/x) is resolved against the
    project root, a bare name stays a named docker volume (as ``docker run -v`` treats it)."""
    result = []
    for item in spec.volumes:
        host, _, rest = item.partition(":")
        if host.startswith("~"):
            host = os.path.expanduser(host)
        elif host.startswith((".", "/")):
            host = str((project_root / host).resolve())
        result.append(f"{host}:{rest}")
    return result


def invocation_volumes(invocation: Invocation) -> list[str]:
    """Identical-path bind mounts for the run dir, the client dir and ``path`` parameters.

    A path inside another mounted dir is visible already (and docker rejects duplicate targets)."""
    wanted: dict[str, str] = {str(path): mode for path, mode in invocation.mounts.items()}
    for path in invocation.path_params.values():
        wanted.setdefault(str(path), "rw")  # like a local run: the entry point may write there
    kept = [p for p in wanted if not any(_inside(p, other) for other in wanted if other != p)]
    return [f"{p}:{p}:{wanted[p]}" for p in sorted(kept)]


def _inside(path: str, parent: str) -> bool:
    return path.startswith(parent.rstrip("/") + "/")


def container_environment(invocation: Invocation, declared: dict[str, str], image_env: dict[str, str],
                          user: str | None) -> dict[str, str]:
    """Declared variables, then proj's own (PROJ_*), then PYTHONPATH with the client dir first."""
    env = {**declared, **invocation.env}
    if invocation.pythonpath:
        extra = ":".join(str(p) for p in invocation.pythonpath)
        current = env.get("PYTHONPATH") or image_env.get("PYTHONPATH")
        env["PYTHONPATH"] = extra + (":" + current if current else "")
    if user and not user.startswith(("0:", "root")) and "HOME" not in env and "HOME" not in image_env:
        env["HOME"] = "/tmp"  # an arbitrary uid has no home in the image; tools that write ~ need one
    return env


def image_environment(inspect: dict[str, Any]) -> dict[str, str]:
    """The ``ENV`` of an image (from ``docker image inspect``)."""
    items = (inspect.get("Config") or {}).get("Env") or []
    return dict(item.partition("=")[::2] for item in items)
