"""Content snapshots of directories outside git: a size-capped tar.gz honouring ignore files.

The patterns follow ``.gitignore`` rules (``!`` negation, trailing ``/`` for directories, ``**``,
anchoring by a ``/``), read from ``.gitignore`` files at every level and ``.projignore`` at the root.
"""
from __future__ import annotations

import io
import os
import re
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

CAP_BYTES = int(float(os.environ.get("PROJ_SNAPSHOT_MAX_MB", "50")) * 1024 * 1024)
# Never project code: run stores, VCS data, caches and environments (which can be gigabytes).
ALWAYS_SKIP = frozenset({".proj", ".git", ".hg", ".svn", "__pycache__", ".venv", "venv", ".tox", ".nox",
                         "node_modules", ".mypy_cache", ".pytest_cache", ".ruff_cache", ".ipynb_checkpoints"})
ENV_MARKERS = ("pyvenv.cfg", "conda-meta")


@dataclass
class Rule:
    """One ignore pattern, relative to the directory of the file it came from."""

    base: str  # "" for the root
    regex: re.Pattern[str]
    negate: bool
    dir_only: bool


@dataclass
class Snapshot:
    """The archive (None when over the cap) and what went into it, for the run record."""

    data: bytes | None
    info: dict[str, object] = field(default_factory=dict)


def parse_rules(text: str, base: str) -> list[Rule]:
    """The rules of one ignore file (``base``: its directory, relative to the snapshot root)."""
    rules = []
    for line in text.splitlines():
        line = line.rstrip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        line = line[1:] if negate else line.removeprefix("\\")
        dir_only = line.endswith("/")
        line = line.rstrip("/")
        anchored = "/" in line
        body = _translate(line.lstrip("/"))
        rules.append(Rule(base, re.compile(body if anchored else f"(?:.*/)?{body}"), negate, dir_only))
    return rules


def _translate(pattern: str) -> str:
    """A gitignore glob as a regex over ``/``-separated relative paths."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("/**", i) and i + 3 == len(pattern):
            out.append("/.*")
            i += 3
        elif pattern[i] == "*":
            out.append(".*" if pattern.startswith("**", i) else "[^/]*")
            i += 2 if pattern.startswith("**", i) else 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[" and "]" in pattern[i + 1:]:
            end = pattern.index("]", i + 1)
            out.append("[" + pattern[i + 1:end].replace("!", "^", 1) + "]")
            i = end + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return "".join(out)


def ignored(rules: list[Rule], rel: str, is_dir: bool) -> bool:
    """Whether ``rel`` (relative to the root) is ignored: the last matching rule decides."""
    result = False
    for rule in rules:
        if rule.dir_only and not is_dir:
            continue
        if rule.base and not rel.startswith(rule.base + "/"):
            continue
        local = rel[len(rule.base) + 1:] if rule.base else rel
        if rule.regex.fullmatch(local):
            result = not rule.negate
    return result


def list_files(root: Path) -> list[str]:
    """Every file to snapshot, relative to ``root``, sorted; ignored directories are not entered."""
    rules = _read_rules(root / ".projignore", "")
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root).replace(os.sep, "/")
        rel_dir = "" if rel_dir == "." else rel_dir
        rules = rules + _read_rules(Path(dirpath) / ".gitignore", rel_dir)
        dirnames[:] = sorted(d for d in dirnames if not _skip_dir(Path(dirpath, d), _join(rel_dir, d), rules))
        found += [_join(rel_dir, f) for f in filenames if not ignored(rules, _join(rel_dir, f), False)]
    return sorted(found)


def _skip_dir(path: Path, rel: str, rules: list[Rule]) -> bool:
    if path.name in ALWAYS_SKIP or path.is_symlink():
        return True
    if any((path / marker).exists() for marker in ENV_MARKERS):
        return True  # a virtualenv or conda env under any name
    return ignored(rules, rel, True)


def _read_rules(path: Path, base: str) -> list[Rule]:
    try:
        return parse_rules(path.read_text(errors="replace"), base)
    except OSError:
        return []


def _join(rel_dir: str, name: str) -> str:
    return f"{rel_dir}/{name}" if rel_dir else name


def make_archive(root: Path, files: list[str], cap: int = CAP_BYTES) -> Snapshot:
    """A tar.gz of ``files`` under ``root``, or no archive when their total size exceeds ``cap``."""
    sizes = {rel: _size(root / rel) for rel in files}
    total = sum(sizes.values())
    info: dict[str, object] = {"files": len(files), "bytes": total, "cap_mb": round(cap / 2**20, 1)}
    if total > cap:
        info["skipped"] = f"{total / 2**20:.1f} MB is over the {cap / 2**20:.3g} MB cap (PROJ_SNAPSHOT_MAX_MB)"
        return Snapshot(None, info)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=6) as tar:
        for rel in files:
            if (root / rel).is_file() or (root / rel).is_symlink():
                tar.add(root / rel, arcname=rel, recursive=False)
    return Snapshot(buffer.getvalue(), info)


def _size(path: Path) -> int:
    try:
        return path.lstat().st_size
    except OSError:
        return 0


def snapshot_dir(root: Path, cap: int = CAP_BYTES) -> Snapshot:
    """The snapshot of a directory that is not under version control."""
    return make_archive(root, list_files(root), cap)
