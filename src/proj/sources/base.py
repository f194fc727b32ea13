"""The resolved source of a run: a directory to run in, plus what is needed to fetch it again."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from proj._compat import sha256_file
from proj.errors import SourceError, UnsafePath, UsageError
from proj.paths import StoreLayout, atomic_write, contained, shorten, unsafe_reason


@dataclass
class Source:
    """A project directory ready to run, and its provenance for the run record."""

    uri: str  # as the user gave it, credentials removed
    project_dir: Path
    kind: str  # "local" or "git"
    version: str | None = None  # what the user asked for (-v)
    commit: str | None = None
    branch: str | None = None
    remote: str | None = None
    subdir: str | None = None
    dirty: bool | None = None
    untracked: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    # Files stored under the run's artifacts/source/ (e.g. uncommitted.patch, snapshot.tar.gz): bytes to
    # write, or a file already on disk to copy (a stored snapshot, a reproduced run's verified files).
    artifacts: dict[str, bytes | Path] = field(default_factory=dict)
    # A directory outside git to snapshot, which happens only when a run is created (collect_artifacts):
    # planning, `validate` and runs rejected for bad input must not pay for archiving the project.
    snapshot_root: Path | None = None

    def to_record(self) -> dict[str, Any]:
        data = {"uri": self.uri, "kind": self.kind, "dir": str(self.project_dir), "version": self.version,
                "commit": self.commit, "branch": self.branch, "remote": self.remote, "subdir": self.subdir,
                "dirty": self.dirty, "untracked": self.untracked, **self.extra}
        if self.artifacts:
            data["artifacts"] = sorted(f"source/{name}" for name in self.artifacts)
            # What reproduce checks the run folder's copies against: the child can rewrite those, not the store.
            data["artifact_sha256"] = {name: _sha256(blob) for name, blob in sorted(self.artifacts.items())}
        return {k: v for k, v in data.items() if v not in (None, [], {})}

    def collect_artifacts(self, store_root: Path) -> None:
        """Take the deferred snapshot, stored once per content under ``store_root/snapshots/``."""
        if self.snapshot_root is None:
            return
        from proj.sources.snapshot import SNAPSHOT, store_snapshot

        blob, info = store_snapshot(self.snapshot_root, StoreLayout(store_root).snapshots)
        if blob is not None and _sha256(blob) != info["sha256"]:  # damaged in place (an older proj hard-linked it)
            blob.unlink()
            blob, info = store_snapshot(self.snapshot_root, StoreLayout(store_root).snapshots)
        self.extra["snapshot"] = info
        if blob is not None:
            self.extra["snapshot_sha256"] = info["sha256"]
            self.artifacts[SNAPSHOT] = blob
        self.snapshot_root = None

    def write_artifacts(self, dest: Path) -> None:
        """Store the provenance files in a run's ``artifacts/source/`` as read-only copies.

        Never hard links: the run folder is the child's to write (a container mounts it), and a link to the
        store's shared ``snapshots/<sha256>.tar.gz`` would let it rewrite that blob for every run sharing it.
        """
        for name, data in self.artifacts.items():
            atomic_write(dest / name, data.read_bytes() if isinstance(data, Path) else data)
            (dest / name).chmod(0o444)

    def replay(self) -> tuple[str, str | None]:
        """(uri, version) that fetch exactly this source again, credential-free (for request.json).

        A git source is pinned to its resolved commit, which the clone cache holds: a detached worker
        re-planning the run needs neither the network nor the credentials the user typed.
        """
        if self.kind == "git":
            return self.uri, self.commit
        return self.uri, self.version


def _sha256(data: bytes | Path) -> str:
    if isinstance(data, bytes):
        return hashlib.sha256(data).hexdigest()
    with open(data, "rb") as fh:
        return sha256_file(fh)


def check_subdir(subdir: str | None) -> str | None:
    """A ``#subdir`` must stay inside the project: no absolute paths, no ``..`` (checked on the text)."""
    if not subdir:
        return None
    reason = unsafe_reason(subdir)
    if reason is not None:
        raise UsageError(f"#{shorten(subdir)}: the subdirectory {reason}; it must be a relative path inside "
                         f"the project (no '..')")
    return subdir.strip("/")


def subdir_path(root: Path, subdir: str | None, what: str) -> Path:
    """``root/subdir`` once the subdirectory resolves inside ``root`` with symlinks followed (a committed
    ``sub -> /elsewhere`` would otherwise run code from outside the checkout); SourceError if not.

    The path returned is not resolved: callers count its parts back to ``root``."""
    if not subdir:
        return root
    try:
        contained(root, subdir, what=f"{what}: #subdir")
    except UnsafePath as exc:
        raise SourceError(str(exc)) from None
    return root / subdir
