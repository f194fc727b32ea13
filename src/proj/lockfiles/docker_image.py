"""The docker backend's lock: a JSON record of the image (id, digest) and what built it; it lists no packages."""
from __future__ import annotations

import json
from typing import Any

from proj.lockfiles.base import LockContents, LockFormat

NAME = "docker-image"


def fields(text: str) -> dict[str, str]:
    """The lock's scalar fields (``image_id``, ``base_id``, ``context_hash``, ...); a non-JSON lock is its image."""
    data = _document(text)
    if data is None:
        return {"image": text.strip()}
    return {k: str(v) for k, v in data.items() if isinstance(v, (str, int, float))}


def build_inputs(text: str) -> tuple[Any, ...] | None:
    """What the image was built from (base image, context hash, Dockerfile): equal inputs, the same env."""
    data = _document(text)
    if data is None:
        return None
    return (data.get("base_id"), data.get("context_hash"), data.get("dockerfile"))


def parse(text: str, platform: str | None = None) -> LockContents:
    """No packages: an image's contents are not listed in its lock."""
    return LockContents()


def _document(text: str) -> dict[str, Any] | None:
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


FORMAT = LockFormat(NAME, parse, lists_packages=False)
