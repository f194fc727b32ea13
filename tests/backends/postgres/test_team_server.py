"""A team's server on PostgreSQL: `--workers 2` processes over one database, and `--auth` keeping its users in
that database (schema proj_auth), so that two servers over it (replicas behind a proxy) share users, passwords
and grants; the first admin made from the command line."""
from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from helpers.postgres import Cluster
from helpers.servers import proj_server
from proj.tracking.open import open_store

API = "/api/2.0/mlflow"


def call(url: str, path: str, body: dict[str, Any] | None = None, auth: tuple[str, str] | None = None,
         method: str | None = None) -> tuple[int, dict[str, Any]]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url + API + path, data=data, method=method or ("POST" if data else "GET"),
                                     headers={"Content-Type": "application/json"})
    if auth:
        request.add_header("Authorization", "Basic " + base64.b64encode(":".join(auth).encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def test_two_worker_processes_write_into_the_one_database(pg_cluster: Cluster, tmp_path: Path) -> None:
    uri = pg_cluster.uri(pg_cluster.create_database("w"))
    with proj_server(uri, tmp_path, "--workers", "2", "--artifacts-destination", str(tmp_path / "files")) as server:
        ids = [call(server.url, "/experiments/create", {"name": f"e{i}"})[1]["experiment_id"] for i in range(12)]
    store = open_store(uri, create=False, files_root=tmp_path / "files")
    try:  # every worker wrote to PostgreSQL (a worker on a store of its own would have lost them)
        assert {store.get_experiment(i).name for i in ids} == {f"e{i}" for i in range(12)}
    finally:
        store.close()
    assert not (tmp_path / "files" / "proj.db").exists()


def test_auth_users_live_in_the_database_and_every_server_over_it_shares_them(pg_cluster: Cluster,
                                                                              tmp_path: Path) -> None:
    uri = pg_cluster.uri(pg_cluster.create_database("a"))
    made = subprocess.run([sys.executable, "-m", "proj", "server", "user", "add", "admin", "--admin",
                           "--backend-store-uri", uri], input="admin-password-1\n", capture_output=True, text=True,
                          env={**os.environ, "PROJ_STORE_FILES": str(tmp_path / "files")}, timeout=60)
    assert made.returncode == 0, made.stderr
    admin = ("admin", "admin-password-1")
    extra = ("--auth", "--artifacts-destination", str(tmp_path / "files"))
    with proj_server(uri, tmp_path, *extra) as one, proj_server(uri, tmp_path, *extra) as two:
        assert call(one.url, "/experiments/search?max_results=10")[0] == 401
        assert call(two.url, "/experiments/search?max_results=10", auth=("admin", "wrong-password"))[0] == 401
        status, body = call(one.url, "/users/create", {"username": "ana", "password": "ana-password-1"}, auth=admin)
        assert status == 200, body
        exp = call(two.url, "/experiments/create", {"name": "team"}, auth=admin)[1]["experiment_id"]
        grant = {"experiment_id": exp, "username": "ana", "permission": "READ"}
        assert call(two.url, "/experiments/permissions/create", grant, auth=admin)[0] == 200
        ana = ("ana", "ana-password-1")
        # made on one server, known to the other: the same users, passwords and grants
        assert call(two.url, f"/experiments/get?experiment_id={exp}", auth=ana)[0] == 200
        status, body = call(one.url, "/runs/create", {"experiment_id": exp}, auth=ana)
        assert status == 403 and body["error_code"] == "PERMISSION_DENIED"
        assert call(one.url, "/users/update-password", {"username": "ana", "password": "ana-password-2"},
                    auth=admin, method="PATCH")[0] == 200
        assert call(two.url, f"/experiments/get?experiment_id={exp}", auth=("ana", "ana-password-2"))[0] == 200
        # a body over the JSON limit is refused before the permission check reads it whole (413, nothing stored)
        status, body = call(one.url, "/experiments/create", {"name": "x" * (40 << 20)}, auth=admin)
        assert status == 413 and body["error_code"] == "RESOURCE_LIMIT_EXCEEDED", body
    assert not (tmp_path / "files" / "auth.db").exists()
    listed = subprocess.run([sys.executable, "-m", "proj", "server", "user", "list", "--backend-store-uri", uri],
                            capture_output=True, text=True, timeout=60,
                            env={**os.environ, "PROJ_STORE_FILES": str(tmp_path / "files")})
    assert listed.returncode == 0 and {"admin", "ana"} <= set(listed.stdout.split()), listed
