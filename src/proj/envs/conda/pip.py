"""The ``pip:`` part of a conda env: resolved with uv against the env's own Python, installed with uv.

uv writes a PEP 751 ``pylock.toml`` (urls and sha256 per file); from it one file per package is
chosen for the env's interpreter and platform, and that is what the conda-lock file records.
Packages the conda part already provides (same name) are left to conda, as conda-lock does.
"""
from __future__ import annotations

import re
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from proj.envs.base import BuildLog
from proj.envs.uv import run_uv
from proj.errors import EnvError
from proj.lockfiles.base import normalise_name as normalise
from proj.lockfiles.conda_lock import PipPin
from proj.lockfiles.pylock import parse_lock

_ARCH = {"linux-64": "x86_64", "linux-aarch64": "aarch64", "osx-64": "x86_64", "osx-arm64": "arm64"}


def resolve(lines: tuple[str, ...], python: Path, cwd: Path, platform: str, provided: set[str],
            log: BuildLog) -> list[PipPin]:
    """Pin ``lines`` (a requirements file's content) for ``python``; skip names conda provides."""
    with tempfile.TemporaryDirectory(prefix="proj-pip-") as tmp:
        req = Path(tmp) / "requirements.in"
        req.write_text("\n".join(lines) + "\n")
        out = Path(tmp) / "pylock.toml"
        run_uv(["pip", "compile"], [str(req), "--python", str(python), "--format", "pylock.toml", "-q", "-o", str(out)],
               log, "resolving the pip: dependencies", cwd=cwd, quiet_stdout=True)
        doc = parse_lock(out.read_text())
    version = _python_tag(python)
    pins = [_pin(pkg, version, _ARCH.get(platform, "")) for pkg in doc.get("packages", [])]
    return sorted((p for p in pins if normalise(p.name) not in provided), key=lambda p: normalise(p.name))


def install(pins: list[PipPin], python: Path, cwd: Path, log: BuildLog) -> None:
    """Install exactly the pinned files (no resolution, every hash checked by uv)."""
    if not pins:
        return
    with tempfile.TemporaryDirectory(prefix="proj-pip-") as tmp:
        req = Path(tmp) / "requirements.txt"
        req.write_text("".join(f"{p.name} @ {p.url} --hash=sha256:{p.sha256}\n" for p in pins))
        run_uv(["pip", "install"], ["--python", str(python), "--no-deps", "--require-hashes", "-r", str(req)],
               log, "installing the pip: dependencies", cwd=cwd)


def _pin(pkg: dict[str, Any], pytag: tuple[int, int], arch: str) -> PipPin:
    """Choose the one file of a pylock package that the env can install: a compatible wheel, else sdist."""
    wheels = [w for w in pkg.get("wheels", []) if _wheel_fits(_filename(w["url"]), pytag, arch)]
    chosen = sorted(wheels, key=lambda w: "none-any" in w["url"])[:1] or [pkg.get("sdist") or {}]
    entry = chosen[0]
    sha = (entry.get("hashes") or {}).get("sha256")
    url = entry.get("url") or (pkg.get("archive") or {}).get("url")
    if not url or not sha:
        raise EnvError(f"pip package {pkg.get('name')} {pkg.get('version')}: no installable file with a sha256 "
                       f"for Python {pytag[0]}.{pytag[1]} on {arch or 'this platform'}")
    return PipPin(pkg["name"], str(pkg.get("version", "")), url, sha)


def _filename(url: str) -> str:
    return url.rsplit("/", 1)[-1]


def _wheel_fits(filename: str, pytag: tuple[int, int], arch: str) -> bool:
    """Does a wheel's python/abi/platform tag suit CPython ``pytag`` on ``arch`` (Linux or macOS)?"""
    parts = filename[:-4].split("-") if filename.endswith(".whl") else []
    if len(parts) < 5:
        return False
    pys, abis, plats = (set(p.split(".")) for p in parts[-3:])
    major, minor = pytag
    py_ok = bool({f"py{major}", f"py{major}{minor}", f"cp{major}{minor}"} & pys) or (
        "abi3" in abis and any(_cp_at_most(t, major, minor) for t in pys))
    plat_ok = "any" in plats or any(arch and p.endswith(arch) and ("linux" in p or "macosx" in p) for p in plats)
    return py_ok and plat_ok


def _cp_at_most(tag: str, major: int, minor: int) -> bool:
    match = re.fullmatch(r"cp(\d)(\d+)", tag)
    return match is not None and int(match.group(1)) == major and int(match.group(2)) <= minor


def _python_tag(python: Path) -> tuple[int, int]:
    out = subprocess.run([str(python), "-c", "import sys; print(*sys.version_info[:2])"], capture_output=True,
                         text=True, check=False)
    try:
        major, minor = out.stdout.split()
        return int(major), int(minor)
    except ValueError:
        raise EnvError(f"the env's Python {python} does not run: {out.stderr.strip() or 'no output'}") from None
