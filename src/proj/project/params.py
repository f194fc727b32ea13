"""Typed entry-point parameters: declaration, coercion, and shell-safe command templating."""
from __future__ import annotations

import math
import os
import re
import shlex
import string
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from proj.errors import ParameterError, UsageError
from proj.settings import expand_user

PARAM_TYPES = ("string", "float", "int", "bool", "path", "uri")
_TRUE = {"true", "1", "yes", "y", "on"}
_FALSE = {"false", "0", "no", "n", "off"}
# A URI as MLflow's ``is_uri`` sees one (``urlparse(v).scheme`` is non-empty): ``s3://b/k``, but also
# MLflow's own ``runs:/<id>/model`` and ``models:/name/1``, which have no ``//``.
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
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
        """Read the short form (``alpha: float``) or the long form (``{type, default}``) as MLflow does:
        ``str`` is ``string``, and any other unknown type is passed through as a string (see
        :func:`declared_type`)."""
        if isinstance(decl, str):
            return cls(name=name, type=normalise_type(decl))
        decl = decl or {}
        default = decl.get("default")
        return cls(name=name, type=normalise_type(decl.get("type", "string")),
                   default=None if default is None else as_text(default))


def declared_type(decl: Any) -> Any:
    """The ``type`` a parameter declaration names, as written (``string`` when it names none)."""
    if isinstance(decl, str):
        return decl
    return (decl or {}).get("type", "string") if isinstance(decl, dict) else "string"


def normalise_type(declared: Any) -> str:
    """One of PARAM_TYPES: ``str`` is MLflow's common spelling of ``string``; an unknown type behaves
    as MLflow treats it, a string passed through unchecked."""
    if declared in PARAM_TYPES:
        return str(declared)
    return "string"


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
    """Names used as ``{name}`` in a command; ``{{``/``}}`` are literal braces. Raises ValueError on bad braces.

    A name may hold ``-`` and ``.`` (``{batch-size}``, ``{learning.rate}``), as MLflow's parameter names
    do; positional (``{0}``), indexed (``{a[0]}``), converted (``{a!r}``) and formatted (``{a:.2f}``)
    fields are refused: the value is a shell word, not a Python object.
    """
    return [name for name, _context in placeholder_contexts(command)]


# The quoting a placeholder sits in, in the shell text the author wrote.
BARE, SINGLE, DOUBLE = "bare", "single", "double"
_PLACEHOLDER = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


def placeholder_contexts(command: str) -> list[tuple[str, str]]:
    """Each placeholder with the shell quote context around it (BARE, SINGLE or DOUBLE)."""
    found = []
    scanner = _QuoteScanner()
    for literal, field, spec, conversion in string.Formatter().parse(command):
        scanner.feed(literal)
        if field is None:
            continue
        if not field or spec or conversion or not _PLACEHOLDER.match(field) or field.isdigit():
            shown = field + ("!" + conversion if conversion else "") + (":" + spec if spec else "")
            raise ValueError(f"unsupported placeholder {{{shown}}}")
        found.append((field, scanner.context()))
        scanner.feed("x")  # the value is a word: a following '#' does not start a comment
    return found


