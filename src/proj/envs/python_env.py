"""What a virtualenv must contain: python_env.yaml (or a conda.yaml read the MLflow way) normalised.

The normalised form is what the resolution cache is keyed on, so it drops everything that cannot
change the resolved lock: comments, blank lines, whitespace and YAML formatting. It keeps what can:
the Python request, every requirement line (``-r`` files inlined), a lock the project ships, and the
index settings from the environment.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from proj.errors import EnvError, ProjectError
from proj.lockfiles.pylock import recorded_spec_digest
from proj.project.schema import load_validated, load_yaml, read_text

LOCK_NAME = "pylock.toml"
# Settings that change what the resolver can see; part of the fingerprint so a new index re-resolves.
INDEX_VARS = ("UV_INDEX_URL", "UV_DEFAULT_INDEX", "UV_INDEX", "UV_EXTRA_INDEX_URL", "UV_FIND_LINKS", "UV_NO_INDEX",
              "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS", "PIP_NO_INDEX")
_INCLUDE = re.compile(r"^(?:-r|--requirement)(?:\s+|=)(?P<file>.+)$")
_CONSTRAINT = re.compile(r"^(?:-c|--constraint)(?:\s+|=)(?P<file>.+)$")
_CONDA_PYTHON = re.compile(r"^python\s*(?:==?|>=|~=)?\s*(?P<version>[0-9]+(?:\.[0-9]+){0,2})(?:\.\*)?$")


@dataclass(frozen=True)
class PythonSpec:
    """A virtualenv request: a Python version and requirement lines, plus where they came from."""

    python: str  # "3.11" (any 3.11.x) or "3.11.7" (exactly)
    requirements: tuple[str, ...]  # build dependencies first, ``-r`` files inlined, comments dropped
    source: Path | None  # the spec file, None for the default empty env
    shipped_lock: str | None = None  # the text of a pylock.toml the project ships next to its spec
    warnings: tuple[str, ...] = ()
    # Set when a shipped pylock.toml was ignored because proj wrote it for another spec: said every run.
    stale_lock: str | None = None

    @property
    def label(self) -> str:
        return self.source.name if self.source else "the default environment"

    @property
    def lock_path(self) -> Path | None:
        return self.source.parent / LOCK_NAME if self.source else None

    def fingerprint(self) -> str:
        """Hash of everything that can change the resolved lock (not comments or formatting)."""
        data = {"v": 1, "python": self.python, "requirements": list(self.requirements), "lock": self.shipped_lock,
                "index": {v: os.environ.get(v) for v in INDEX_VARS if os.environ.get(v)},
                "platform": [sys.platform, platform.machine()]}
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()

    def digest(self) -> str:
        """What ``proj env lock`` records in pylock.toml: the request alone, portable across machines."""
        return spec_digest(self.python, self.requirements)


def spec_digest(python: str, requirements: tuple[str, ...]) -> str:
    """The normalised request (Python + requirement lines), with ``-c`` files by content, not path.

    Constraint lines carry absolute paths (anchored by :func:`_expand`); a lock committed with the
    project must still match after a clone elsewhere, so the file's content stands in for its path.
    """
    lines = [_constraint_content(line) if line.startswith("-c ") else line for line in requirements]
    data = {"v": 1, "python": python, "requirements": lines}
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def _constraint_content(line: str) -> str:
    try:
        return "-c sha256:" + hashlib.sha256(Path(line[3:]).read_bytes()).hexdigest()
    except OSError:
        return line


def current_python() -> str:
    """The version of the Python running proj, which a project without an env file gets (as in MLflow)."""
    return ".".join(str(n) for n in sys.version_info[:3])


def load_spec(spec_file: Path | None, project_root: Path | None, *, conda: bool = False) -> PythonSpec:
    """Read the spec file the registry chose: python_env.yaml, a conda.yaml (``conda``), or none at all."""
    if spec_file is None:
        return PythonSpec(current_python(), (), None)
    root = project_root or spec_file.parent
    if conda:
        python, lines, warnings = _from_conda(spec_file)
    else:
        python, lines, warnings = _from_python_env(spec_file)
    requirements = tuple(_expand(lines, root, spec_file))
    lock, stale = _shipped_lock(spec_file, python, requirements)
    return PythonSpec(python, requirements, spec_file, lock, tuple(warnings), stale)


def _from_python_env(path: Path) -> tuple[str, list[str], list[str]]:
    try:
        data, _ = load_validated(path, "python_env")
    except ProjectError:
        _explain_numeric_python(path)
        raise
    data = data or {}
    lines = list(data.get("build_dependencies") or []) + list(data.get("dependencies") or [])
    return data.get("python") or current_python(), lines, []


def _explain_numeric_python(path: Path) -> None:
    """YAML reads ``python: 3.10`` as the float 3.1; say so instead of a bare type error."""

    data = load_yaml(path)
    value = data.get("python") if isinstance(data, dict) else None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        match = re.search(r"^python\s*:\s*(?P<raw>\S+)", path.read_text(encoding="utf-8"), re.M)
        raw = match.group("raw") if match else str(value)
        line = path.read_text(encoding="utf-8")[: match.start()].count("\n") + 1 if match else 1
        raise ProjectError(f"{path}:{line}: python: {raw} is a number to YAML (read as {value!r}); "
                           f"quote it: python: \"{raw}\"")


def _from_conda(path: Path) -> tuple[str, list[str], list[str]]:
    """MLflow's reading of conda.yaml for a virtualenv: the ``python=`` pin and the ``pip:`` list."""

    data, _ = load_validated(path, "conda_env")  # the same checks (and messages) as the conda backend
    data = data or {}
    python, lines, dropped = current_python(), list[str](), list[str]()
    for dep in data.get("dependencies") or []:
        if isinstance(dep, dict) and isinstance(dep.get("pip"), list):
            lines.extend(str(line) for line in dep["pip"])
        elif isinstance(dep, str) and (pin := _CONDA_PYTHON.match(dep.strip())):
            python = pin.group("version")
        elif isinstance(dep, str) and dep.strip().split("=")[0].strip() == "pip":
            lines.insert(0, "pip")
        else:
            dropped.append(str(dep))
    warnings = [f"{path.name}: conda packages not installable in a virtualenv were dropped: {', '.join(dropped)}"
                ] if dropped else []
    return python, lines, warnings


