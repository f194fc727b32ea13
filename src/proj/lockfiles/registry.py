"""Every lock format by the name a run records it under."""
from __future__ import annotations

from proj.lockfiles import conda_lock, docker_image, pylock, requirements
from proj.lockfiles.base import LockFormat

FORMATS: dict[str, LockFormat] = {f.name: f for f in (pylock.FORMAT, conda_lock.FORMAT, requirements.FORMAT,
                                                      requirements.FREEZE_FORMAT, docker_image.FORMAT)}


def by_name(name: str) -> LockFormat | None:
    """The format recorded as ``name`` (``pylock.toml``, ``conda-lock.yml``, ...); None for one proj cannot read."""
    return FORMATS.get(name)
