"""The UI's routes: the page at ``/``, its static files (shipped in the wheel), and the UI's read endpoints."""
from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from proj.server.ui import api

STATIC = Path(__file__).parent / "static"


async def index(request: Request) -> Response:
    # no-cache: the browser revalidates (ETag) so a new proj version's UI is never mixed with an old one's
    return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})


def routes() -> list[BaseRoute]:
    return [Route("/", index, methods=["GET"]), *api.routes(),
            Mount("/static", app=StaticFiles(directory=STATIC, follow_symlink=False), name="static")]
