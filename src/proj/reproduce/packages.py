"""The package set a recorded lock pins, whatever its format, for package-level environment diffs."""
from __future__ import annotations

import json
import re


def lock_packages(lock_format: str, text: str) -> dict[str, str]:
    """``name -> version`` (conda packages as ``conda:name``), read with the models' lock parser."""
    from proj.models.envfiles import LockParseError, parse_lock

    if lock_format == "docker-image":
        try:
            data = json.loads(text)
        except ValueError:
            return {"image": text.strip()}
        return {k: str(v) for k, v in data.items() if isinstance(v, (str, int, float))}
    try:
        spec = parse_lock(lock_format, text)
    except LockParseError:
        return {}
    if spec is None:
        return {}
    packages = {}
    for line in spec.pip + spec.build:
        name, sep, version = line.partition("==")
        packages[re.sub(r"[-_.]+", "-", name.strip()).lower()] = version.split(";")[0].strip() if sep else line
    for conda_spec in spec.conda:
        name, _, rest = conda_spec.partition("=")
        packages[f"conda:{name}"] = rest.replace("=", " ", 1)
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
