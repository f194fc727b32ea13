"""The env checks made before a run exists, shared by ``proj run`` and ``proj validate``: a mistake in the
project's files (a missing Dockerfile or requirements file, a bad spec) is a ProjectError, exit 2, whichever
command finds it; what the host lacks (no Docker daemon, a missing host variable) stays an EnvError."""
from __future__ import annotations

from proj.envs.base import Backend, EnvChoice
from proj.envs.registry import get_backend
from proj.errors import EnvError, ProjectError


def check_project_env(choice: EnvChoice, backend: Backend | None = None) -> None:
    """Check the env spec the project declares; build nothing, reach no daemon (``proj validate``)."""
    try:
        (backend or get_backend(choice.backend)).check_spec(choice)
    except EnvError as exc:
        raise ProjectError(exc.message, hint=exc.hint) from None


def check_env(choice: EnvChoice, backend: Backend) -> None:
    """Everything ``proj run`` checks before recording a run: the project's spec (as ``check_project_env``),
    then what the backend needs of this machine and of the command line (docker: -A options, host
    variables, the daemon)."""
    check_project_env(choice, backend)
    backend.check_host(choice)
