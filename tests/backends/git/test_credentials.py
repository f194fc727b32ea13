"""Credentials in git URLs: used to fetch, never stored, logged or printed.

A tiny HTTP server demands Basic auth and serves a bare repository over git's dumb HTTP protocol, so
the token really has to reach git (through GIT_ASKPASS) for the run to work.
"""
from __future__ import annotations

import base64
import functools
import http.server
import shutil
import threading
from pathlib import Path
from typing import Iterator

import pytest

from helpers.cli import require
from helpers.git_repos import git, make_repo

pytestmark = pytest.mark.git
USER, TOKEN = "alice", "s3cr3t-T0KEN-xyz"


class AuthHandler(http.server.SimpleHTTPRequestHandler):
    expected = "Basic " + base64.b64encode(f"{USER}:{TOKEN}".encode()).decode()

    def do_GET(self) -> None:
        if self.headers.get("Authorization") != self.expected:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="git"')
            self.end_headers()
            return
        super().do_GET()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    """``http://127.0.0.1:PORT``, serving ``repo.git`` (a bare copy of the test repo) behind Basic auth."""
    require(shutil.which("git") is not None, "git executable not found")
    make_repo(tmp_path / "upstream")
    served = tmp_path / "served"
    served.mkdir()
    git(tmp_path, "clone", "-q", "--bare", str(tmp_path / "upstream"), str(served / "repo.git"))
    git(served / "repo.git", "update-server-info")
    handler = functools.partial(AuthHandler, directory=str(served))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def _files_mention(root: Path, secret: str) -> list[str]:
    hits = [str(p) for p in root.rglob("*") if secret in p.name]
    hits += [str(p) for p in root.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]
    return hits


def test_token_is_used_but_never_stored_or_printed(proj, server, tmp_path) -> None:
    cache = tmp_path / "own-cache"
    out = proj("run", f"http://{USER}:{TOKEN}@{server}/repo.git#sub", "--env-manager", "local",
               env={"PROJ_CACHE_DIR": str(cache)})
    assert out.code == 0 and "version: two" in out.stdout, out
    assert TOKEN not in out.stdout + out.stderr
    shown = proj("runs", "show", proj.runs()[0]["id"], "--json")
    assert TOKEN not in shown.stdout and USER not in shown.stdout
    assert shown.json()["source"]["uri"] == f"http://{server}/repo.git#sub"
    assert _files_mention(cache, TOKEN) == []
    again = proj("run", f"http://{USER}:{TOKEN}@{server}/repo.git#sub", "--env-manager", "local",
                 env={"PROJ_CACHE_DIR": str(cache)})
    assert again.code == 0 and TOKEN not in again.stdout + again.stderr, again


def test_token_is_not_in_the_run_folder(proj, server) -> None:
    out = proj("run", f"http://{USER}:{TOKEN}@{server}/repo.git#sub", "--env-manager", "local")
    assert out.code == 0, out
    assert _files_mention(Path(proj.env["PROJ_TRACKING_URI"]), TOKEN) == []


@pytest.mark.parametrize("userinfo", [f"{USER}:wrong-{TOKEN}", f"{TOKEN}"])
def test_a_failing_url_with_credentials_never_prints_them(proj, server, userinfo) -> None:
    out = proj("run", f"http://{userinfo}@{server}/repo.git", "--env-manager", "local", timeout=60)
    assert out.code != 0 and "cannot fetch" in out.stderr, out
    assert TOKEN not in out.stdout + out.stderr and "wrong-" not in out.stderr, out
    assert len(out.stderr.strip().splitlines()) == 1, out


def test_missing_repository_with_credentials_is_masked(proj, server) -> None:
    out = proj("run", f"http://{USER}:{TOKEN}@{server}/nothere.git", "--env-manager", "local", timeout=60)
    assert out.code != 0 and f"http://{server}/nothere.git" in out.stderr, out
    assert TOKEN not in out.stderr, out
