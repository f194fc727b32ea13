"""Find an installed Python for a version request: proj's own, pyenv's, and what uv sees (PATH, uv-managed).

Never downloads or compiles: ``UV_PYTHON_DOWNLOADS=never``. A missing version is an error that lists
what is installed, so the user can pick one or install it themselves.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from proj.envs.uv import uv_bin, uv_env
from proj.errors import EnvError

MIN_PYTHON = (3, 8)
SOURCE_RANK = {"current": 0, "pyenv": 1, "uv": 2}  # equal versions: prefer the most stable path


@dataclass(frozen=True)
class Interpreter:
    path: str
    version: str  # "3.11.7"
    source: str  # "current", "pyenv" or "uv" (PATH and uv-managed interpreters, as uv reports them)

    @property
    def parts(self) -> tuple[int, ...]:
        return tuple(int(p) for p in self.version.split(".") if p.isdigit())


def matches(version: str, request: str) -> bool:
    """``3.11`` matches any 3.11.x; ``3.11.7`` only itself; ``3`` any 3.x."""
    want = request.split(".")
    return version.split(".")[: len(want)] == want


def find_interpreter(request: str, where: str) -> Interpreter:
    """The newest installed interpreter matching ``request``; ``where`` names the spec for the error.

    An exact request that proj's own Python or pyenv satisfies skips asking uv (a subprocess).
    """
    cheap = [i for i in [_current(), *_pyenv()] if matches(i.version, request)]
    if cheap and request.count(".") >= 2:
        return _supported(_best(cheap), where)
    found = discover()
    candidates = [i for i in found if matches(i.version, request)]
    if candidates:
        return _supported(_best(candidates), where)
    versions = sorted({i.version for i in found}, key=lambda v: tuple(int(p) for p in v.split(".")))
    raise EnvError(f"{where}: python {request!r} is not installed; found: {', '.join(versions) or 'none'} "
                   f"(install it with `pyenv install {request}` or `uv python install {request}`, "
                   "or change the python version)")


def _supported(interp: Interpreter, where: str) -> Interpreter:
    """The virtualenv tool proj builds with cannot create environments for very old Pythons: say so
    before anything is built, instead of failing half-way with the tool's traceback."""
    if interp.parts[:2] < MIN_PYTHON:
        raise EnvError(f"{where}: python {interp.version} is too old for proj's virtualenvs (it needs "
                       f"{'.'.join(map(str, MIN_PYTHON))} or newer); change the python version, or run it "
                       f"with --env-manager local or conda")
    return interp


def _best(candidates: list[Interpreter]) -> Interpreter:
    return max(candidates, key=lambda i: (i.parts, -SOURCE_RANK.get(i.source, 9)))


@lru_cache(maxsize=1)  # check() and ensure() run in one process: ask uv once
def discover() -> tuple[Interpreter, ...]:
    """Every base interpreter on this machine we can use (virtualenvs and pyenv shims excluded)."""
    seen: dict[str, Interpreter] = {}
    for interp in [_current(), *_pyenv(), *_uv_list()]:
        real = os.path.realpath(interp.path)
        if real not in seen and os.access(real, os.X_OK):
            seen[real] = interp
    return tuple(seen.values())


def _current() -> Interpreter:
    """proj's own interpreter, through any virtualenv it runs in to the base Python."""
    base = getattr(sys, "_base_executable", None) or sys.executable
    return Interpreter(base, ".".join(str(n) for n in sys.version_info[:3]), "current")


def _pyenv() -> list[Interpreter]:
    root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
    try:
        names = sorted(os.listdir(root))
    except OSError:
        return []
    found = []
    for name in names:
        python = root / name / "bin" / "python3"
        # Plain CPython version directories only ("3.11.7"); envs and other flavours name themselves.
        if all(p.isdigit() for p in name.split(".")) and python.exists() and name.startswith("3."):
            found.append(Interpreter(str(python), name, "pyenv"))
    return found


def _uv_list() -> list[Interpreter]:
    """Interpreters uv finds on PATH and in its own managed directory (one subprocess, no downloads)."""

    try:
        env = uv_env()
        # pyenv shims are bash scripts that fail for versions not selected: uv would run each (~1.5 s).
        env["PATH"] = os.pathsep.join(d for d in env.get("PATH", "").split(os.pathsep) if Path(d).name != "shims")
        out = subprocess.run([uv_bin(), "python", "list", "--only-installed", "--output-format", "json"],
                             capture_output=True, text=True, env=env, timeout=30, check=False)
        entries = json.loads(out.stdout) if out.returncode == 0 else []
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return []
    found = []
    for entry in entries:
        path = entry.get("path") or ""
        if entry.get("implementation") != "cpython" or not path or _is_shim_or_venv(path):
            continue
        found.append(Interpreter(path, str(entry.get("version", "")).split("+")[0], "uv"))
    return found


def _is_shim_or_venv(path: str) -> bool:
    """pyenv shims follow the user's current pyenv selection; venv pythons vanish with their venv."""
    parent = Path(path).parent
    return parent.name == "shims" or (parent.parent / "pyvenv.cfg").exists()
