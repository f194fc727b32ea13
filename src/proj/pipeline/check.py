"""The env checks made before a run exists, shared by ``proj run`` and ``proj validate``: a mistake in the
project's files (a missing Dockerfile or requirements file, a bad spec) is a ProjectError, exit 2, whichever
command finds it; what the host lacks (no Docker daemon, a missing host variable) stays an EnvError."""
from __future__ import annotations

from pathlib import Path

from proj.envs.base import Backend, EnvChoice
from proj.envs.docker.base_image import declared_dockerfile
from proj.envs.registry import get_backend
from proj.errors import EnvError, ProjectError

SPEC_CHECKED = ("virtualenv", "conda")  # backends whose own check reads only the project's spec files


def check_project_env(choice: EnvChoice) -> None:
    """Check the env spec the project declares; build nothing, reach no daemon (``proj validate``)."""
    try:
        if choice.backend == "docker":
            _check_dockerfile(choice)
        elif choice.backend in SPEC_CHECKED:
            get_backend(choice.backend).check(choice)
    except EnvError as exc:
        raise ProjectError(exc.message, hint=exc.hint) from None


def check_env(choice: EnvChoice, backend: Backend) -> None:
    """Everything ``proj run`` checks before recording a run: the project's spec (as ``check_project_env``),
    then what the backend needs of this machine and of the command line (docker: -A options, host
    variables, the daemon)."""
    check_project_env(choice)
    if choice.backend not in SPEC_CHECKED:
        backend.check(choice)


def _check_dockerfile(choice: EnvChoice) -> None:
    project = choice.project
    dockerfile = project.docker_env.extra.get("dockerfile") if project.docker_env is not None else None
    if dockerfile:
        source = str(project.file or Path(project.root) / "MLproject")
        declared_dockerfile(project.root, dockerfile, source)
