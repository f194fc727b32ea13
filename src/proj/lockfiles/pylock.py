"""PEP 751 ``pylock.toml``: the pinned package set, proj's spec stamp, and a pip-installable export of it."""
from __future__ import annotations

import re
from typing import Any

from proj._compat import toml_loads
from proj.errors import LockParseError
from proj.lockfiles.base import LockContents, LockFormat, Package, normalise_name

NAME = "pylock.toml"

DIGEST_KEY = "spec-sha256"  # in [tool.proj]: which normalised python_env.yaml the lock was written for
# The key inside the [tool.proj] table (before any later table header).
_DIGEST = re.compile(r'^\[tool\.proj\][ \t]*$(?:(?!^\[).)*?^spec-sha256\s*=\s*"(?P<digest>[0-9a-f]{16,64})"',
                     re.MULTILINE | re.DOTALL)


def parse_lock(text: str) -> dict[str, Any]:
    """The lock as data; a malformed lock names itself in the error."""
    try:
        return toml_loads(text)
    except ValueError as exc:
        raise LockParseError(f"pylock.toml is not valid TOML: {exc}") from None


def parse(text: str, platform: str | None = None) -> LockContents:
    """The packages a pylock.toml pins, one per ``[[packages]]`` entry (``platform`` is unused: markers say it)."""
    data = parse_lock(text)
    packages = [_package(p) for p in data.get("packages") or [] if isinstance(p, dict) and p.get("name")]
    return LockContents(packages, python=_exact_python(str(data.get("requires-python", ""))))


FORMAT = LockFormat(NAME, parse)


def _package(entry: dict[str, Any]) -> Package:
    files = _files(entry)
    source, sha = _source(entry), ""
    if not source and files:  # pinned by version: the first file stands for where it comes from
        source = str(files[0].get("url") or files[0].get("path") or "")
        sha = str((files[0].get("hashes") or {}).get("sha256", ""))
    return Package(normalise_name(str(entry["name"])), str(entry.get("version") or ""), "pip", _requirement(entry),
                   source, sha)


def _source(entry: dict[str, Any]) -> str:
    """A VCS, archive or directory reference (a package pinned by where it is, not by version)."""
    for key in ("vcs", "archive", "directory"):
        if isinstance(entry.get(key), dict):
            return str(entry[key].get("url") or entry[key].get("path") or "")
    return ""


def _requirement(pkg: dict[str, Any]) -> str:
    """The exact requirement line for one entry: ``name==version``, else ``name @ <where>``; with its marker."""
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


def _exact_python(requires: str) -> str | None:
    match = re.fullmatch(r"\s*===?\s*([0-9][0-9.]*)\s*", requires)
    return match.group(1) if match else None


def recorded_spec_digest(text: str) -> str | None:
    """The spec digest proj recorded in ``[tool.proj]`` when it wrote the lock (None: uv's or pip's own).

    A regular expression, not a TOML parser: this runs on every warm run that ships a lock.
    """
    match = _DIGEST.search(text)
    return match.group("digest") if match else None


def with_spec_digest(text: str, digest: str) -> str:
    """The lock uv wrote, with ``[tool.proj] spec-sha256`` added (PEP 751 reserves ``[tool]`` for tools)."""
    return text.rstrip("\n") + f'\n\n[tool.proj]\n{DIGEST_KEY} = "{digest}"\n'


def lock_packages(text: str) -> dict[str, str]:
    """name -> version for every package the lock pins (names normalised as pip does)."""
    return {p.name: p.version for p in parse(text).packages}


def requires_python(text: str) -> str | None:
    """The exact version a lock was resolved for, when uv recorded one (``>=3.12.1`` -> ``3.12.1``)."""
    match = re.search(r'^requires-python\s*=\s*"(?:>=|==)?\s*([0-9.]+)"', text, re.MULTILINE)
    return match.group(1) if match else None


def lock_to_requirements(text: str) -> str:
    """``name==version --hash=...`` lines, for installers that cannot read pylock.toml (pip)."""
    lines = []
    for package in parse_lock(text).get("packages") or []:
        hashes = [f"--hash=sha256:{f['hashes']['sha256']}" for f in _files(package) if f.get("hashes", {}).get("sha256")]
        lines.append(" ".join([f"{package['name']}=={package['version']}", *hashes]))
    return "\n".join(lines) + "\n"


def _files(package: dict[str, Any]) -> list[dict[str, Any]]:
    return list(package.get("wheels") or []) + ([package["sdist"]] if package.get("sdist") else [])
