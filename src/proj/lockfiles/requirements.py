"""Pinned requirement lines (``pip freeze`` output, a hashed ``requirements.txt``) read as a lock."""
from __future__ import annotations

import re

from proj.lockfiles.base import LockContents, LockFormat, Package, normalise_name

NAME = "requirements.txt"
FREEZE = "pip-freeze"  # what the local backend records: ``pip freeze`` of the interpreter that ran


def requirement_lines(text: str) -> list[str]:
    """Requirement lines of a pip-freeze / pinned requirements file, without comments and ``--hash`` options."""
    joined = re.sub(r"\\\s*\n", " ", text)  # line continuations (uv/pip-compile hashes)
    lines = []
    for raw in joined.splitlines():
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        line = re.sub(r"\s--hash[= ]\S+", "", " " + line).strip()
        if line.startswith(("--", "-i ", "-f ")):
            continue  # index options say where, not what
        lines.append(line)
    return lines


def parse(text: str, platform: str | None = None) -> LockContents:
    """One package per requirement line; the line itself is its pin (kept exactly as written)."""
    return LockContents([_package(line) for line in requirement_lines(text)])


def _package(line: str) -> Package:
    name = re.split(r"[\s=<>!~;@\[]", line, maxsplit=1)[0]
    _, sep, rest = line.partition("==")
    version = rest.split(";")[0].strip() if sep else ""
    source = line.split("@", 1)[1].split(";")[0].strip() if not sep and "@" in line else ""
    return Package(normalise_name(name), version, "pip", line, source)


FORMAT = LockFormat(NAME, parse)
FREEZE_FORMAT = LockFormat(FREEZE, parse)
