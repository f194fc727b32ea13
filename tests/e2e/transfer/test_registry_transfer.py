"""`proj runs export --registry` / `proj runs import --registry` with real parts: models registered from real `proj
run`s (versions, stages, aliases, tags, descriptions, protection, a deleted version) move into another local store and
into PostgreSQL (a real cluster) whole, with their stored files byte-exact and each version linked to the imported
run; importing again skips, a name taken by another model is refused in one line (or kept with
--skip-existing-models), and a damaged file leaves no model."""
from __future__ import annotations

import json
import tarfile
from pathlib import Path
from typing import Any

import pytest

from e2e.transfer.test_export_import import file_hashes, make_runs, one_error_line, store_runs
from e2e.transfer.test_postgres_dest import rewrite
from helpers.cli import Proj
from helpers.servers import client_json, proj_server

# What must be the same at the destination (the stored copy's folder is the destination's own).
VERSION_KEYS = ("name", "version", "creation_time", "last_updated_time", "source", "run_id", "user_id",
                "current_stage", "description", "status", "run_link", "files_sha256", "tags", "aliases", "deleted")


def registry_of(proj: Proj, extra: tuple[str, ...], env: dict[str, str] | None = None) -> dict[str, Any]:
    models = proj("models", "registered", "--json", *extra, env=env)
    assert models.code == 0, models
    out: dict[str, Any] = {}
    for model in models.json():
        versions = proj("models", "versions", model["name"], "--json", *extra, env=env)
        history = proj("models", "history", model["name"], "--json", *extra, env=env)
        assert versions.code == 0 and history.code == 0, (versions, history)
        out[model["name"]] = {
            "model": {k: model[k] for k in ("name", "creation_time", "last_updated_time", "description", "user_id",
                                            "aliases", "protected")},
            "tags": {k: v for k, v in model["tags"].items() if k != "proj.imported.from"},
            "versions": [{k: v[k] for k in VERSION_KEYS} for v in versions.json()],
            "history": [{k: e[k] for k in ("time", "user", "version", "kind", "key", "old", "new", "reason")}
                        for e in history.json()],
        }
    return out


def exported_files(proj: Proj, uri: str, extra: tuple[str, ...], dest: Path,
                   env: dict[str, str] | None = None) -> dict[str, str]:
    out = proj("models", "export", uri, str(dest), *extra, env=env)
    assert out.code == 0, out
    return file_hashes(dest)


