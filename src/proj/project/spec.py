"""Find, parse and validate an MLproject file into a :class:`Project`.

What MLflow's loader accepts is accepted; where proj would be stricter (an unknown key or type, a quoted
placeholder) the project still loads and :attr:`Project.warnings` says what is off, one line each, with
file and line. ``proj validate --strict`` turns those warnings into an error.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from proj.errors import ProjectError, UsageError
from proj.project.params import BARE, DOUBLE, PARAM_TYPES, Parameter, as_text, declared_type, normalise_type, placeholder_contexts
from proj.project.schema import _line_of, _short, load_validated

MLPROJECT = "mlproject"
DEFAULT_ENTRY_POINT = "main"
# Scripts that run without an MLproject entry, as MLflow does (`-e train.py`).
SCRIPT_RUNNERS = {".py": "python", ".sh": "bash"}
WARNING_MAX = 400
WARNINGS_SHOWN = 20
TOP_KEYS = ("name", "python_env", "conda_env", "docker_env", "entry_points")
ENTRY_KEYS = ("command", "parameters", "description")
PARAM_KEYS = ("type", "default", "description")
DOCKER_KEYS = ("image", "volumes", "environment", "dockerfile", "build_args")
# Spellings of a known type seen in MLflow projects; used only to suggest the right one in a warning.
_TYPE_HINTS = {"integer": "int", "number": "float", "boolean": "bool", "double": "float", "str": "string",
               "text": "string", "file": "path", "dir": "path", "url": "uri"}


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
    warnings: tuple[str, ...] = ()  # what MLflow accepts but is likely a mistake; errors under --strict
    nonstandard: tuple[str, ...] = ()  # fine for proj and said nowhere, but an error under --strict


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
    data, text = load_validated(path, "mlproject")
    return _build(root, path, data, text)


class _Warnings:
    """Collects one-line warnings, each naming the file and the line of the key it is about."""

    def __init__(self, path: Path, text: str) -> None:
        self.path, self.text = path, text
        self.items: list[tuple[int, str]] = []
        self.quiet: list[tuple[int, str]] = []
        self.dropped = 0

    def add(self, keys: list[Any], message: str, *, quiet: bool = False) -> None:
        """A warning; a ``quiet`` one is only reported by ``proj validate --strict``."""
        if len(self.items) + len(self.quiet) >= WARNINGS_SHOWN:  # finding each line re-reads the file
            self.dropped += 1
            return
        line = _line_of(self.text, keys)
        text = f"{self.path}:{line}: {message}"
        if len(text) > WARNING_MAX:  # one readable line, whatever a hostile file holds
            text = text[: WARNING_MAX - 3] + "..."
        (self.quiet if quiet else self.items).append((line, text))

    def in_order(self, found: list[tuple[int, str]], last: bool = False) -> tuple[str, ...]:
        ordered = [message for _line, message in sorted(found, key=lambda item: item[0])]
        if last and self.dropped:
            ordered.append(f"{self.path}: {self.dropped} more warning{'s' * (self.dropped > 1)} not shown")
        return tuple(ordered)


def _build(root: Path, path: Path, data: dict[str, Any], text: str = "") -> Project:
    env_keys = [k for k in ("docker_env", "python_env", "conda_env") if k in data]
    if len(env_keys) > 1:
        raise ProjectError(f"{path}: {' and '.join(env_keys)} are both set; a project may name only one environment")
    warn = _Warnings(path, text)
    _unknown_keys(warn, [], data, TOP_KEYS, "top level")
    for key in env_keys:
        if not data[key]:  # MLflow skips an empty env key and goes on choosing the environment
            warn.add([key], f"{key} is empty; ignored, as MLflow does")
            data = {k: v for k, v in data.items() if k != key}
    entry_points = {
        str(name): _entry_point(path, str(name), body, warn) for name, body in (data.get("entry_points") or {}).items()
    }
    if data.get("docker_env"):
        _docker_notes(warn, data["docker_env"])
    return Project(
        root=root,
        name=None if data.get("name") is None else str(data["name"]),
        file=path,
        entry_points=entry_points,
        python_env=_env_file(root, path, "python_env", data.get("python_env")),
        conda_env=_env_file(root, path, "conda_env", data.get("conda_env")),
        docker_env=_docker_env(data.get("docker_env")),
        warnings=warn.in_order(warn.items, last=True),
        nonstandard=warn.in_order(warn.quiet),
    )


def _unknown_keys(warn: _Warnings, keys: list[Any], block: Any, known: tuple[str, ...], where: str) -> None:
    """MLflow ignores keys it does not know; so does proj, with a warning (a typo loses a setting)."""
    if not isinstance(block, dict):
        return
    unknown = sorted((k for k in block if k not in known), key=str)
    if not unknown:
        return
    names = ", ".join(_short(str(k), 60) for k in unknown[:5]) + (f" (+{len(unknown) - 5} more)" if len(unknown) > 5 else "")
    hint = ""
    if "databricks_spark_job" in unknown:
        hint = " (databricks_spark_job is MLflow's Databricks backend, which proj does not run)"
    warn.add(keys + unknown[:1], f"unknown key{'s' if len(unknown) > 1 else ''} {names} in {where} ignored, "
                                 f"as MLflow does{hint}; valid keys: {', '.join(known)}")


def _docker_notes(warn: _Warnings, block: dict[str, Any]) -> None:
    _unknown_keys(warn, ["docker_env"], block, DOCKER_KEYS, "docker_env")
    for key in ("dockerfile", "build_args"):
        if key in block:
            warn.add(["docker_env", key], f"docker_env.{key} is a proj extension; `mlflow run` ignores it", quiet=True)
    for entry in block.get("environment") or ():
        if isinstance(entry, str) and "=" in entry:
            warn.add(["docker_env", "environment"], f"docker_env.environment {entry.partition('=')[0]}=... is a proj "
                     f"extension; `mlflow run` reads it as the name of a host variable (write [NAME, value])", quiet=True)
            break


def _parameter(warn: _Warnings, keys: list[Any], name: str, decl: Any) -> Parameter:
    """One parameter, read as MLflow reads it; what MLflow would silently misread is warned about."""
    declared = declared_type(decl)
    if isinstance(decl, dict):
        extra = [str(k) for k in decl if k not in PARAM_KEYS]
        typo = next((k for k in extra if k.split()[:1] == ["type"] and len(k.split()) == 2), None)
        if typo:  # `{type str, default: x}` is YAML for the key "type str" with no value
            warn.add(keys + [typo], f"parameter {_short(name, 60)} has a key {_short(typo, 60)}: a missing ':' after 'type'? "
                                    f"MLflow reads it as a string parameter, and so does proj; "
                                    f"write `type: {typo.split()[1]}`")
        _unknown_keys(warn, keys, {k: v for k, v in decl.items() if str(k) != typo}, PARAM_KEYS, f"parameter {name!r}")
        default = decl.get("default")
        if isinstance(default, (list, dict)):
            warn.add(keys + ["default"], f"parameter {name!r}: the default is a YAML {type(default).__name__}; "
                                         f"the command gets its Python text {_short(as_text(default), 60)}, as with MLflow")
    if declared == "str":
        warn.add(keys + (["type"] if isinstance(decl, dict) else []),
                 f"parameter {name!r}: type 'str' is read as 'string' (known types: {', '.join(PARAM_TYPES)})",
                 quiet=True)
    elif normalise_type(declared) != declared:
        suggestion = _TYPE_HINTS.get(str(declared).strip().lower())
        if suggestion is None and str(declared).strip().lower() in PARAM_TYPES:
            suggestion = str(declared).strip().lower()
        did_you = f"; did you mean {suggestion}?" if suggestion else ""
        warn.add(keys + (["type"] if isinstance(decl, dict) else []),
                 f"parameter {_short(name, 60)} has unknown type {_short(declared, 60)}; passed through unchecked as a string, "
                 f"as MLflow does (known types: {', '.join(PARAM_TYPES)}){did_you}")
    return Parameter.from_yaml(name, decl)


def _entry_point(path: Path, name: str, body: dict[str, Any], warn: _Warnings | None = None) -> EntryPoint:
    warn = warn or _Warnings(path, "")
    _unknown_keys(warn, ["entry_points", name], body, ENTRY_KEYS, f"entry point {name!r}")
    params = {}
    for pname, pdecl in (body.get("parameters") or {}).items():
        params[str(pname)] = _parameter(warn, ["entry_points", name, "parameters", pname], str(pname), pdecl)
    command = body["command"]
    try:
        contexts = placeholder_contexts(command)
        used = [p for p, _context in contexts]
    except ValueError as exc:
        raise ProjectError(f"{path}: entry_points.{name}.command: bad braces ({exc}); "
                           "write {{ and }} for literal braces") from None
    unknown = [p for p in used if p not in params]
    if unknown:
        declared = ", ".join(params) or "none"
        raise ProjectError(
            f"{path}: entry_points.{name}.command uses {{{unknown[0]}}} but no such parameter is declared"
            f" (declared: {declared})"
        )
    for pname in dict.fromkeys(p for p in used if "." in p):
        warn.add(["entry_points", name, "command"],
                 f"entry_points.{name}.command: placeholder {{{pname}}} works in proj, but `mlflow run` fails on it "
                 f"(Python's format reads '.' as attribute access)", quiet=True)
    heredoc = command.find("<<")
    if heredoc >= 0 and command[heredoc:heredoc + 3] != "<<<" and any(f"{{{p}}}" in command[heredoc:] for p in used):
        warn.add(["entry_points", name, "command"],
                 f"entry_points.{name}.command: a placeholder in a here-document (<<) is not protected by quoting: "
                 f"the shell expands $(...) in its body; pass the value as an argument instead")
    for pname, context in dict.fromkeys(c for c in contexts if c[1] != BARE):
        quote = '"' if context == DOUBLE else "'"
        warn.add(["entry_points", name, "command"],
                 f"entry_points.{name}.command: placeholder {{{pname}}} is inside {quote} quotes; values are quoted "
                 f"already, so write {{{pname}}} without them (proj renders it as one literal word, but `mlflow run` "
                 f"would let a value such as $(cmd) execute)")
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
