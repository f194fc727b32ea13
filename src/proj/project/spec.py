"""Find, parse and validate an MLproject file into a :class:`Project` (MLflow-compatible, but strict)."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from proj.errors import ProjectError, UsageError
from proj.project.params import PARAM_TYPES, Parameter, as_text, placeholders
from proj.validation import load_validated

MLPROJECT = "mlproject"
DEFAULT_ENTRY_POINT = "main"
# Scripts that run without an MLproject entry, as MLflow does (`-e train.py`).
SCRIPT_RUNNERS = {".py": "python", ".sh": "bash"}


@dataclass(frozen=True)
class EntryPoint:
    """One runnable command with its declared parameters."""

    name: str
    command: str
    parameters: dict[str, Parameter] = field(default_factory=dict)
    is_script: bool = False


@dataclass(frozen=True)
class DockerEnv:
    """The ``docker_env`` block: an image plus volumes and environment variables to pass."""

    image: str
    volumes: tuple[str, ...] = ()
    environment: tuple[str | tuple[str, str], ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Project:
    """A validated project: where it lives, its entry points and the environment it asks for."""

    root: Path
    name: str | None
    file: Path | None
    entry_points: dict[str, EntryPoint]
    python_env: Path | None = None
    conda_env: Path | None = None
    docker_env: DockerEnv | None = None


def find_mlproject(root: Path) -> Path | None:
    """The MLproject file in ``root``, matched case-insensitively as MLflow does."""
    try:
        names = os.listdir(root)
    except FileNotFoundError:
        raise UsageError(f"project directory {root} does not exist") from None
    except NotADirectoryError:
        raise UsageError(f"project path {root} is not a directory") from None
    for name in sorted(names):
        if name.lower() == MLPROJECT and (root / name).is_file():
            return root / name
    return None


def load_project(root: Path) -> Project:
    """Read and validate the project at ``root`` (which may have no MLproject at all)."""
    root = root.resolve()
    path = find_mlproject(root)
    if path is None:
        return Project(root=root, name=None, file=None, entry_points={})
    data, _text = load_validated(path, "mlproject")
    return _build(root, path, data)


def _build(root: Path, path: Path, data: dict[str, Any]) -> Project:
    env_keys = [k for k in ("docker_env", "python_env", "conda_env") if k in data]
    if len(env_keys) > 1:
        raise ProjectError(f"{path}: {' and '.join(env_keys)} are both set; a project may name only one environment")
    entry_points = {
        str(name): _entry_point(path, str(name), body) for name, body in (data.get("entry_points") or {}).items()
    }
    return Project(
        root=root,
        name=None if data.get("name") is None else str(data["name"]),
        file=path,
        entry_points=entry_points,
        python_env=_env_file(root, path, "python_env", data.get("python_env")),
        conda_env=_env_file(root, path, "conda_env", data.get("conda_env")),
        docker_env=_docker_env(data.get("docker_env")),
    )


def _entry_point(path: Path, name: str, body: dict[str, Any]) -> EntryPoint:
    params = {}
    for pname, pdecl in (body.get("parameters") or {}).items():
        params[str(pname)] = Parameter.from_yaml(str(pname), pdecl)
    command = body["command"]
    try:
        used = placeholders(command)
    except ValueError as exc:
        raise ProjectError(f"{path}: entry_points.{name}.command: bad braces ({exc}); write {{{{ and }}}} for literal braces") from None
    unknown = [p for p in used if p not in params]
    if unknown:
        declared = ", ".join(params) or "none"
        raise ProjectError(
            f"{path}: entry_points.{name}.command uses {{{unknown[0]}}} but no such parameter is declared"
            f" (declared: {declared})"
        )
    return EntryPoint(name=name, command=command, parameters=params)


def _env_file(root: Path, path: Path, key: str, value: str | None) -> Path | None:
    if value is None:
        return None
    env_path = (root / value).resolve()
    if not env_path.is_file():
        raise ProjectError(f"{path}: {key}: file {value!r} not found in {root}")
    return env_path


def _docker_env(data: dict[str, Any] | None) -> DockerEnv | None:
    if data is None:
        return None
    environment = tuple(_env_entry(e) for e in data.get("environment") or ())
    extra = {k: v for k, v in data.items() if k not in ("image", "volumes", "environment")}
    return DockerEnv(image=data["image"], volumes=tuple(data.get("volumes") or ()), environment=environment, extra=extra)


def check_defaults(project: Project) -> None:
    """Every declared default must be a valid value of its type (``proj validate``; runs check lazily)."""
    from proj.errors import ParameterError
    from proj.project.params import coerce_default

    for entry in project.entry_points.values():
        for param in entry.parameters.values():
            if param.default is not None:
                try:
                    coerce_default(param, project.root)
                except ParameterError as exc:
                    raise ParameterError(f"{project.file}: entry_points.{entry.name}: {exc.message}") from None


def _env_entry(entry: Any) -> str | tuple[str, str]:
    """NAME (copied from the host), or a defined variable: [NAME, value] or NAME=value (docker -e style)."""
    if isinstance(entry, str):
        name, sep, value = entry.partition("=")
        return (name, value) if sep else entry
    return (str(entry[0]), as_text(entry[1]))


def select_entry_point(project: Project, name: str | None, display: str | None = None) -> EntryPoint:
    """The entry point ``name`` (default ``main``), or a ``.py``/``.sh`` script run as MLflow does.

    ``display`` names the project in errors (a git URL rather than its checkout deep in the cache).
    """
    name = name or DEFAULT_ENTRY_POINT
    if name in project.entry_points:
        return project.entry_points[name]
    runner = SCRIPT_RUNNERS.get(os.path.splitext(name)[1])
    script = (project.root / name)
    if runner and script.is_file() and _inside(project.root, script):
        import shlex

        return EntryPoint(name=name, command=f"{runner} {shlex.quote(name)}", is_script=True)
    valid = sorted(project.entry_points)
    scripts = sorted(p.name for p in project.root.iterdir() if p.suffix in SCRIPT_RUNNERS and p.is_file())
    if project.file is None:
        raise UsageError(f"no MLproject in {display or project.root} and no script {name!r}; "
                         f"scripts you can run with -e: {', '.join(scripts) or 'none'}")
    choices = ", ".join(valid + scripts) or "none"
    what = "entry point" if not runner else "script"
    where = f"{display} ({project.file.name})" if display else project.file
    raise UsageError(f"{where}: no {what} {name!r}; valid entry points: {choices}")


def _inside(root: Path, path: Path) -> bool:
    try:
        path.resolve().relative_to(root)
        return True
    except ValueError:
        return False


__all__ = ["PARAM_TYPES", "DockerEnv", "EntryPoint", "Project", "load_project", "select_entry_point"]
