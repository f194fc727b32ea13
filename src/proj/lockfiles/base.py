"""What every lock format reads into: typed package records, and the PEP 503 name rule written once."""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

Manager = Literal["pip", "conda"]


def normalise_name(name: str) -> str:
    """PEP 503 name normalisation: ``Foo_Bar.baz`` -> ``foo-bar-baz`` (how pip compares names)."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class Package:
    """One package a lock pins."""

    name: str  # pip: PEP 503-normalised; conda: conda's own name (already lowercase; ``_`` is significant)
    version: str  # "" when the lock pins a source (a URL, a VCS commit) rather than a version
    manager: Manager
    pin: str  # the line that pins exactly this package in its manager's syntax, as the lock spells it
    source: str = ""  # the file URL, VCS/archive/directory reference, or conda package URL, when recorded
    hash: str = ""  # sha256 hex of that file, when recorded
    build: str = ""  # conda build string


@dataclass
class LockContents:
    """A parsed lock: its packages (in file order) and the facts around them."""

    packages: list[Package] = field(default_factory=list)
    python: str | None = None  # the exact interpreter version, when the lock records one
    channels: list[str] = field(default_factory=list)  # conda channels, in priority order


@dataclass(frozen=True)
class LockFormat:
    """One lock format: its name (as recorded with a run) and its reader.

    ``parse(text, platform)`` raises ``LockParseError`` for text not in the format; ``platform`` (a conda
    subdir such as ``linux-64``) picks one platform of a multi-platform lock, None meaning this machine's.
    """

    name: str
    parse: Callable[[str, str | None], LockContents]
    lists_packages: bool = True  # False: the lock names an image, not packages (docker)
