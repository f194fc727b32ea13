"""A registered version's own copy of its model files, content-addressed in the store: ``registry/blobs/<sha256>``
(each file once, read-only), ``registry/manifests/<digest>.json`` (the file set) and ``registry/trees/<digest>/``
(the model folder as hard links to the blobs, loadable as is). Deleting the run later leaves them whole."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from proj.errors import ModelExportError, StoreError
from proj.paths import StoreLayout, atomic_write, contained, link_or_copy

CHUNK = 1 << 20
MANIFEST_VERSION = 1


@dataclass(frozen=True)
class SourceFile:
    """One file to copy in: its name in the model folder, where to read it, and the sha256 recorded for it
    (by the run that wrote it), which the copy must match."""

    path: str
    read: Path
    expected: str | None = None


@dataclass(frozen=True)
class StoredFiles:
    digest: str  # sha256 of the manifest's file list: the version's files_sha256
    tree: Path  # the loadable model folder: the version's storage_location
    files: list[dict[str, Any]]  # {"path", "size", "sha256"}, sorted by path

    @property
    def size(self) -> int:
        return sum(int(f["size"]) for f in self.files)


def files_digest(files: list[dict[str, Any]]) -> str:
    """The digest of a file set: names, sizes and contents, independent of order."""
    canon = sorted((str(f["path"]), int(f["size"]), str(f["sha256"])) for f in files)
    return hashlib.sha256(json.dumps(canon, separators=(",", ":")).encode()).hexdigest()


def _layout(root: Path) -> tuple[Path, Path, Path]:
    base = StoreLayout(root).registry
    return base / "blobs", base / "manifests", base / "trees"


def store_files(root: Path, sources: list[SourceFile], what: str) -> StoredFiles:
    """Copy ``sources`` into the store of ``root`` (each file once by content) and return the file set.

    Every blob is written aside and renamed when whole, the manifest after the blobs and the tree last, so
    a crash leaves at most unreferenced blobs, never a manifest naming a missing one."""
    if not sources:
        raise StoreError(f"{what} has no files to register")
    blobs, manifests, trees = _layout(root)
    files = [{"path": s.path, **_add_blob(blobs, s, what)} for s in sorted(sources, key=lambda s: s.path)]
    digest = files_digest(files)
    manifest = manifests / f"{digest}.json"
    if not manifest.exists():
        atomic_write(manifest, json.dumps({"schema_version": MANIFEST_VERSION, "files": files}, indent=1))
    tree = trees / digest
    if not tree.is_dir():
        _build_tree(blobs, tree, files)
    return StoredFiles(digest, tree, files)


def _add_blob(blobs: Path, source: SourceFile, what: str) -> dict[str, Any]:
    """Copy one file into ``blobs`` while hashing it; the recorded sha256, when given, must match."""
    blobs.mkdir(parents=True, exist_ok=True)
    tmp = blobs / f".in.{os.getpid()}.{os.urandom(6).hex()}"
    digest, size = hashlib.sha256(), 0
    try:
        with open(source.read, "rb") as src, open(tmp, "xb") as out:
            while chunk := src.read(CHUNK):
                digest.update(chunk)
                size += len(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        sha = digest.hexdigest()
        if source.expected and sha != source.expected:
            raise ModelExportError(f"{what}: file {source.path} changed since the run recorded it (sha256 differs); "
                                   "refusing to register it")
        final = blobs / sha[:2] / sha
        if final.exists():
            tmp.unlink()
        else:
            final.parent.mkdir(exist_ok=True)
            os.chmod(tmp, 0o444)  # the trees hard-link it: nobody edits a version's file through its folder
            os.replace(tmp, final)
    except OSError as exc:
        raise StoreError(f"{what}: cannot copy {source.path} into the registry: {exc}") from None
    finally:
        tmp.unlink(missing_ok=True)
    return {"size": size, "sha256": sha}


def _build_tree(blobs: Path, tree: Path, files: list[dict[str, Any]]) -> None:
    staging = tree.with_name(f".{tree.name}.{os.getpid()}.{os.urandom(4).hex()}")
    try:
        for entry in files:
            link_or_copy(blobs / entry["sha256"][:2] / entry["sha256"], contained_new(staging, entry["path"]))
        try:
            staging.rename(tree)
        except OSError:  # another registration of the same files built it first
            if not tree.is_dir():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def contained_new(folder: Path, rel: str) -> Path:
    """Where ``rel`` goes inside ``folder`` (created), refused when the name would leave it."""
    folder.mkdir(parents=True, exist_ok=True)
    return contained(folder, rel, what="model file")


def manifest(root: Path, digest: str) -> list[dict[str, Any]]:
    """The file set a version's ``files_sha256`` names; StoreError when its manifest is missing or damaged."""
    path = _layout(root)[1] / f"{digest}.json"
    try:
        files: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))["files"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise StoreError(f"the registry's manifest {path} cannot be read ({exc})") from None
    return files


def tree(root: Path, digest: str) -> Path:
    return _layout(root)[2] / digest


def blob(root: Path, sha256: str) -> Path:
    return _layout(root)[0] / sha256[:2] / sha256


def check(root: Path, digest: str) -> list[str]:
    """What is wrong with a stored file set (a missing or changed blob), empty when it is whole."""
    problems = []
    for entry in manifest(root, digest):
        path = blob(root, entry["sha256"])
        if not path.is_file():
            problems.append(f"{entry['path']}: its blob {entry['sha256'][:16]} is missing")
        elif _sha256(path) != entry["sha256"]:
            problems.append(f"{entry['path']}: its blob {entry['sha256'][:16]} changed")
    return problems


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def export_files(root: Path, digest: str, dest: Path, what: str) -> Path:
    """Copy a stored file set to ``dest`` (absent or empty), each file checked against its sha256."""
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise ModelExportError(f"destination {dest} exists and is not an empty directory")
    staging = dest.with_name(f".{dest.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        for entry in manifest(root, digest):
            target = contained_new(staging, entry["path"])
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(blob(root, entry["sha256"]), target)
            if _sha256(target) != entry["sha256"]:
                raise ModelExportError(f"{what}: stored file {entry['path']} changed (sha256 differs)")
        if dest.exists():
            dest.rmdir()
        staging.rename(dest)
    except OSError as exc:
        raise ModelExportError(f"cannot export {what} to {dest}: {exc}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return dest
