"""Reading PEP 751 ``pylock.toml`` text: the pinned package set, and a pip-installable export of it."""
from __future__ import annotations

import re
from typing import Any

from proj.errors import EnvError

DIGEST_KEY = "spec-sha256"  # in [tool.proj]: which normalised python_env.yaml the lock was written for
# The key inside the [tool.proj] table (before any later table header).
_DIGEST = re.compile(r'^\[tool\.proj\][ \t]*$(?:(?!^\[).)*?^spec-sha256\s*=\s*"(?P<digest>[0-9a-f]{16,64})"',
                     re.M | re.S)


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
