"""Reading PEP 751 ``pylock.toml`` text: the pinned package set, and a pip-installable export of it."""
from __future__ import annotations

import re
from typing import Any

from proj.errors import EnvError


def parse_lock(text: str) -> dict[str, Any]:
    """The lock as data; a malformed lock names itself in the error."""
    try:
        import tomllib
    except ImportError:  # Python 3.10: tomli is what tomllib was before 3.11
        import tomli as tomllib  # type: ignore[no-redef]
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise EnvError(f"pylock.toml is not valid TOML: {exc}") from None


def lock_packages(text: str) -> dict[str, str]:
    """name -> version for every package the lock pins (names normalised as pip does)."""
    packages = parse_lock(text).get("packages") or []
    return {_normalise(p["name"]): str(p.get("version", "")) for p in packages if "name" in p}


def requires_python(text: str) -> str | None:
    """The exact version a lock was resolved for, when uv recorded one (``>=3.12.1`` -> ``3.12.1``)."""
    match = re.search(r'^requires-python\s*=\s*"(?:>=|==)?\s*([0-9.]+)"', text, re.M)
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


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()
