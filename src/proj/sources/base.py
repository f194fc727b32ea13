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
    # Files stored under the run's artifacts/source/ (e.g. uncommitted.patch, snapshot.tar.gz).
    artifacts: dict[str, bytes] = field(default_factory=dict)

    def to_record(self) -> dict[str, Any]:
        data = {"uri": self.uri, "kind": self.kind, "dir": str(self.project_dir), "version": self.version,
                "commit": self.commit, "branch": self.branch, "remote": self.remote, "subdir": self.subdir,
                "dirty": self.dirty, "untracked": self.untracked, **self.extra}
        if self.artifacts:
            data["artifacts"] = sorted(f"source/{name}" for name in self.artifacts)
        return {k: v for k, v in data.items() if v not in (None, [], {})}

    def replay(self) -> tuple[str, str | None]:
        """(uri, version) that fetch exactly this source again, credential-free (for request.json).

        A git source is pinned to its resolved commit, which the clone cache holds: a detached worker
        re-planning the run needs neither the network nor the credentials the user typed.
        """
        if self.kind == "git":
            return self.uri, self.commit
        return self.uri, self.version
