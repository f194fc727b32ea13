"""``proj server``: MLflow's tracking protocol over the run store (starlette and uvicorn load only here)."""
from __future__ import annotations

import click

from proj.settings import expand_user

LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")


@click.command("server")
@click.option("--backend-store-uri", metavar="URI",
              help="The run store: a directory, file:// or sqlite:///path/proj.db (default: ./.proj, or "
                   "PROJ_TRACKING_URI).")
@click.option("--artifacts-destination", metavar="DIR",
              help="Where uploaded artifacts go (default: the store's own run folders).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=5000, show_default=True, type=click.IntRange(0, 65535), help="Port to listen on.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Worker processes (each serves requests from a thread pool).")
@click.option("--log-level", default="info", show_default=True, type=click.Choice(LOG_LEVELS, case_sensitive=False),
              help="info logs one line per request.")
def server(backend_store_uri: str | None, artifacts_destination: str | None, host: str, port: int, workers: int,
           log_level: str) -> None:
    """Serve MLflow's tracking REST API (and mlflow-artifacts) over proj's run store, so MLflow clients log to it."""
    from proj.server.serve import serve

    destination = expand_user(artifacts_destination, "--artifacts-destination").resolve() \
        if artifacts_destination else None
    serve(backend_store_uri, destination, host, port, workers, log_level.lower())
