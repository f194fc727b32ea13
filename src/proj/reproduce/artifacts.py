"""Artifact files compared in levels: the same bytes, else the same archive contents, else text that differs
only in volatile lines (timestamps, durations, hostnames, pids, temp paths)."""
from __future__ import annotations

import hashlib
import re
import tarfile
import zipfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Iterator

BYTES, ARCHIVE, VOLATILE, BEHAVIOUR, DIFFERS = "bytes", "archive contents", "volatile lines", "model behaviour", "differs"
MAX_ARCHIVE_MEMBER = 256 << 20  # a member bigger than this is hashed as it is, never normalised in memory
MAX_TEXT = 8 << 20  # texts bigger than this are not inspected line by line

# A member name (or a token inside a member) made of an object id, a uuid or a long hex digest: skops names
# its arrays `140683565038736.npy` after id(obj) and writes the same ids into schema.json on every save.
_ID_TOKEN = re.compile(r"(?<![\w.])(?:\d{10,}|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
                       r"[0-9a-fA-F]{12}|[0-9a-fA-F]{32,64})(?![\w])")
# Inside a member only object ids (long decimals) and dashed uuids are renumbered; a bare hex digest there may
# be a real fingerprint (of data, say), so it counts unless it names an id-named member.
_CONTENT_ID = re.compile(r"(?<![\w.])(?:\d{12,}|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
                         r"[0-9a-fA-F]{12})(?![\w])")

_VOLATILE_TOKENS = [re.compile(p, re.IGNORECASE) for p in (
    r"\d{4}-\d{2}-\d{2}[T ]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?",  # ISO timestamps
    r"\d{4}[-/]\d{2}[-/]\d{2}",  # dates
    r"\d{1,2}/\d{1,2}/\d{2,4}",
    r"\b(mon|tue|wed|thu|fri|sat|sun)[a-z]*,? +(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]* +\d{1,2}",
    r"\b\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?\b",  # clock times
    r"\b\d+(\.\d+)?(e-?\d+)? ?(ns|us|µs|ms|s|sec|secs|seconds?|min|mins|minutes?|h|hrs?|hours?)\b",  # durations
    r"\b(pid|process)[ =:#]*\d+",
    r"(/tmp|/var/tmp|/var/folders|/private/var/folders)/\S*",  # temp paths
    r"\b\d{10}(\.\d+)?\b",  # epoch seconds
)]
# A labelled value whose label says it is the moment, the duration or the machine: the rest of the line.
_VOLATILE_LABEL = re.compile(r"^(?P<label>[^:=]{0,40}?\b(time|date|timestamp|elapsed|duration|took|runtime|"
                             r"started|finished|created|generated|host(name)?|pid|tmp|temp(dir)?)\b"
                             r"[^:=\d]{0,20}?[:=])(?P<value>.*)$", re.IGNORECASE)


@dataclass(frozen=True)
class Level:
    """How one artifact compared: the level that matched (or ``differs``) and what was seen."""

    level: str
    detail: str = ""

    @property
    def same(self) -> bool:
        return self.level != DIFFERS


def file_hash(path: Path) -> str | None:
    try:
        with open(path, "rb") as fh:
            return _stream_hash(fh)
    except OSError:
        return None


def _stream_hash(fh: IO[bytes]) -> str:
    digest = hashlib.sha256()
    for chunk in iter(lambda: fh.read(1 << 20), b""):
        digest.update(chunk)
    return digest.hexdigest()


def compare_files(a: Path, b: Path, *, hash_a: str | None, hash_b: str | None, strict: bool = False) -> Level:
    """The first level at which two files are the same: bytes, archive contents, volatile lines only."""
    if hash_a is not None and hash_a == hash_b:
        return Level(BYTES)
    members_a, members_b = archive_contents(a), archive_contents(b)
    if members_a is not None and members_b is not None:
        if members_a == members_b:
            return Level(ARCHIVE, f"same {sum(members_a.values())} member(s) by content")
        return Level(DIFFERS, _archive_difference(members_a, members_b))
    if not strict:
        lines = volatile_only(a, b)
        if lines:
            return Level(VOLATILE, "differs only in volatile lines (" + _shown(lines) + ")")
    return Level(DIFFERS)


def _shown(lines: list[tuple[int, str]]) -> str:
    first = ", ".join(f"line {n}: {text.strip()[:60]}" for n, text in lines[:2])
    return first + (f", +{len(lines) - 2} more" if len(lines) > 2 else "")


def _archive_difference(a: Counter[tuple[str, str]], b: Counter[tuple[str, str]]) -> str:
    only_a, only_b = a - b, b - a
    names = sorted({name for name, _ in only_a} | {name for name, _ in only_b})
    return f"archive members differ in content: {', '.join(names[:3])}" + (" ..." if len(names) > 3 else "")


# ---- archives ------------------------------------------------------------------------------------------