def make_registry(proj: Proj, ids: list[str]) -> None:
    path = proj.show(ids[0])["models"][0]["path"]
    steps = [
        ("models", "register", f"runs:/{ids[0]}/{path}", "fraud", "--description", "first", "--tag", "data=v1"),
        ("models", "register", f"runs:/{ids[1]}/{path}", "fraud", "--tag", "data=v2"),
        ("models", "register", f"runs:/{ids[0]}/{path}", "fraud"),
        ("models", "delete", "fraud/3"),
        ("models", "alias", "fraud", "champion", "1"),
        ("models", "stage", "fraud", "2", "Staging"),
        ("models", "tag", "fraud", "team=risk"),
        ("models", "describe", "fraud", "catches fraud"),
        ("models", "protect", "fraud", "--alias", "champion"),
        ("models", "register", f"runs:/{ids[1]}/{path}", "other"),
    ]
    for step in steps:
        out = proj(*step)
        assert out.code == 0, out


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_registry_moves_with_the_runs_into_local_and_postgresql(proj: Proj, make_project: Any, tmp_path: Path,
                                                               pg_store_uri: str) -> None:
    ids = make_runs(proj, make_project)
    make_registry(proj, ids)
    before = registry_of(proj, ())
    assert [v["version"] for v in before["fraud"]["versions"]] == [1, 2]  # the deleted 3 is not listed
    files_before = exported_files(proj, "models:/fraud/1", (), tmp_path / "v1-src")
    archive = tmp_path / "all.tar"
    out = proj("runs", "export", "--all", "--registry", "-o", str(archive), "--json")
    assert out.code == 0 and out.json()["models"] == ["fraud", "other"], out
    assert "2 registered model(s) with 4 version(s)" in proj("runs", "export", "--all", "--registry", "-o",
                                                             str(tmp_path / "again.tar")).stdout
    with tarfile.open(archive) as tar:
        blobs = [n for n in tar.getnames() if n.startswith("registry/blobs/")]
    assert blobs and len(blobs) == len(set(blobs))  # each stored file once

    for label, extra, env in (("local", ("--tracking-uri", str(tmp_path / "dest")), None),
                              ("postgresql", ("--tracking-uri", pg_store_uri),
                               {"PROJ_STORE_FILES": str(tmp_path / "pg-files")})):
        out = proj("runs", "import", str(archive), "--registry", *extra, "--json", env=env)
        assert out.code == 0, (label, out)
        assert out.json()["models"] == ["fraud", "other"] and out.json()["model_versions"] == 4, (label, out)
        after = registry_of(proj, extra, env)
        assert after == before, label
        assert exported_files(proj, "models:/fraud@champion", extra, tmp_path / f"v1-{label}", env) == files_before
        shown = proj("runs", "show", ids[1], "--json", *extra, env=env)
        assert shown.code == 0, shown
        again = proj("runs", "import", str(archive), "--registry", *extra, "--json", env=env)
        assert again.code == 0 and again.json()["models_skipped"] == ["fraud", "other"], (label, again)
        assert again.stderr.count("skipped registered model") == 2, again
        assert registry_of(proj, extra, env) == before, label
    # the files are the version's own copy: the run folder gone at the destination, the version still loads
    dest = tmp_path / "dest"
    for run_dir in (dest / "runs").iterdir():
        for blob in run_dir.rglob("*"):
            if blob.is_file():
                blob.unlink()
    assert exported_files(proj, "models:/fraud/2", ("--tracking-uri", str(dest)), tmp_path / "v2-after") == \
        exported_files(proj, "models:/fraud/2", (), tmp_path / "v2-src")


def test_a_model_name_taken_at_the_destination_is_refused_or_kept(proj: Proj, make_project: Any,
                                                                  tmp_path: Path) -> None:
    ids = make_runs(proj, make_project)
    make_registry(proj, ids)
    archive = tmp_path / "all.tar"
    assert proj("runs", "export", "--all", "--registry", "-o", str(archive)).code == 0
    dest = tmp_path / "dest"
    theirs = ("--tracking-uri", str(dest))
    path = proj.show(ids[0])["models"][0]["path"]
    # the destination has its own "fraud" (from its own run)
    assert proj("runs", "import", str(archive), "--run", ids[0], *theirs).code == 0
    assert proj("models", "register", f"runs:/{ids[0]}/{path}", "fraud", "--description", "theirs", *theirs).code == 0
    mine = registry_of(proj, theirs)
    line = one_error_line(proj("runs", "import", str(archive), "--registry", *theirs), 2)
    assert "'fraud'" in line and "--skip-existing-models" in line and "nothing was imported" in line, line
    assert registry_of(proj, theirs) == mine and [r["id"] for r in store_runs(proj, dest)] == [ids[0]]

    out = proj("runs", "import", str(archive), "--registry", "--skip-existing-models", *theirs, "--json")
    assert out.code == 0 and out.json()["models"] == ["other"] and out.json()["models_skipped"] == ["fraud"], out
    assert "already exists" in out.stderr, out
    after = registry_of(proj, theirs)
    assert after["fraud"] == mine["fraud"] and set(after) == {"fraud", "other"}
    assert sorted(r["id"] for r in store_runs(proj, dest)) == sorted(ids)

    # a stored file damaged in the archive: the runs go in, that model does not (no row), the good archive completes
    third = tmp_path / "third"
    blob = next(n for n in tarfile.open(archive).getnames() if n.startswith("registry/blobs/"))
    bad = rewrite(archive, tmp_path / "bad.tar", lambda name, data: bytes(len(data)) if name == blob else data)
    line = one_error_line(proj("runs", "import", str(bad), "--registry", "--tracking-uri", str(third)))
    assert "registered model" in line and "sha256" in line, line
    listed = proj("models", "registered", "--json", "--tracking-uri", str(third))
    assert listed.code == 0 and [m["name"] for m in listed.json()] in ([], ["other"]), listed
    assert not [p for p in (third / "registry").iterdir() if p.name.startswith(".import-")]
    out = proj("runs", "import", str(archive), "--registry", "--tracking-uri", str(third), "--json")
    assert out.code == 0 and "fraud" in out.json()["models"], out
    assert registry_of(proj, ("--tracking-uri", str(third)))["fraud"] == registry_of(proj, ())["fraud"]


