"""One run as it travels between stores: its record (plain JSON data) and its files, each with a sha256."""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Callable

from proj.errors import UsageError
from proj.paths import unsafe_reason
from proj.tracking.records import json_number

FORMAT = "proj-runs"  # what the manifest's "format" says, so another tar is told apart
VERSION = 2  # the archive layout (2: with registered models, written only then); a reader refuses a newer one
IMPORTED_FROM = "proj.imported.from"  # "<source>#<run id>": what makes a second import skip the run
INCOMPLETE = "proj.import.incomplete"  # set on a server run while it is written; gone once it is whole
FILE_ROOTS = ("artifacts", "logs")  # what a run's files are under, in the archive and in a run folder
CHUNK = 1 << 20


class TransferError(UsageError):
    """Bad input to an export or import: a missing or damaged archive, a path that escapes, an unknown store."""


@dataclass(frozen=True)
class FileEntry:
    """A file of a run: ``path`` is ``artifacts/...`` or ``logs/...``; ``open`` gives its bytes."""

    path: str
    size: int
    sha256: str
    open: Callable[[], IO[bytes]]


@dataclass
class Bundle:
    """``record`` is the run's data (see ``record_keys``), ``files`` its files, ``origin`` "<source>#<id>"."""

    record: dict[str, Any]
    files: list[FileEntry] = field(default_factory=list)

    @property
    def source_id(self) -> str:
        return str(self.record["id"])

    @property
    def origin(self) -> str:
        return str(self.record["origin"])

    @property
    def parent(self) -> str | None:
        parent = self.record.get("parent_run_id")
        return str(parent) if parent else None

    def metric_points(self) -> int:
        return len(self.record.get("metrics", []))

    def file_bytes(self) -> int:
        return sum(f.size for f in self.files)


def check_file_path(path: str, where: str) -> None:
    """Refuse a file name that would land outside a run folder (``..``, absolute, NUL, backslash)."""
    reason = unsafe_reason(path)
    if reason is None and path.split("/", 1)[0] not in FILE_ROOTS:
        reason = f"is not under {' or '.join(FILE_ROOTS)}/"
    if reason is None and any(part in ("", ".", "..") for part in path.split("/")):
        reason = "has an empty, '.' or '..' part"
    if reason is not None:
        raise TransferError(f"{where}: file path {path!r} {reason}; refused (nothing was imported from it)")


def sha256_of(opener: Callable[[], IO[bytes]]) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with opener() as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


number_out = json_number  # a metric value as JSON can carry it (NaN and the infinities as MLflow spells them)


def number_in(value: Any) -> float:
    return float({"NaN": "nan", "Infinity": "inf", "-Infinity": "-inf"}.get(value, value)) \
        if isinstance(value, str) else float(value)


def parents_first(bundles: list[Bundle]) -> list[Bundle]:
    """``bundles`` ordered so each run comes after its parent when both are there (start time otherwise)."""
    by_id = {b.source_id: b for b in bundles}
    ordered: list[Bundle] = []
    done: set[str] = set()

    def add(bundle: Bundle, seen: set[str]) -> None:
        if bundle.source_id in done or bundle.source_id in seen:
            return  # a loop of parent links (a damaged store) must not recurse forever
        parent = by_id.get(bundle.parent or "")
        if parent is not None:
            add(parent, seen | {bundle.source_id})
        done.add(bundle.source_id)
        ordered.append(bundle)

    for bundle in sorted(bundles, key=lambda b: float(b.record.get("start_time") or 0)):
        add(bundle, set())
    return ordered


def file_opener(path: Path) -> Callable[[], IO[bytes]]:
    return lambda: open(path, "rb")


def files_under(top: Path, prefix: str) -> list["FileEntry"]:
    """Every regular file below ``top`` as ``<prefix>/<relative path>``, in name order with its sha256;
    symlinks are never followed (a run or a client wrote these folders)."""
    out: list[FileEntry] = []
    for dirpath, dirnames, filenames in os.walk(top):
        base = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if not (base / d).is_symlink())
        for name in sorted(filenames):
            path = base / name
            if path.is_symlink() or not path.is_file():
                continue
            opener = file_opener(path)
            sha, size = sha256_of(opener)
            out.append(FileEntry(f"{prefix}/{path.relative_to(top).as_posix()}", size, sha, opener))
    return out
