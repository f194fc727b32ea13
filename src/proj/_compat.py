"""Standard-library features older supported Pythons lack, each fallback written once."""
from __future__ import annotations

import hashlib
import sys
from typing import IO, Any


def toml_loads(text: str) -> dict[str, Any]:
    """Parse TOML text (a malformed document raises ``tomllib.TOMLDecodeError``, a ``ValueError``).

    Imported on first use: TOML is read only when a config file or a pylock.toml is actually parsed.
    """
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # Python 3.10: tomli is what became tomllib in 3.11
        import tomli as tomllib
    data: dict[str, Any] = tomllib.loads(text)
    return data


def sha256_file(fh: IO[bytes]) -> str:
    """The hex SHA-256 of ``fh`` read from its current position (``hashlib.file_digest`` is 3.11+)."""
    if sys.version_info >= (3, 11):
        return hashlib.file_digest(fh, "sha256").hexdigest()
    digest = hashlib.sha256()
    for chunk in iter(lambda: fh.read(1 << 20), b""):
        digest.update(chunk)
    return digest.hexdigest()
