"""What every request handler shares: the store (one connection per worker thread) and the artifact root."""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

from proj.tracking.open import open_store
from proj.tracking.store import RunStore


@dataclass
class ServerState:
    """Opened once when the app starts; ``store()`` gives the calling thread its own handle, because a
    SQLite connection belongs to one thread and Starlette runs sync handlers in a thread pool."""

    store_uri: str | None
    artifacts_destination: Path | None = None  # None: artifacts live in the store's run folders
    _local: threading.local = field(default_factory=threading.local, repr=False)
    _first: RunStore | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        # Creates a new store before any request; an existing one of another schema is refused, never migrated
        # under running clients (`proj db upgrade`). A PostgreSQL store's run folders: --artifacts-destination.
        self._first = open_store(self.store_uri, create=True, files_root=self.artifacts_destination, upgrade=False)

    @property
    def store_root(self) -> Path:
        assert self._first is not None
        return self._first.root

    @property
    def artifacts_root(self) -> Path:
        """Where uploaded artifacts are written: ``--artifacts-destination``, else the store itself."""
        return self.artifacts_destination or self.store_root

    def store(self) -> RunStore:
        store: RunStore | None = getattr(self._local, "store", None)
        if store is None:
            assert self._first is not None
            store = self._local.store = self._first.reopen()
        return store
