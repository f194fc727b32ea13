"""A model's environment files (requirements.txt, python_env.yaml, conda.yaml) derived from the run's LOCK.

The lock says exactly what ran, so the files pin exact versions instead of guessing from imports (which
is what MLflow does). Lock formats: ``pip-freeze`` / ``requirements.txt`` (local, pinned requirements),
``pylock.toml`` (PEP 751, virtualenv) and ``conda-lock.yml`` (conda). A ``docker-image`` lock names an
image, not packages: nothing can be derived from it and the model keeps the files it has.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from proj.errors import LockParseError
from proj.lockfiles import conda_lock, pylock, requirements
from proj.lockfiles.base import LockContents
from proj.lockfiles.registry import by_name
from proj.paths import atomic_write

BUILD_TOOLS = ("pip", "setuptools", "wheel")
ENV_FILES = ("requirements.txt", "python_env.yaml", "conda.yaml")
DEFAULT_CHANNELS = ("conda-forge",)

__all__ = ["ENV_FILES", "EnvSpec", "LockParseError", "parse_conda_lock", "parse_lock", "parse_pylock",
           "parse_requirements", "render", "write_env_files"]


@dataclass
class EnvSpec:
    """What a lock says ran: the interpreter version and the exact packages, by installer."""

    lock_format: str
    python: str | None = None
    pip: list[str] = field(default_factory=list)  # requirement lines, exact (``name==version`` or ``name @ url``)
    build: list[str] = field(default_factory=list)  # pins of pip / setuptools / wheel
    conda: list[str] = field(default_factory=list)  # conda specs ``name=version=build`` (conda locks only)
    channels: list[str] = field(default_factory=list)


def parse_lock(lock_format: str, text: str, platform_name: str | None = None) -> EnvSpec | None:
    """The packages a lock holds; ``None`` for a lock that names no packages (a docker image) or an unknown one."""
    fmt = by_name(lock_format)
    if fmt is None or not fmt.lists_packages:
        return None
    return _spec(lock_format, fmt.parse(text, platform_name))


def parse_requirements(text: str) -> list[str]:
    """Requirement lines of a pip-freeze / pinned requirements file, without comments and ``--hash`` options."""
    return requirements.requirement_lines(text)


def parse_pylock(text: str) -> EnvSpec:
    """A PEP 751 ``pylock.toml``: one exact requirement per ``[[packages]]`` entry."""
    return _spec(pylock.NAME, pylock.parse(text))


def parse_conda_lock(text: str, platform_name: str | None = None) -> EnvSpec:
    """A conda-lock ``conda-lock.yml`` (v1): conda packages and the ``pip`` packages for one platform."""
    return _spec(conda_lock.LOCK_FORMAT, conda_lock.read(text, platform_name))


def _spec(lock_format: str, contents: LockContents) -> EnvSpec:
    """The env-file view of a parsed lock.

    Outside a conda lock, pip/setuptools/wheel pins go to ``build`` (python_env.yaml's build_dependencies);
    in a conda lock they stay with the env's ``pip:`` packages, which conda's own pip installs.
    """
    spec = EnvSpec(lock_format, python=contents.python, channels=list(contents.channels))
    split = lock_format != conda_lock.LOCK_FORMAT
    for package in contents.packages:
        if package.manager == "conda":
            spec.conda.append(package.pin)
        else:
            (spec.build if split and package.name in BUILD_TOOLS else spec.pip).append(package.pin)
    return spec


def render(spec: EnvSpec, python: str) -> dict[str, str]:
    """The three env files' text for a parsed lock and the interpreter version that ran."""
    import yaml

    python = spec.python or python
    requirements = "".join(f"{line}\n" for line in spec.pip)
    python_env = {"python": python, "build_dependencies": spec.build or list(BUILD_TOOLS),
                  "dependencies": ["-r requirements.txt"]}
    if spec.conda:
        deps: list[Any] = list(spec.conda)
    else:
        pip_pin = next((b.replace("==", "=", 1) for b in spec.build if b.lower().startswith("pip==")), "pip")
        deps = [f"python={python}", pip_pin]
    if spec.pip:
        deps.append({"pip": list(spec.pip)})
    conda = {"name": "mlflow-env", "channels": spec.channels or list(DEFAULT_CHANNELS), "dependencies": deps}

    def dump(data: dict[str, Any]) -> str:
        return yaml.safe_dump(data, sort_keys=False, default_flow_style=False)

    return {"requirements.txt": requirements, "python_env.yaml": dump(python_env), "conda.yaml": dump(conda)}


def write_env_files(model_dir: Path, spec: EnvSpec, python: str) -> list[str]:
    """Write the env files atomically into ``model_dir``; returns their names."""

    files = render(spec, python)
    for name, text in files.items():
        atomic_write(model_dir / name, text)
    return list(files)
