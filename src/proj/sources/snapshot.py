"""Content snapshots of directories outside git: a size-capped tar.gz honouring ignore files.

Archives are deterministic (sorted names, fixed mtime/owner, gzip mtime 0), so equal content gives equal
bytes: a store keeps each one once, as ``snapshots/<sha256>.tar.gz``, and runs hard-link to it. An index
in the user cache dir maps a directory's (file list + stat signature) to that digest, so a run over an
unchanged directory only walks and stats it.

The patterns follow ``.gitignore`` rules (``!`` negation, trailing ``/`` for directories, ``**``,
anchoring by a ``/``), read from ``.gitignore`` files at every level and ``.projignore`` at the root.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import stat
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from proj import settings
from proj._compat import sha256_file
from proj.paths import cache

SNAPSHOT = "snapshot.tar.gz"  # its name under a run's artifacts/source/ (reproduce reads it there)
FIXED_MTIME = 315532800  # 1980-01-01 (as in wheels): archive bytes must not depend on when files were touched
ARCHIVE_FORMAT = 1  # part of the index signature: a change to the archive layout invalidates old digests
RACY_NS = 2_000_000_000  # an edit this recent may not have moved mtime yet: such a state is not indexed
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


def cap_bytes() -> int:
    return int(settings.number("PROJ_SNAPSHOT_MAX_MB") * 1024 * 1024)


def make_archive(root: Path, files: list[str], cap: int | None = None) -> Snapshot:
    """A tar.gz of ``files`` under ``root`` in memory, or no archive when their total size exceeds ``cap``."""
    info = _info([_lstat(root / rel) for rel in files], cap_bytes() if cap is None else cap)
    if "skipped" in info:
        return Snapshot(None, info)
    buffer = io.BytesIO()
    _write_tar(buffer, root, files)
    return Snapshot(buffer.getvalue(), info)


def _info(stats: list[os.stat_result | None], cap: int) -> dict[str, object]:
    total = sum(st.st_size for st in stats if st is not None)
    info: dict[str, object] = {"files": len(stats), "bytes": total, "cap_mb": round(cap / 2**20, 1)}
    if total > cap:
        info["skipped"] = f"{total / 2**20:.1f} MB is over the {cap / 2**20:.3g} MB cap (PROJ_SNAPSHOT_MAX_MB)"
    return info


def _lstat(path: Path) -> os.stat_result | None:
    try:
        return path.lstat()
    except OSError:
        return None  # vanished since it was listed


def _write_tar(out: IO[bytes], root: Path, files: list[str]) -> None:
    """A deterministic tar.gz of ``files`` (already sorted) onto ``out``."""
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, compresslevel=6, mtime=0) as gz, \
            tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for rel in files:
            _add(tar, root / rel, rel)


def _add(tar: tarfile.TarFile, path: Path, rel: str) -> None:
    """One regular file or symlink, with only what matters to the code kept: name, content, exec bit."""
    st = _lstat(path)
    if st is None:
        return
    info = tarfile.TarInfo(rel)
    info.mtime, info.uid, info.gid, info.uname, info.gname = FIXED_MTIME, 0, 0, "", ""
    info.mode = 0o755 if st.st_mode & 0o111 else 0o644  # the umask of whoever wrote it is noise
    if stat.S_ISLNK(st.st_mode):
        info.type, info.linkname = tarfile.SYMTYPE, os.readlink(path)
        tar.addfile(info)
    elif stat.S_ISREG(st.st_mode):
        info.size = st.st_size
        with open(path, "rb") as fh:
            tar.addfile(info, fh)


def snapshot_dir(root: Path, cap: int | None = None) -> Snapshot:
    """The snapshot of a directory that is not under version control, in memory."""
    return make_archive(root, list_files(root), cap)


def store_snapshot(root: Path, blobs: Path, cap: int | None = None) -> tuple[Path | None, dict[str, object]]:
    """The snapshot of ``root`` kept once per content as ``blobs/<sha256>.tar.gz``: (that file, info).

    None (and ``info["skipped"]``) when over the cap. An unchanged directory whose archive ``blobs``
    already holds costs a walk and a stat per file: no tar, no gzip, no hashing.
    """
    files = list_files(root)
    stats = [_lstat(root / rel) for rel in files]
    info = _info(stats, cap_bytes() if cap is None else cap)
    if "skipped" in info:
        return None, info
    signature = _signature(files, stats)
    digest = _index_get(root, signature)
    if digest is None or not (blobs / f"{digest}.tar.gz").is_file():
        digest = _write_blob(root, files, blobs)
        if not _racy(stats):
            _index_put(root, signature, digest)
    return blobs / f"{digest}.tar.gz", {**info, "sha256": digest}


def _signature(files: list[str], stats: list[os.stat_result | None]) -> str:
    digest = hashlib.sha256(f"format {ARCHIVE_FORMAT}\n".encode())
    for rel, st in zip(files, stats, strict=True):
        sig = (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_mode) if st else None
        digest.update(f"{rel}\0{sig}\n".encode("utf-8", "surrogateescape"))
    return digest.hexdigest()


def _racy(stats: list[os.stat_result | None]) -> bool:
    """Whether a file changed so recently that a same-size edit could still leave its stats unchanged."""
    newest = max((st.st_mtime_ns for st in stats if st), default=0)
    return newest > time.time_ns() - RACY_NS


def _write_blob(root: Path, files: list[str], blobs: Path) -> str:
    """Archive ``files`` into ``blobs`` under their digest (temp file + rename: readers never see a torn
    archive, and concurrent runs writing the same content simply agree)."""
    blobs.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".partial-", suffix=".tar.gz", dir=blobs)
    try:
        with os.fdopen(fd, "w+b") as fh:
            _write_tar(fh, root, files)
            fh.flush()
            os.fsync(fh.fileno())
            fh.seek(0)
            digest = sha256_file(fh)
        final = blobs / f"{digest}.tar.gz"
        if final.is_file():  # already stored (index lost or another cache dir): keep the inode runs link to
            Path(tmp).unlink()
        else:
            os.chmod(tmp, 0o444)  # shared by every run that links it: nobody should edit it in place
            os.replace(tmp, final)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return digest


def _index_file(root: Path) -> Path:
    """One small entry per directory (its latest state), so the index stays bounded by directories used."""
    key = hashlib.sha256(str(root).encode("utf-8", "surrogateescape")).hexdigest()[:32]
    return cache().snapshot_index(key)


def _index_get(root: Path, signature: str) -> str | None:
    try:
        entry = json.loads(_index_file(root).read_text())
    except (OSError, ValueError):
        return None
    return entry.get("sha256") if isinstance(entry, dict) and entry.get("signature") == signature else None


def _index_put(root: Path, signature: str, digest: str) -> None:
    from proj.paths import atomic_write

    try:
        atomic_write(_index_file(root), json.dumps({"root": str(root), "signature": signature, "sha256": digest}))
    except OSError:
        pass  # without the index the next run archives again: slower, still correct
