"""What every request handler shares: the store (one connection per worker thread) and the artifact root."""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

from proj.server.artifact_paths import ArtifactPlace, Place
from proj.server.object_store import Bucket
from proj.tracking.open import open_store
from proj.tracking.store import RunStore

DEFAULT_MAX_ARTIFACT_BYTES = 20 << 30  # --max-artifact-size: 20 GiB, room for a model's weights; 0 lifts it


@dataclass
class ServerState:
    """Opened once when the app starts; ``store()`` gives the calling thread its own handle, because a
    SQLite connection belongs to one thread and Starlette runs sync handlers in a thread pool."""

    store_uri: str | None
    # None: artifacts live in the store's run folders; a Bucket: in an object store (server.object_store)
    artifacts_destination: Path | Bucket | None = None
    max_artifact_bytes: int = DEFAULT_MAX_ARTIFACT_BYTES  # one uploaded file's limit (0: none)
    _local: threading.local = field(default_factory=threading.local, repr=False)
    _first: RunStore | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        # Creates a new store before any request; an existing one of another schema is refused, never migrated
        # under running clients (`proj db upgrade`). A PostgreSQL store's run folders: a local
        # --artifacts-destination; with a bucket (no place for logs and locks) PROJ_STORE_FILES or ./.proj.
        local = self.artifacts_destination if isinstance(self.artifacts_destination, Path) else None
        self._first = open_store(self.store_uri, create=True, files_root=local, upgrade=False)

    @property
    def store_root(self) -> Path:
        assert self._first is not None
        return self._first.root

    @property
    def artifacts_root(self) -> Path | Bucket:
        """Where uploaded artifacts are written: ``--artifacts-destination``, else the store itself."""
        return self.artifacts_destination or self.store_root

    def destination_place(self, root: str) -> ArtifactPlace | None:
        """Where the artifact root ``root`` (``<exp>/<run>/artifacts``) is in --artifacts-destination; None
        without one (a run's artifacts are then in its run folder)."""
        if isinstance(self.artifacts_destination, Bucket):
            return self.artifacts_destination.place(root)
        return Place(self.artifacts_destination, root) if self.artifacts_destination is not None else None

    def model_place(self, model_id: str) -> ArtifactPlace:
        """Where a logged model's artifacts are: ``logged_models/<id>/artifacts`` below the artifacts root."""
        rel = f"logged_models/{model_id}/artifacts"
        return self.destination_place(rel) or Place(self.store_root, rel)

    def store(self) -> RunStore:
        store: RunStore | None = getattr(self._local, "store", None)
        if store is None:
            assert self._first is not None
            store = self._local.store = self._first.reopen()
        return store
