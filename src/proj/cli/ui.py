"""``proj ui``: the web UI over the local run store, on 127.0.0.1 (the server loads only when it runs)."""
from __future__ import annotations

import os
import sys
import threading

import click

from proj.errors import UsageError
from proj.tracking.open import server_uri


def _browser_available() -> bool:
    """A browser that can show a page here: a desktop session (or macOS/Windows), and one webbrowser finds."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return False
    import webbrowser  # stdlib, but only this command needs it (``proj --help`` stays light)

    try:
        webbrowser.get()
    except webbrowser.Error:
        return False
    return True


def _open_when_up(url: str) -> None:
    """Open the page once the server answers /health (a browser opened earlier would show an error page)."""

    import urllib.request
    import webbrowser

    def wait_then_open() -> None:
        for _ in range(300):
            try:
                with urllib.request.urlopen(url + "health", timeout=1):
                    webbrowser.open(url)
                    return
            except OSError:
                threading.Event().wait(0.1)

    threading.Thread(target=wait_then_open, daemon=True).start()


@click.command("ui")
@click.option("--tracking-uri", metavar="URI",
              help="The local run store: a directory, file:// or sqlite:///path/proj.db (default: ./.proj, or "
                   "PROJ_TRACKING_URI).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=5000, show_default=True, type=click.IntRange(0, 65535), help="Port to listen on.")
@click.option("--no-browser", is_flag=True, help="Only print the URL; do not open a browser.")
def ui(tracking_uri: str | None, host: str, port: int, no_browser: bool) -> None:
    """Serve the web UI (runs, charts, comparison, registry) over the local run store and print its URL."""
    remote = server_uri(tracking_uri)
    if remote:
        raise UsageError(f"proj ui serves a local run store, and {remote} is a tracking server: its UI is that "
                         f"server's own page ({remote.rstrip('/')}/)")
    from proj.server.serve import serve

    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{port}/"

    def announce() -> None:  # once the port is free and the store opened: a URL printed then works
        click.echo(f"proj UI: {url}", err=False)
        sys.stdout.flush()
        if not no_browser and _browser_available():
            _open_when_up(url)

    serve(tracking_uri, None, host, port, 1, "warning", ready=announce)
