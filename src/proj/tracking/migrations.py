"""The store's versioned schema steps, one list for SQLite and PostgreSQL; ``meta.schema_steps`` says how many ran."""
from __future__ import annotations

from dataclasses import dataclass

from proj.errors import StoreError

VERSION_KEY = "schema_steps"  # read by the store's one warm-path SELECT (meta keys LIKE 'schema_%')


@dataclass(frozen=True)
class Step:
    number: int
    what: str


# Append only: a released step is never edited. Each backend applies a step its own way (SQLite: the idempotent
# CREATE ... IF NOT EXISTS and added columns of tracking.sqlite; PostgreSQL: tracking.postgres), in one
# transaction with the version it reaches.
STEPS = (
    Step(1, "runs, experiments, MLflow's entities, logged models and the model registry (tables and indexes)"),
    Step(2, "registry events append-only (triggers) and the web UI's runs index"),
    Step(3, "the web UI's metric summaries: metric_blocks and each metric's min/max in latest_metrics (backfilled)"),
)
LATEST = len(STEPS)


def describe(version: int) -> str:
    return f"{version} ({STEPS[version - 1].what})" if 0 < version <= LATEST else str(version)


class SchemaMismatch(StoreError):
    """The store's schema is not the one this proj serves (``proj db upgrade`` or a newer proj)."""


def check_servable(where: str, found: int, uri_hint: str) -> None:
    """The server's rule: never migrate under running clients. Newer: refuse; older: say how to upgrade."""
    if found > LATEST:
        raise SchemaMismatch(f"run store {where} has schema version {found}; this proj knows up to {LATEST}: "
                             f"upgrade proj (the store is left as it is)")
    if found < LATEST:
        raise SchemaMismatch(f"run store {where} has schema version {found}, this proj needs {LATEST}: stop the "
                             f"servers using it, then run `proj db upgrade {uri_hint}`")