def _expand(lines: list[str], root: Path, origin: Path, depth: int = 0) -> list[str]:
    """Normalise requirement lines, inlining ``-r`` files (relative to ``root``) and anchoring ``-c``."""

    out: list[str] = []
    for raw in lines:
        line = _strip_comment(str(raw))
        if not line:
            continue
        include = _INCLUDE.match(line)
        constraint = _CONSTRAINT.match(line)
        if include:
            target = _include_path(include.group("file"), root, origin)
            text = read_text(target)  # a non-UTF-8 file is one clear error naming it
            out.extend(_expand(text.splitlines(), target.parent, target, depth + 1) if depth < 10 else [])
        elif constraint:
            out.append(f"-c {_include_path(constraint.group('file'), root, origin)}")
        else:
            out.append(line)
    return out


def _strip_comment(line: str) -> str:
    line = line.strip()
    if line.startswith("#"):
        return ""
    return re.split(r"\s+#", line, maxsplit=1)[0].strip()


def _include_path(name: str, root: Path, origin: Path) -> Path:
    target = (root / name.strip().strip("'\"")).resolve()
    if not target.is_file():
        raise EnvError(f"{origin}: requirements file {name.strip()!r} not found (looked for {target})")
    return target


def _shipped_lock(spec_file: Path, python: str, requirements: tuple[str, ...]) -> tuple[str | None, str | None]:
    """The project's pylock.toml, unless proj wrote it for a different spec: (lock text, stale warning).

    A lock proj wrote records the spec's digest; when the spec changed since, using the lock would
    silently run the old environment (MLflow's stale-env bug), so the spec is resolved instead. A
    lock without a digest (written by uv or pip) is the project's own word and is used as is.
    """

    path = spec_file.parent / LOCK_NAME
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return None, None
    recorded = recorded_spec_digest(text)
    if recorded is None or recorded == spec_digest(python, requirements):
        return text, None
    return None, (f"{LOCK_NAME} was written for a different {spec_file.name}; resolving again "
                  f"— run `proj env lock` to update it")
