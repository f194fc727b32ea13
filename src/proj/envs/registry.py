"""Which backend runs a project, and why: the flag, an MLproject key, a file on disk, or the default."""
from __future__ import annotations

from importlib import import_module
from pathlib import Path

from proj.envs.base import Backend, EnvChoice
from proj.errors import EnvError, UsageError
from proj.project.spec import Project

# name -> "module:Class"; modules are imported only when the backend is used.
BACKENDS = {
    "local": "proj.envs.local:LocalBackend",
    "virtualenv": "proj.envs.virtualenv.backend:VirtualenvBackend",
    "conda": "proj.envs.conda.backend:CondaBackend",
    "docker": "proj.envs.docker.backend:DockerBackend",
}
ENV_MANAGERS = tuple(BACKENDS)


def choose_env(project: Project, override: str | None = None) -> EnvChoice:
    """Apply MLflow's precedence: docker_env > python_env key > conda_env key > python_env.yaml >
    conda.yaml > an empty virtualenv on the current Python. ``--env-manager`` picks the backend."""
    root = project.root
    if override is not None and override not in BACKENDS:
        raise UsageError(f"--env-manager {override!r} is not one of: {', '.join(ENV_MANAGERS)}")
    python_file = project.python_env or _file(root, "python_env.yaml")
    conda_file = project.conda_env or _file(root, "conda.yaml")
    if override == "local":
        return EnvChoice("local", "--env-manager", None, project)
    if override == "docker" or (override is None and project.docker_env is not None):
        if project.docker_env is None:
            raise UsageError(f"--env-manager docker needs a docker_env section in {project.file or root / 'MLproject'}")
        return EnvChoice("docker", "--env-manager" if override else "docker_env in MLproject", project.file, project)
    if override == "virtualenv":
        return EnvChoice("virtualenv", "--env-manager", python_file or conda_file, project)
    if override == "conda":
        return EnvChoice("conda", "--env-manager", conda_file or python_file, project)
    if project.python_env is not None:
        return EnvChoice("virtualenv", "python_env in MLproject", project.python_env, project)
    if project.conda_env is not None:
        return EnvChoice("conda", "conda_env in MLproject", project.conda_env, project)
    if python_file is not None:
        return EnvChoice("virtualenv", "python_env.yaml", python_file, project)
    if conda_file is not None:
        return EnvChoice("conda", "conda.yaml", conda_file, project)
    return EnvChoice("virtualenv", "default (no environment file)", None, project)


def _file(root: Path, name: str) -> Path | None:
    path = root / name
    return path if path.is_file() else None


def get_backend(name: str) -> Backend:
    """Instantiate a backend by name (importing its module lazily)."""
    try:
        module_name, cls_name = BACKENDS[name].split(":")
    except KeyError:
        raise UsageError(f"unknown environment backend {name!r}; valid: {', '.join(ENV_MANAGERS)}") from None
    try:
        module = import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            raise EnvError(f"the {name} environment backend is not available in this version of proj") from None
        raise
    backend: Backend = getattr(module, cls_name)()  # BACKENDS names only Backend subclasses
    return backend