def archive_contents(path: Path) -> Counter[tuple[str, str]] | None:
    """A zip or tar file as a multiset of (normalised member name, normalised content hash); None if the file
    is not an archive. Member order, timestamps and names made of object ids do not count; ids inside the
    members are renamed after the content they name (or numbered by first appearance)."""
    try:
        members = _read_members(path)
    except (OSError, zipfile.BadZipFile, tarfile.TarError, EOFError, ValueError):
        return None
    if members is None:
        return None
    return normalised_members(members)


def _read_members(path: Path) -> dict[str, bytes] | None:
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            return {info.filename: _capped(zf.open(info)) for info in zf.infolist() if not info.is_dir()}
    if _looks_like_tar(path):
        with tarfile.open(path) as tf:
            out = {}
            for info in tf.getmembers():
                fh = tf.extractfile(info) if info.isfile() else None
                if fh is not None:
                    out[info.name] = _capped(fh)
            return out
    return None


def _looks_like_tar(path: Path) -> bool:
    # tarfile.is_tarfile accepts some plain files; require a tar-ish suffix as well.
    name = path.name.lower()
    return name.endswith((".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")) and tarfile.is_tarfile(path)


def _capped(fh: IO[bytes]) -> bytes:
    with fh:
        data = fh.read(MAX_ARCHIVE_MEMBER + 1)
        if len(data) > MAX_ARCHIVE_MEMBER:  # too big to normalise: stands for itself by its hash
            digest = hashlib.sha256(data)
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
            return b"\x00proj-large-member:" + digest.hexdigest().encode()
        return data


def normalised_members(members: dict[str, bytes]) -> Counter[tuple[str, str]]:
    """The multiset view of archive members (see :func:`archive_contents`)."""
    by_id: dict[str, str] = {}  # an id-named member's id -> "<sha:...>" of its content
    for name, data in members.items():
        for token in _ID_TOKEN.findall(Path(name).name):
            by_id.setdefault(token, f"<sha:{hashlib.sha256(data).hexdigest()[:16]}>")
    numbered: dict[str, str] = {}
    named = re.compile(r"(?<![\w.])(?:" + "|".join(re.escape(t) for t in sorted(by_id, key=len, reverse=True))
                       + r")(?![\w])") if by_id else None

    def rename(match: re.Match[str]) -> str:
        return numbered.setdefault(match.group(0), f"<id{len(numbered)}>")

    out: Counter[tuple[str, str]] = Counter()
    # Plainly named members first, in name order, so ids are numbered the same way in both archives.
    for name in sorted(members, key=lambda n: (bool(_ID_TOKEN.search(n)), n)):
        data = members[name]
        norm_name = _ID_TOKEN.sub("*", name)
        text = _as_text(data)
        if text is not None:
            if named is not None:  # references to id-named members become what those members hold
                text = named.sub(lambda m: by_id[m.group(0)], text)
            data = _CONTENT_ID.sub(rename, text).encode()
        out[(norm_name, hashlib.sha256(data).hexdigest())] += 1
    return out


def _as_text(data: bytes) -> str | None:
    if b"\x00" in data[:8192]:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


# ---- volatile lines ------------------------------------------------------------------------------------

def volatile_only(a: Path, b: Path) -> list[tuple[int, str]]:
    """The (line number, text in B) of every differing line, when all differing lines are volatile;
    an empty list when the files are not both text, differ in length, or differ elsewhere."""
    texts = [_read_text(a), _read_text(b)]
    if texts[0] is None or texts[1] is None:
        return []
    lines_a, lines_b = texts[0].splitlines(), texts[1].splitlines()
    if len(lines_a) != len(lines_b):
        return []
    differing = []
    for n, (la, lb) in enumerate(zip(lines_a, lines_b, strict=True), start=1):
        if la == lb:
            continue
        if mask_volatile(la) != mask_volatile(lb):
            return []
        differing.append((n, lb))
    return differing


def _read_text(path: Path) -> str | None:
    try:
        if path.stat().st_size > MAX_TEXT:
            return None
        return _as_text(path.read_bytes())
    except OSError:
        return None


def mask_volatile(line: str) -> str:
    """The line with everything that names a moment, a duration, a machine, a process or a temp path masked."""
    labelled = _VOLATILE_LABEL.match(line)
    if labelled:
        return labelled.group("label") + " <volatile>"
    for pattern in _VOLATILE_TOKENS:
        line = pattern.sub("<volatile>", line)
    return _hostname_masked(line)


def _hostname_masked(line: str) -> str:
    import socket

    host = socket.gethostname()
    return line.replace(host, "<host>") if host and len(host) > 2 else line


def iter_files(root: Path) -> Iterator[Path]:
    """Regular files under ``root`` (symlinks skipped), sorted."""
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink():
            yield path


__all__ = ["Level", "BYTES", "ARCHIVE", "VOLATILE", "BEHAVIOUR", "DIFFERS", "compare_files", "archive_contents",
           "normalised_members", "volatile_only", "mask_volatile", "file_hash", "iter_files"]
