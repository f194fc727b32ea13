"""Standard-library features older supported Pythons lack, each fallback written once."""
from __future__ import annotations

from typing import Any


def toml_loads(text: str) -> dict[str, Any]:
    """Parse TOML text (a malformed document raises ``tomllib.TOMLDecodeError``, a ``ValueError``).

    Imported on first use: TOML is read only when a config file or a pylock.toml is actually parsed.
    """
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10: tomli is what became tomllib in 3.11
        import tomli as tomllib  # type: ignore[no-redef]
    return tomllib.loads(text)
