"""A password with an unencoded ``/``, ``#``, ``?`` or ``@`` in a git URL is used, but never printed or stored.

The userinfo is taken off the raw string before any URL parsing: a parser would read ``pa/ss#wo?rd`` as
path, fragment and query and echo the password in its error (and the run record).
"""
from __future__ import annotations

import base64
import functools
import http.server
import shutil
import socket
import threading
from pathlib import Path
from typing import Iterator

import pytest

from backends.git.test_credentials import AuthHandler
from helpers.cli import require
from helpers.git_repos import git, make_repo

pytestmark = pytest.mark.git
USER = "alice"
PASSWORDS = ["pa/ss#wo?rd", "p@ss/w#rd", "sl/ash-only", "hash#only1", "ques?tion1", "new\nline1"]


def _leaks(out, store: Path, secret: str) -> list[str]:  # noqa: ANN001
    """Where ``secret`` (or a piece of it around a delimiter) shows up: output, store files, the sqlite bytes."""
    pieces = {secret} | {p for p in _pieces(secret) if len(p) >= 4}
    found = [f"output: {p!r}" for p in pieces if p in out.stdout + out.stderr]
    for path in store.rglob("*") if store.exists() else []:
        if path.is_file():
            data = path.read_bytes()
            found += [f"{path}: {p!r}" for p in pieces if p.encode() in data]
    return found


def _pieces(secret: str) -> list[str]:
    import re

    return [p for p in re.split(r"[/#?@\n]", secret) if p]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # nothing listens there once closed


@pytest.fixture
def server(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[str, str]]:
    """``(host:port, password)``: a bare repo over dumb HTTP behind Basic auth with that password."""
    require(shutil.which("git") is not None, "git executable not found")
    password = request.param
    make_repo(tmp_path / "upstream")
    served = tmp_path / "served"
    served.mkdir()
    git(tmp_path, "clone", "-q", "--bare", str(tmp_path / "upstream"), str(served / "repo.git"))
    git(served / "repo.git", "update-server-info")
    expected = "Basic " + base64.b64encode(f"{USER}:{password}".encode()).decode()
    handler = functools.partial(type("Auth", (AuthHandler,), {"expected": expected}), directory=str(served))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{httpd.server_address[1]}", password
    httpd.shutdown()


@pytest.mark.parametrize("password", PASSWORDS)
@pytest.mark.parametrize("host", ["unreachable", "nonexistent"])
def test_unreachable_host_never_prints_the_password(proj, password: str, host: str) -> None:  # noqa: ANN001
    where = f"127.0.0.1:{_free_port()}" if host == "unreachable" else "nonexistent.invalid"
    out = proj("run", f"https://{USER}:{password}@{where}/org/repo.git#sub", "--env-manager", "local", timeout=60)
    assert out.code != 0, out
    assert _leaks(out, Path(proj.env["PROJ_TRACKING_URI"]), password) == [], out
    assert len(out.stderr.strip().splitlines()) == 1, out
    assert f"https://{where}/org/repo.git" in out.stderr, out  # the host is named, the credentials are not


@pytest.mark.parametrize("server", PASSWORDS[:4], indirect=True)
def test_password_with_delimiters_is_used_and_never_stored(proj, server: tuple[str, str]) -> None:  # noqa: ANN001
    where, password = server
    out = proj("run", f"http://{USER}:{password}@{where}/repo.git#sub", "--env-manager", "local", timeout=120)
    assert out.code == 0 and "version: two" in out.stdout, out  # the password really reached git
    store = Path(proj.env["PROJ_TRACKING_URI"])
    assert _leaks(out, store, password) == [], out
    shown = proj("runs", "show", proj.runs()[0]["id"], "--json")
    assert shown.json()["source"]["uri"] == f"http://{where}/repo.git#sub"
    assert _leaks(shown, store, password) == []


