"""Typed entry-point parameters: declaration, coercion, and shell-safe command templating."""
from __future__ import annotations

import math
import re
import shlex
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from proj.errors import ParameterError, UsageError

PARAM_TYPES = ("string", "float", "int", "bool", "path", "uri")
_TRUE = {"true", "1", "yes", "y", "on"}
_FALSE = {"false", "0", "no", "n", "off"}
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class Parameter:
    """A declared parameter. It is required exactly when it has no default (MLflow's rule)."""

    name: str
    type: str = "string"
    default: str | None = None

    @property
    def required(self) -> bool:
        return self.default is None

    @classmethod
    def from_yaml(cls, name: str, decl: Any) -> "Parameter":
        """Read the short form (``alpha: float``) or the long form (``{type, default}``)."""
        if isinstance(decl, str):
            return cls(name=name, type=decl)
        decl = decl or {}
        default = decl.get("default")
        return cls(name=name, type=decl.get("type", "string"), default=None if default is None else as_text(default))


@dataclass(frozen=True)
class BoundParam:
    """One parameter as the run saw it: what was given, its typed value, and what the shell got."""

    name: str
    type: str
    raw: str
    value: Any
    source: str  # "user", "default" or "extra" (undeclared, appended as --key value)

    @property
    def command_text(self) -> str:
        """The unquoted text substituted into the command (resolved path for ``path``)."""
        return str(self.value) if self.type == "path" else self.raw


def as_text(value: Any) -> str:
    """A YAML or Python value as the text a command gets: ``str()``, exactly as MLflow passes defaults
    (``true`` in YAML reaches the program as ``True``), so scripts written for ``mlflow run`` see the same."""
    return str(value)


def parse_cli_params(pairs: tuple[str, ...] | list[str], flag: str = "-P") -> dict[str, str]:
    """Turn ``-P k=v`` (or ``-T k=v``) options into a dict: split on the first ``=``; reject repeats and
    a missing ``=``."""
    result: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"{flag} {pair!r}: expected KEY=VALUE")
        if key in result:
            raise UsageError(f"{flag} {key}: given more than once ({result[key]!r} and {value!r})")
        result[key] = value
    return result


def coerce(param: Parameter, raw: str, base: Path) -> Any:
    """Check ``raw`` against the parameter's type and return the typed value."""
    kind = param.type
    try:
        if kind == "float":
            value = float(raw)
            if not math.isfinite(value) and raw.strip().lower() not in ("inf", "-inf", "+inf", "nan"):
                raise ValueError
            return value
        if kind == "int":
            return int(raw.strip(), 10)
        if kind == "bool":
            lowered = raw.strip().lower()
            if lowered in _TRUE:
                return True
            if lowered in _FALSE:
                return False
            raise ValueError
    except ValueError:
        hint = {"bool": "true or false", "int": "a whole number such as 3", "float": "a number such as 0.1"}[kind]
        raise ParameterError(f"parameter {param.name!r} ({kind}): {raw!r} is not {hint}") from None
    if kind == "path":
        return _path_value(param, raw, base)
    if kind == "uri" and not _SCHEME.match(raw):
        raise ParameterError(
            f"parameter {param.name!r} (uri): {raw!r} has no scheme; write it as a URI such as file:///data or s3://bucket/key"
        )
    return raw


def _path_value(param: Parameter, raw: str, base: Path) -> str:
    from proj.paths import expand_user

    if _SCHEME.match(raw) and not raw.startswith("file://"):
        return raw  # a remote location: passed through for the program to fetch
    if not raw.strip():  # would silently become the working directory
        raise ParameterError(f"parameter {param.name!r} (path): the value is empty; give a file or directory")
    local = _file_url_path(param, raw) if raw.startswith("file://") else raw
    path = (base / expand_user(local, f"parameter {param.name!r} (path)")).resolve()
    if not path.exists():
        raise ParameterError(f"parameter {param.name!r} (path): {raw!r} does not exist (looked for {path})")
    return str(path)


def _file_url_path(param: Parameter, raw: str) -> str:
    """The path of a local ``file:`` URL: ``file:///abs`` or ``file://localhost/abs``, nothing else.

    ``file://host/x`` names a file on another machine; reading it as the relative path ``host/x`` would
    quietly run on the wrong data.
    """
    host, slash, rest = raw[len("file://"):].partition("/")
    if host not in ("", "localhost") or not slash:
        raise ParameterError(f"parameter {param.name!r} (path): {raw!r} is not a local file URL; "
                             f"write file:///absolute/path (or a plain path)")
    return "/" + rest


def coerce_default(param: Parameter, project_root: Path) -> Any:
    """The typed default; a bad one is the MLproject's mistake, and the message says so."""
    try:
        return coerce(param, param.default or "", project_root)
    except ParameterError as exc:
        raise ParameterError(f"{exc.message} -- this is the default declared in the MLproject; "
                             f"fix it there or pass -P {param.name}=...") from None


def bind_params(parameters: dict[str, Parameter], given: dict[str, str], *, cwd: Path,
                project_root: Path) -> list[BoundParam]:
    """Validate and type every parameter. User paths resolve against ``cwd``, defaults against the project."""
    missing = [name for name, p in parameters.items() if p.required and name not in given]
    if missing:
        raise ParameterError(
            "missing required parameter" + ("s " if len(missing) > 1 else " ") + ", ".join(missing)
            + "; pass " + " ".join(f"-P {m}=..." for m in missing)
        )
    bound = []
    for name, param in parameters.items():
        if name in given:
            bound.append(BoundParam(name, param.type, given[name], coerce(param, given[name], cwd), "user"))
        else:
            raw = param.default or ""
            bound.append(BoundParam(name, param.type, raw, coerce_default(param, project_root), "default"))
    for name, raw in given.items():
        if name not in parameters:
            if not _KEY.match(name):
                raise ParameterError(f"-P {name!r}: parameter names may hold letters, digits, '_', '-' and '.'")
            bound.append(BoundParam(name, "string", raw, raw, "extra"))
    return bound


def placeholders(command: str) -> list[str]:
    """Names used as ``{name}`` in a command; ``{{``/``}}`` are literal braces. Raises ValueError on bad braces."""
    names = []
    for _literal, field, spec, conversion in string.Formatter().parse(command):
        if field is None:
            continue
        if not field or spec or conversion or not field.isidentifier():
            raise ValueError(f"unsupported placeholder {{{field}{'!' + conversion if conversion else ''}{':' + spec if spec else ''}}}")
        names.append(field)
    return names


def render_command(template: str, params: list[BoundParam]) -> str:
    """Fill ``{name}`` placeholders with shell-quoted values and append undeclared params as ``--key value``."""
    values = {p.name: shlex.quote(p.command_text) for p in params if p.source != "extra"}
    parts = []
    for literal, field, _spec, _conv in string.Formatter().parse(template):
        parts.append(literal)
        if field is not None:
            parts.append(values[field])
    command = "".join(parts)
    extras = [f"--{shlex.quote(p.name)} {shlex.quote(p.raw)}" for p in params if p.source == "extra"]
    return " ".join([command, *extras]) if extras else command
