"""The export archive: a plain tar holding ``manifest.json`` (format, version, runs), then per run
``runs/<id>/run.json`` and its files under ``runs/<id>/files/``. Read back only after every member is checked:
regular files and folders with safe names, nothing else."""
from __future__ import annotations

import io
import json
import os
import tarfile
import time
from pathlib import Path
from typing import IO, Any, Callable, Iterable, Iterator

from proj import __version__
from proj.paths import unsafe_reason
from proj.transfer.bundle import FORMAT, VERSION, Bundle, FileEntry, TransferError, check_file_path
from proj.transfer.registry import ModelBundle

MANIFEST = "manifest.json"
REGISTRY_RECORDS = "registry/models.json"  # format version 2: the registered models (``--registry``)
REGISTRY_BLOBS = "registry/blobs/"  # then each stored file of their versions once, named by its sha256


def write_archive(path: Path, bundles: Iterable[Bundle], source: str, on_run: Callable[[Bundle], None],
                  models: Callable[[], list[ModelBundle]] | None = None) -> list[str]:
    """Write the archive beside ``path`` and rename it into place once whole; the run ids written, in order.

    The manifest goes first with the run list, so runs are read into memory one at a time, never all at once:
    the records are written to a side tar, then both joined (the manifest must lead for streaming readers)."""
    body = path.with_name(f".{path.name}.{os.getpid()}.body.tmp")
    final = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    ids: list[str] = []
    try:
        with tarfile.open(body, "w", format=tarfile.PAX_FORMAT) as tar:
            for bundle in bundles:
                _add_run(tar, bundle)
                ids.append(bundle.source_id)
                on_run(bundle)
            registry = _add_registry(tar, models()) if models is not None else None
        manifest: dict[str, Any] = {"format": FORMAT, "version": 1 if registry is None else VERSION,
                                    "created": time.time(), "proj_version": __version__, "source": source, "runs": ids}
        if registry is not None:
            manifest["registry"] = registry
        with tarfile.open(final, "w", format=tarfile.PAX_FORMAT) as tar, tarfile.open(body, "r") as inner:
            _add_bytes(tar, MANIFEST, json.dumps(manifest, indent=1).encode())
            for member in inner:
                tar.addfile(member, inner.extractfile(member) if member.isfile() else None)
        os.replace(final, path)
    finally:
        for leftover in (body, final):
            leftover.unlink(missing_ok=True)
    return ids


def _add_run(tar: tarfile.TarFile, bundle: Bundle) -> None:
    base = f"runs/{bundle.source_id}"
    _add_bytes(tar, f"{base}/run.json", json.dumps(bundle.record, default=str).encode())
    for entry in bundle.files:
        info = tarfile.TarInfo(f"{base}/files/{entry.path}")
        info.size, info.mtime, info.mode = entry.size, int(time.time()), 0o644
        with entry.open() as fh:
            tar.addfile(info, fh)


def _add_registry(tar: tarfile.TarFile, models: list[ModelBundle]) -> list[str]:
    """``registry/models.json`` (every model's record) and ``registry/blobs/<sha256>`` (each stored file once)."""
    _add_bytes(tar, REGISTRY_RECORDS, json.dumps([m.record for m in models], default=str).encode())
    written: set[str] = set()
    for model in models:
        for sha, opener in model.blobs.items():
            if sha in written:
                continue
            written.add(sha)
            with opener() as fh:
                size = fh.seek(0, os.SEEK_END)
                fh.seek(0)
                info = tarfile.TarInfo(f"{REGISTRY_BLOBS}{sha}")
                info.size, info.mtime, info.mode = size, int(time.time()), 0o644
                tar.addfile(info, fh)
    return [m.name for m in models]


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), int(time.time()), 0o644
    tar.addfile(info, io.BytesIO(data))


