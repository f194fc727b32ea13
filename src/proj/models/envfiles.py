"""A model's environment files (requirements.txt, python_env.yaml, conda.yaml) derived from the run's LOCK.

The lock says exactly what ran, so the files pin exact versions instead of guessing from imports (which
is what MLflow does). Lock formats: ``pip-freeze`` / ``requirements.txt`` (local, pinned requirements),
``pylock.toml`` (PEP 751, virtualenv) and ``conda-lock.yml`` (conda). A ``docker-image`` lock names an
image, not packages: nothing can be derived from it and the model keeps the files it has.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from proj.paths import atomic_write
from proj.platforms import current_platform
from proj.safe_yaml import load_untrusted

BUILD_TOOLS = ("pip", "setuptools", "wheel")
ENV_FILES = ("requirements.txt", "python_env.yaml", "conda.yaml")
DEFAULT_CHANNELS = ("conda-forge",)


class LockParseError(ValueError):
    """The lock text is not in the format it claims."""


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
    """The packages a lock holds; ``None`` for a lock that names no packages (a docker image)."""
    if lock_format in ("pip-freeze", "requirements.txt"):
        return _split_build(EnvSpec(lock_format, pip=parse_requirements(text)))
    if lock_format == "pylock.toml":
        return parse_pylock(text)
    if lock_format == "conda-lock.yml":
        return parse_conda_lock(text, platform_name)
    return None


def parse_requirements(text: str) -> list[str]:
    """Requirement lines of a pip-freeze / pinned requirements file, without comments and ``--hash`` options."""
    joined = re.sub(r"\\\s*\n", " ", text)  # line continuations (uv/pip-compile hashes)
    lines = []
    for raw in joined.splitlines():
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        line = re.sub(r"\s--hash[= ]\S+", "", " " + line).strip()
        if line.startswith(("--", "-i ", "-f ")):
            continue  # index options say where, not what
        lines.append(line)
    return lines


def parse_pylock(text: str) -> EnvSpec:
    """A PEP 751 ``pylock.toml``: one exact requirement per ``[[packages]]`` entry."""
    try:
        data = _toml_loads(text)
    except ValueError as exc:
        raise LockParseError(f"pylock.toml is not valid TOML: {exc}") from None
    spec = EnvSpec("pylock.toml", python=_exact_python(str(data.get("requires-python", ""))))
    for pkg in data.get("packages", []) or []:
        if not isinstance(pkg, dict) or not pkg.get("name"):
            continue
        spec.pip.append(_pylock_requirement(pkg))
    return _split_build(spec)


def _pylock_requirement(pkg: dict[str, Any]) -> str:
    name = str(pkg["name"])
    if pkg.get("version"):
        req = f"{name}=={pkg['version']}"
    elif isinstance(pkg.get("vcs"), dict):
        vcs = pkg["vcs"]
        ref = vcs.get("commit-id") or vcs.get("requested-revision")
        req = f"{name} @ {vcs.get('type', 'git')}+{vcs.get('url') or vcs.get('path')}" + (f"@{ref}" if ref else "")
    elif isinstance(pkg.get("archive"), dict):
        req = f"{name} @ {pkg['archive'].get('url') or pkg['archive'].get('path')}"
    elif isinstance(pkg.get("directory"), dict):
        req = f"{name} @ file://{pkg['directory'].get('path')}"
    else:
        req = name
    return req + (f" ; {pkg['marker']}" if pkg.get("marker") else "")


def parse_conda_lock(text: str, platform_name: str | None = None) -> EnvSpec:
    """A conda-lock ``conda-lock.yml`` (v1): conda packages and the ``pip`` packages for one platform."""
    import yaml

    try:
        data = load_untrusted(text)
    except yaml.YAMLError as exc:
        raise LockParseError(f"conda-lock.yml is not valid YAML: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("package"), list):
        raise LockParseError("conda-lock.yml has no 'package' list")
    meta = data.get("metadata") or {}
    packages = [p for p in data["package"] if isinstance(p, dict) and p.get("name")]
    if platform_name is None:
        platform_name = current_platform()
    wanted = _pick_platform(platform_name, meta.get("platforms") or [], packages)
    channels = [c.get("url") if isinstance(c, dict) else str(c) for c in meta.get("channels") or []]
    spec = EnvSpec("conda-lock.yml", channels=[c for c in channels if c])
    for pkg in packages:
        if pkg.get("platform", wanted) != wanted or pkg.get("optional"):
            continue
        name, version = str(pkg["name"]), str(pkg.get("version", ""))
        if pkg.get("manager", "conda") == "pip":
            spec.pip.append(f"{name}=={version}" if version else name)
            continue
        build = str(pkg.get("build") or _conda_build(str(pkg.get("url", "")), name, version))
        spec.conda.append("=".join(x for x in (name, version, build) if x))
        if name == "python":
            spec.python = version
    return spec


def _pick_platform(current: str, listed: list[str], packages: list[dict[str, Any]]) -> str:
    present = list(dict.fromkeys([*listed, *(str(p.get("platform")) for p in packages if p.get("platform"))]))
    return current if current in present or not present else present[0]


def _conda_build(url: str, name: str, version: str) -> str:
    base = url.rsplit("/", 1)[-1]
    for ext in (".conda", ".tar.bz2"):
        if base.endswith(ext):
            base = base[: -len(ext)]
    prefix = f"{name}-{version}-"
    return base[len(prefix):] if base.startswith(prefix) else ""


def _split_build(spec: EnvSpec) -> EnvSpec:
    """Move pip/setuptools/wheel pins to ``build`` (python_env.yaml's build_dependencies)."""
    keep: list[str] = []
    build: list[str] = []
    for line in spec.pip:
        name = re.split(r"[\s=<>!~;@\[]", line, maxsplit=1)[0].lower()
        (build if name in BUILD_TOOLS else keep).append(line)
    spec.pip, spec.build = keep, build
    return spec


def _exact_python(requires: str) -> str | None:
    match = re.fullmatch(r"\s*===?\s*([0-9][0-9.]*)\s*", requires)
    return match.group(1) if match else None


def _toml_loads(text: str) -> dict[str, Any]:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        try:
            import tomli as tomllib  # type: ignore[no-redef]
        except ModuleNotFoundError:
            from pip._vendor import tomli as tomllib  # type: ignore[no-redef]
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(str(exc)) from None


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
    dump = lambda data: yaml.safe_dump(data, sort_keys=False, default_flow_style=False)  # noqa: E731
    return {"requirements.txt": requirements, "python_env.yaml": dump(python_env), "conda.yaml": dump(conda)}


def write_env_files(model_dir: Path, spec: EnvSpec, python: str) -> list[str]:
    """Write the env files atomically into ``model_dir``; returns their names."""

    files = render(spec, python)
    for name, text in files.items():
        atomic_write(model_dir / name, text)
    return list(files)