@pytest.mark.parametrize("server", PASSWORDS[:1], indirect=True)
@pytest.mark.parametrize("typed", ["wr/ong#pa?ss", "wr@ng/pa#ss"])
def test_wrong_password_with_delimiters_fails_in_one_masked_line(proj, server: tuple[str, str], typed: str) -> None:  # noqa: ANN001
    where, _ = server
    out = proj("run", f"http://{USER}:{typed}@{where}/repo.git", "--env-manager", "local", timeout=60)
    assert out.code != 0 and "cannot fetch" in out.stderr, out
    assert _leaks(out, Path(proj.env["PROJ_TRACKING_URI"]), typed) == [], out
    assert len(out.stderr.strip().splitlines()) == 1, out


@pytest.mark.parametrize("server", PASSWORDS[:1], indirect=True)
def test_missing_subdir_error_names_the_masked_url(proj, server: tuple[str, str]) -> None:  # noqa: ANN001
    where, password = server
    out = proj("run", f"http://{USER}:{password}@{where}/repo.git#nothere", "--env-manager", "local", timeout=60)
    assert out.code != 0 and "no directory #nothere" in out.stderr, out
    assert _leaks(out, Path(proj.env["PROJ_TRACKING_URI"]), password) == [], out
    assert len(out.stderr.strip().splitlines()) == 1, out


@pytest.mark.parametrize(("text", "masked"), [
    ("https://u:pa/ss#wo?rd@host/org/r.git", "https://***@host/org/r.git"),
    ("fatal: 'https://u:p@ss/x@host/r.git/': no", "fatal: 'https://***@host/r.git/': no"),
    ("https://host/org/repo@v1", "https://host/org/repo@v1"),  # an @ in the path is no userinfo
    ("file:///tmp/a@b/c", "file:///tmp/a@b/c"),
    ("ssh://git:p/w#d@host/x", "ssh://git:***@host/x"),
    ("ssh://git@host/x", "ssh://git@host/x"),
    ("a https://x/y,https://u:p/q@h/z", "a https://x/y,https://***@h/z"),
    ("git+https://TOKEN@host/org/r.git", "git+https://***@host/org/r.git"),  # git+http(s) is http: a bare user is a token
    ("GIT+HTTP://u:p@host/r", "GIT+HTTP://***@host/r"),
    ("git+ssh://git@host/r", "git+ssh://git@host/r"),
    ("pkg @ https://alice:SECRET@host/x.whl", "pkg @ https://***@host/x.whl"),
])
def test_the_one_masking_function(text: str, masked: str) -> None:
    from proj.sources.urls import mask_url

    assert mask_url(text) == masked


def test_every_proj_error_is_masked() -> None:
    from proj.errors import SourceError

    assert str(SourceError("git source https://u:pa\nss#x@host/r: bad")) == "git source https://***@host/r: bad"


def test_env_build_log_is_masked(tmp_path: Path) -> None:
    """uv and pip echo requirement lines as given: the build log (file and console) never shows the secret."""
    from proj.envs.base import BuildLog

    shown: list[str] = []
    log = BuildLog(tmp_path / "env-build.log", shown.append)
    log.write("  x Failed to download `pkg @ https://alice:SECRET@host/x.whl`\n")
    log.write("$ uv pip install git+https://TOKEN@host/r.git")
    text = (tmp_path / "env-build.log").read_text()
    assert "SECRET" not in text and "TOKEN" not in text and "https://***@host/x.whl" in text, text
    assert shown == ["  x Failed to download `pkg @ https://***@host/x.whl`"]


def test_env_build_failure_with_a_credential_url_requirement_is_masked(proj, make_project) -> None:  # noqa: ANN001
    """A real virtualenv build of a requirement URL with a password: not in the output, log or record."""
    root = make_project({"MLproject": "name: s\npython_env: python_env.yaml\nentry_points:\n  main:\n    command: python -V\n",
                         "python_env.yaml": "dependencies:\n  - pkg @ https://alice:SECRET@127.0.0.1:9/x-1.0-py3-none-any.whl\n"})
    out = proj("run", str(root), "--env-manager", "virtualenv")
    assert out.code != 0, out
    assert "SECRET" not in out.stdout + out.stderr, out
    leaks = [p for p in Path(proj.env["PROJ_TRACKING_URI"]).rglob("*") if p.is_file() and b"SECRET" in p.read_bytes()]
    assert leaks == [], leaks