# What MLflow's client sees of the registry on a server, and the files of fraud@champion by their sha256.
MLFLOW_REGISTRY = """
import hashlib, os, tempfile
out["models"] = {}
for m in client.search_registered_models():
    versions = client.search_model_versions(f"name='{m.name}'")
    out["models"][m.name] = {"description": m.description, "tags": m.tags, "aliases": {k: str(v) for k, v in m.aliases.items()},
                             "versions": {str(v.version): {"stage": v.current_stage, "tags": v.tags, "run_id": v.run_id,
                                                           "description": v.description} for v in versions}}
where = mlflow.artifacts.download_artifacts("models:/fraud@champion", dst_path=tempfile.mkdtemp())
out["files"] = {os.path.relpath(os.path.join(r, f), where): hashlib.sha256(open(os.path.join(r, f), "rb").read()).hexdigest()
                for r, _, fs in os.walk(where) for f in fs}
"""


@pytest.mark.mlflow
@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_registry_into_a_real_proj_server_read_by_the_mlflow_client(proj: Proj, make_project: Any, tmp_path: Path,
                                                                    mlflow_full_venv: Path) -> None:
    ids = make_runs(proj, make_project)
    make_registry(proj, ids)
    archive = tmp_path / "all.tar"
    assert proj("runs", "export", "--all", "--registry", "-o", str(archive)).code == 0
    files_before = exported_files(proj, "models:/fraud/1", (), tmp_path / "v1-src")
    with proj_server(tmp_path / "server-store", tmp_path) as server:
        out = proj("runs", "import", str(archive), "--registry", "--tracking-uri", server.url, "--json")
        assert out.code == 0, out
        assert out.json()["models"] == ["fraud", "other"] and out.json()["model_versions"] == 4, out
        mapping = out.json()["run_ids"]
        seen = client_json(mlflow_full_venv, MLFLOW_REGISTRY, server.url, tmp_path)
        fraud = seen["models"]["fraud"]
        assert fraud["description"] == "catches fraud" and fraud["tags"]["team"] == "risk", fraud
        assert fraud["aliases"] == {"champion": "1"}, fraud
        assert fraud["versions"] == {
            "1": {"stage": "None", "tags": {"data": "v1"}, "run_id": mapping[ids[0]], "description": "first"},
            "2": {"stage": "Staging", "tags": {"data": "v2"}, "run_id": mapping[ids[1]], "description": ""},
        }, fraud  # the deleted version 3 was made and deleted again: the next one is 4, as at the source
        assert list(seen["models"]["other"]["versions"]) == ["1"]
        del seen["files"]["registered_model_meta"]  # what the client writes beside a models:/ download
        assert seen["files"] == files_before  # byte-exact
        again = proj("runs", "import", str(archive), "--registry", "--tracking-uri", server.url, "--json")
        assert again.code == 0 and again.json()["models_skipped"] == ["fraud", "other"], again
        line = one_error_line(proj("runs", "import", str(rewrite_origin(archive, tmp_path)), "--registry",
                                   "--tracking-uri", server.url), 2)
        assert "'fraud'" in line and "--skip-existing-models" in line, line


def rewrite_origin(archive: Path, tmp_path: Path) -> Path:
    """The same archive as if from another store: its models are other models of the same names."""
    def change(name: str, data: bytes) -> bytes:
        if name != "registry/models.json":
            return data
        return json.dumps([{**m, "origin": "/elsewhere#" + m["name"]} for m in json.loads(data)]).encode()

    return rewrite(archive, tmp_path / "elsewhere.tar", change)