class _QuoteScanner:
    """Tracks POSIX shell quoting through a command, as far as a placeholder's context needs: quotes,
    backslashes, comments, and the nesting of ``$(...)``, backticks and ``${...}``."""

    def __init__(self) -> None:
        self.stack = ["bare"]  # frames: bare, single, double, sub ($( )), tick (` `), brace (${ })
        self.prev = "\n"
        self.comment = False

    def context(self) -> str:
        for frame in reversed(self.stack):
            if frame != "brace":  # ${x:-...} takes its quoting from around it
                return {"single": SINGLE, "double": DOUBLE}.get(frame, BARE)
        return BARE

    def feed(self, text: str) -> None:
        i = 0
        while i < len(text):
            i = self._step(text, i)

    def _step(self, text: str, i: int) -> int:
        char, top = text[i], self.stack[-1]
        nxt = text[i + 1] if i + 1 < len(text) else ""
        self.prev, prev = char, self.prev
        if self.comment:
            self.comment = char != "\n"
            return i + 1
        if top == "single":
            if char == "'":
                self.stack.pop()
            return i + 1
        if char == "\\":
            self.prev = nxt
            return i + 2
        if char == "$" and nxt in "({":
            self.stack.append("sub" if nxt == "(" else "brace")
            return i + 2
        if char == "`":
            if top == "tick":
                self.stack.pop()
            else:
                self.stack.append("tick")
            return i + 1
        if top == "double":
            if char == '"':
                self.stack.pop()
            return i + 1
        if (char == ")" and top == "sub") or (char == "}" and top == "brace"):
            self.stack.pop()
        elif char == "(" and top == "sub":
            self.stack.append("sub")  # a subshell inside $( ): its ')' is not the end
        elif char == "'":
            self.stack.append("single")
        elif char == '"':
            self.stack.append("double")
        elif char == "#" and top != "brace" and (prev.isspace() or prev in ";&|()"):
            self.comment = True
        return i + 1


def quote_in_context(value: str, context: str) -> str:
    """``value`` as exactly one literal word at a place in the command with the given quote context.

    Inside the author's quotes (``"{v}"`` or ``'{v}'``) a plain ``shlex.quote`` would be wrong: its
    single quotes are literal inside double quotes, so ``$(cmd)`` in the value would run. Close the
    author's quote, insert the quoted value, and reopen it: the shell joins the pieces into one word.
    """
    quoted = shlex.quote(value)
    if context == SINGLE:
        return f"'{quoted}'"
    if context == DOUBLE:
        return f'"{quoted}"'
    return quoted


def render_command(template: str, params: list[BoundParam]) -> str:
    """Fill ``{name}`` placeholders with shell-quoted values and append undeclared params as ``--key value``."""
    values = {p.name: p.command_text for p in params if p.source != "extra"}
    parts = []
    scanner = _QuoteScanner()
    for literal, field, _spec, _conv in string.Formatter().parse(template):
        parts.append(literal)
        scanner.feed(literal)
        if field is not None:
            parts.append(quote_in_context(values[field], scanner.context()))
            scanner.feed("x")
    command = "".join(parts)
    extras = [f"--{shlex.quote(p.name)} {shlex.quote(p.raw)}" for p in params if p.source == "extra"]
    command = " ".join([command, *extras]) if extras else command
    check_command_size(command)
    return command


# Linux refuses one argv string over MAX_ARG_STRLEN (32 pages) with E2BIG, and the command reaches the
# shell as one argument (``bash -c COMMAND``). Other systems only have the total limit.
MAX_ARG_STRLEN = 131072 if sys.platform.startswith("linux") else None


def check_command_size(command: str) -> None:
    """Refuse, while planning, a command line the system would refuse to execute (E2BIG)."""
    size = len(command.encode("utf-8", "surrogateescape")) + 1
    hint = "pass large values in a file (a path parameter) instead"
    if MAX_ARG_STRLEN is not None and size > MAX_ARG_STRLEN:
        raise ParameterError(f"the command is {size:,} bytes after filling in the parameters; the system limit "
                             f"for one argument is {MAX_ARG_STRLEN:,} bytes (MAX_ARG_STRLEN); {hint}")
    limit = _arg_max()
    environment = sum(len(k) + len(v) + 2 for k, v in os.environ.items())
    if limit and size + environment + 4096 > limit:  # 4096: the shell's path, "-c", proj's own variables
        raise ParameterError(f"the command is {size:,} bytes after filling in the parameters; with the environment "
                             f"({environment:,} bytes) it exceeds the system limit ARG_MAX of {limit:,} bytes; {hint}")


def _arg_max() -> int:
    try:
        return int(os.sysconf("SC_ARG_MAX"))
    except (AttributeError, ValueError, OSError):
        return 0
