"""The web UI: static pages served by ``proj server`` at ``/``, and the UI's own read endpoints."""
