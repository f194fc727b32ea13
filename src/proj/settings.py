"""The user's proj configuration file (TOML), read once per process.

Looked up in order: ``$PROJ_CONFIG``, ``$XDG_CONFIG_HOME/proj/config.toml`` (default
``~/.config/proj/config.toml``), then ``proj.toml`` in the same directory. A missing file is an
empty configuration; a malformed one is a clear error naming the file.
"""
from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from proj.errors import UsageError


def config_path() -> Path | None:
    """The configuration file in effect, or None when there is none."""
    explicit = os.environ.get("PROJ_CONFIG")
    if explicit:
        return Path(explicit).expanduser()
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "proj"
    for name in ("config.toml", "proj.toml"):
        if (base / name).is_file():
            return base / name
    return None


def load_config() -> dict[str, Any]:
    """The whole configuration as a dict (empty when no file exists)."""
    path = config_path()
    return _load(str(path)) if path is not None else {}


def section(*keys: str) -> dict[str, Any]:
    """A nested table, e.g. ``section("conda", "channels")`` for ``[conda.channels]``; {} if absent."""
    node: Any = load_config()
    dotted = ""
    for key in keys:
        dotted = f"{dotted}.{key}" if dotted else key
        node = node.get(key, {}) if isinstance(node, dict) else None
        if not isinstance(node, dict):
            raise UsageError(f"{config_path()}: [{dotted}] must be a table")
    return node


@lru_cache(maxsize=8)
def _load(path: str) -> dict[str, Any]:
    # Cached per path: the file is read at most once per process, and only when a caller needs it.
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        if os.environ.get("PROJ_CONFIG"):
            raise UsageError(f"PROJ_CONFIG={path}: file not found") from None
        return {}
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"{path}: invalid configuration file: {exc}") from None
