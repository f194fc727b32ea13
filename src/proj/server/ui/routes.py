"""The UI's routes: the page at ``/``, its static files (shipped in the wheel), and the UI's read endpoints."""
from __future__ import annotations

import os
from os import PathLike
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from proj.server.ui import api

STATIC = Path(__file__).parent / "static"


class UIStaticFiles(StaticFiles):
    """The UI's files, revalidated by ETag on every use (their URLs carry no version, so no max-age)."""

    def file_response(self, full_path: PathLike[str] | str, stat_result: os.stat_result, scope: Scope,
                      status_code: int = 200) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers["Cache-Control"] = "no-cache"
        return response


async def index(request: Request) -> Response:
    # no-cache: the browser revalidates (ETag) so a new proj version's UI is never mixed with an old one's
    return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})


def routes() -> list[BaseRoute]:
    return [Route("/", index, methods=["GET"]), *api.routes(),
            Mount("/static", app=UIStaticFiles(directory=STATIC, follow_symlink=False), name="static")]
