"""The package set a recorded lock pins, whatever its format, for package-level environment diffs."""
from __future__ import annotations

import json
import re


def lock_packages(lock_format: str, text: str) -> dict[str, str]:
    """``name -> version`` (conda packages as ``conda:name``, pip ones by normalised name)."""
    if lock_format == "pylock.toml":
        from proj.envs.pylock import lock_packages as pylock_packages

        return pylock_packages(text)
    if lock_format == "conda-lock.yml":
        return _conda_lock(text)
    if lock_format == "docker-image":
        try:
            data = json.loads(text)
        except ValueError:
            return {"image": text.strip()}
        return {k: str(v) for k, v in data.items() if isinstance(v, (str, int, float))}
    return _requirement_lines(text)  # pip-freeze, requirements.txt


def _requirement_lines(text: str) -> dict[str, str]:
    packages = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        match = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*==\s*([^\s;]+)", line)
        if match:
            packages[re.sub(r"[-_.]+", "-", match.group(1)).lower()] = match.group(2)
    return packages


def _conda_lock(text: str) -> dict[str, str]:
    import yaml

    doc = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) or {}
    packages = {}
    for entry in doc.get("package") or []:
        prefix = "conda:" if entry.get("manager") == "conda" else ""
        packages[prefix + str(entry.get("name"))] = str(entry.get("version"))
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