class Archive:
    """An export archive opened for reading: every member checked before anything is read from it."""

    def __init__(self, path: Path) -> None:
        if not path.is_file():
            raise TransferError(f"archive {path} does not exist (or is not a file)")
        self.path = path
        try:
            self._tar = tarfile.open(path, "r:*")
            self._members = self._tar.getmembers()
        except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
            raise TransferError(f"archive {path} is damaged or not a tar file: {exc}") from None
        self._by_name: dict[str, tarfile.TarInfo] = {}
        for member in self._members:
            self._check(member)
            self._by_name[member.name] = member
        self.manifest = self._manifest()
        self.source = str(self.manifest.get("source") or path)

    def _check(self, member: tarfile.TarInfo) -> None:
        name = member.name
        reason = unsafe_reason(name)  # '..' parts included
        if reason is not None:
            raise TransferError(f"archive {self.path}: member {name!r} {reason}; refused (nothing was imported)")
        if not (member.isfile() or member.isdir()):
            kind = "a symlink" if member.issym() else "a hard link" if member.islnk() else "not a regular file"
            raise TransferError(f"archive {self.path}: member {name!r} is {kind}; refused (nothing was imported)")
        if name in (REGISTRY_RECORDS, "registry", REGISTRY_BLOBS.rstrip("/")):
            return
        if name.startswith(REGISTRY_BLOBS):
            sha = name[len(REGISTRY_BLOBS):]
            if len(sha) != 64 or not all(c in "0123456789abcdef" for c in sha):
                raise TransferError(f"archive {self.path}: member {name!r} is not named by a sha256; refused "
                                    "(nothing was imported)")
            return
        if name != MANIFEST and not name.startswith("runs/"):
            raise TransferError(f"archive {self.path}: member {name!r} is outside runs/; refused (nothing was imported)")
        parts = name.split("/")
        if len(parts) > 3 and parts[2] == "files":
            check_file_path("/".join(parts[3:]), f"archive {self.path}")

    def _manifest(self) -> dict[str, Any]:
        data = self._json(MANIFEST, "its manifest")
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise TransferError(f"archive {self.path}: {MANIFEST} is not a {FORMAT} manifest (format "
                                f"{data.get('format') if isinstance(data, dict) else None!r})")
        version = data.get("version")
        if not isinstance(version, int) or version < 1 or version > VERSION:
            raise TransferError(f"archive {self.path} has format version {version!r}; this proj reads versions 1 to "
                                f"{VERSION}: upgrade proj")
        if not isinstance(data.get("runs"), list) or not all(isinstance(r, str) for r in data["runs"]):
            raise TransferError(f"archive {self.path}: {MANIFEST} has no list of runs")
        for run_id in data["runs"]:
            if unsafe_reason(run_id) is not None or "/" in run_id:
                raise TransferError(f"archive {self.path}: run id {run_id!r} is not a plain name")
        return data

    def _json(self, name: str, what: str) -> Any:
        member = self._by_name.get(name)
        if member is None or not member.isfile():
            raise TransferError(f"archive {self.path} has no {name} ({what}): not a proj runs archive")
        try:
            return json.loads(self._read(member))
        except ValueError as exc:
            raise TransferError(f"archive {self.path}: {name} is not valid JSON: {exc}") from None

    def _read(self, member: tarfile.TarInfo) -> bytes:
        fh = self._tar.extractfile(member)
        if fh is None:
            raise TransferError(f"archive {self.path}: member {member.name!r} cannot be read")
        try:
            return fh.read()
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise TransferError(f"archive {self.path} is damaged at {member.name!r}: {exc}") from None

    def bundles(self) -> Iterator[Bundle]:
        for run_id in self.manifest["runs"]:
            yield self.bundle(run_id)

    def bundle(self, run_id: str) -> Bundle:
        base = f"runs/{run_id}"
        record = self._json(f"{base}/run.json", f"run {run_id}'s record")
        if not isinstance(record, dict) or record.get("id") != run_id or not isinstance(record.get("files", []), list):
            raise TransferError(f"archive {self.path}: {base}/run.json is not the record of run {run_id}")
        files = []
        for item in record.get("files", []):
            rel = str(item.get("path", "")) if isinstance(item, dict) else ""
            check_file_path(rel, f"archive {self.path}, run {run_id}")
            member = self._by_name.get(f"{base}/files/{rel}")
            if member is None or not member.isfile():
                raise TransferError(f"archive {self.path}: run {run_id}'s file {rel!r} is missing from the archive")
            files.append(FileEntry(rel, member.size, str(item.get("sha256", "")), self._opener(member)))
        return Bundle(record, files)

    def models(self) -> list[ModelBundle]:
        """The registered models the archive holds (none before format version 2, or without ``--registry``)."""
        if "registry" not in self.manifest:
            return []
        records = self._json(REGISTRY_RECORDS, "its registered models")
        if not isinstance(records, list) or not all(isinstance(r, dict) and isinstance(r.get("name"), str)
                                                     for r in records):
            raise TransferError(f"archive {self.path}: {REGISTRY_RECORDS} is not a list of registered models")
        out = []
        for record in records:
            blobs = {}
            for version in record.get("versions", []):
                for entry in version.get("files", []) if isinstance(version, dict) else []:
                    sha = str(entry.get("sha256", "")) if isinstance(entry, dict) else ""
                    member = self._by_name.get(f"{REGISTRY_BLOBS}{sha}")
                    if member is None or not member.isfile():
                        raise TransferError(f"archive {self.path}: registered model {record['name']!r}'s file "
                                            f"{entry.get('path') if isinstance(entry, dict) else entry!r} is missing "
                                            "from the archive")
                    blobs[sha] = self._opener(member)
            out.append(ModelBundle(record, blobs))
        return out

    def _opener(self, member: tarfile.TarInfo) -> Callable[[], IO[bytes]]:
        def open_member() -> IO[bytes]:
            fh = self._tar.extractfile(member)
            if fh is None:
                raise TransferError(f"archive {self.path}: member {member.name!r} cannot be read")
            return fh
        return open_member

    def close(self) -> None:
        self._tar.close()
