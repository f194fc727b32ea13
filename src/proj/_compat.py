"""Standard-library features older supported Pythons lack, each fallback written once."""
from __future__ import annotations

import sys
from typing import Any


def toml_loads(text: str) -> dict[str, Any]:
    """Parse TOML text (a malformed document raises ``tomllib.TOMLDecodeError``, a ``ValueError``).

    Imported on first use: TOML is read only when a config file or a pylock.toml is actually parsed.
    """
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # Python 3.10: tomli is what became tomllib in 3.11
        import tomli as tomllib
    return tomllib.loads(text)
