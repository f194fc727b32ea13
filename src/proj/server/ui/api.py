"""The UI's own read endpoints under ``/ajax-api/2.0/proj/`` (see /work/brief-16-overview.md for the contract)."""
from __future__ import annotations

from starlette.routing import BaseRoute


def routes() -> list[BaseRoute]:
    return []
