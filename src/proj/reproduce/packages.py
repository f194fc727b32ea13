"""The package set a recorded lock pins, whatever its format, for package-level environment diffs."""
from __future__ import annotations

from proj.errors import LockParseError
from proj.lockfiles import docker_image
from proj.lockfiles.base import normalise_name
from proj.lockfiles.registry import by_name


def lock_packages(lock_format: str, text: str) -> dict[str, str]:
    """``name -> version`` (conda packages as ``conda:name``; a docker image lock by its fields)."""
    if lock_format == docker_image.NAME:
        return docker_image.fields(text)
    fmt = by_name(lock_format)
    if fmt is None:
        return {}
    try:
        contents = fmt.parse(text, None)
    except LockParseError:
        return {}
    packages = {}
    for package in contents.packages:
        if package.manager == "conda":
            packages[f"conda:{package.name}"] = " ".join(x for x in (package.version, package.build) if x)
        else:  # keyed by the pin's text before ``==`` (extras and all), as runs recorded so far were compared
            name, sep, version = package.pin.partition("==")
            packages[normalise_name(name.strip())] = version.split(";")[0].strip() if sep else package.pin
    return packages


def describe_changes(old: dict[str, str], new: dict[str, str]) -> list[str]:
    """Words a person reads: ``numpy 1.26.4 -> 2.0.1``, ``added: scipy 1.13.0``, ``removed: six 1.16``."""
    changed = [f"{n} {old[n]} -> {new[n]}" for n in sorted(old.keys() & new.keys()) if old[n] != new[n]]
    added = [f"{n} {new[n]}" for n in sorted(new.keys() - old.keys())]
    removed = [f"{n} {old[n]}" for n in sorted(old.keys() - new.keys())]
    lines = changed[:]
    if added:
        lines.append("added: " + ", ".join(added))
    if removed:
        lines.append("removed: " + ", ".join(removed))
    return lines
