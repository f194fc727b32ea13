"""The resolved source of a run: a directory to run in, plus what is needed to fetch it again."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


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
    # write, or a file already on disk to hard-link (a stored snapshot, a reproduced run's files).
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
        return {k: v for k, v in data.items() if v not in (None, [], {})}

    def collect_artifacts(self, store_root: Path) -> None:
        """Take the deferred snapshot, stored once per content under ``store_root/snapshots/``."""
        if self.snapshot_root is None:
            return
        from proj.sources.snapshot import SNAPSHOT, store_snapshot

        blob, info = store_snapshot(self.snapshot_root, store_root / "snapshots")
        self.extra["snapshot"] = info
        if blob is not None:
            self.extra["snapshot_sha256"] = info["sha256"]
            self.artifacts[SNAPSHOT] = blob
        self.snapshot_root = None

    def write_artifacts(self, dest: Path) -> None:
        """Store the provenance files in a run's ``artifacts/source/`` (files on disk are hard-linked)."""
        from proj.paths import atomic_write, link_or_copy

        for name, data in self.artifacts.items():
            if isinstance(data, Path):
                link_or_copy(data, dest / name)
            else:
                atomic_write(dest / name, data)

    def replay(self) -> tuple[str, str | None]:
        """(uri, version) that fetch exactly this source again, credential-free (for request.json).

        A git source is pinned to its resolved commit, which the clone cache holds: a detached worker
        re-planning the run needs neither the network nor the credentials the user typed.
        """
        if self.kind == "git":
            return self.uri, self.commit
        return self.uri, self.version
