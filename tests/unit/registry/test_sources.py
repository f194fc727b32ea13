"""Where a version's files come from, over a real store: an MLflow 3 logged model's artifacts (models:/m-<id>), a
client run's uploaded model folder (runs:/ and the client's resolved mlflow-artifacts:/ form, under the run folder
or --artifacts-destination), MLflow's fallback from runs:/RUN/NAME to the run's logged model of that name."""
from __future__ import annotations

from pathlib import Path

import pytest

from proj.errors import ModelNotFound
from proj.registry import service, trace
from proj.tracking.sqlite import SqliteStore

MLMODEL = "flavors:\n  python_function:\n    loader_module: m\n"


@pytest.fixture
def store(tmp_path: Path) -> SqliteStore:
    return SqliteStore(tmp_path / "store")


def _write_model(folder: Path, weights: bytes = b"w") -> None:
    folder.mkdir(parents=True)
    (folder / "MLmodel").write_text(MLMODEL)
    (folder / "w.bin").write_bytes(weights)


def test_a_logged_model_is_registered_with_its_run(store: SqliteStore) -> None:
    run = store.create_client_run("0", "u", None, {}, "train")
    logged = store.create_logged_model("0", "clf", source_run_id=run.id)
    with pytest.raises(ModelNotFound, match=f"logged model {logged.model_id} has no MLmodel in its artifacts"):
        service.register(store, f"models:/{logged.model_id}", "fraud")
    assert store.search_registered_models()[0] == []
    _write_model(store.root / "logged_models" / logged.model_id / "artifacts")
    version = service.register(store, f"models:/{logged.model_id}", "fraud")
    assert (version.source, version.model_id, version.run_id) == (f"models:/{logged.model_id}", logged.model_id, run.id)
    assert (Path(version.storage_location or "") / "w.bin").read_bytes() == b"w"
    # MLflow's client: runs:/RUN/clf with no MLmodel in the run's artifacts means the run's logged model "clf"
    fallback = service.register(store, f"runs:/{run.id}/clf", "fraud")
    assert (fallback.model_id, fallback.run_id, fallback.files_sha256) == (logged.model_id, run.id, version.files_sha256)
    traced = trace.lineage(store, f"models:/{logged.model_id}")  # a logged model's lineage is its run's
    assert traced["version"] is None and traced["run"]["id"] == run.id
    assert trace.lineage(store, "models:/fraud/1")["run"]["id"] == run.id


def test_a_client_runs_uploaded_folder_in_either_place(store: SqliteStore, tmp_path: Path) -> None:
    run = store.create_client_run("0", "u", None, {}, "train")
    _write_model(store.run_dir(run.id) / "artifacts" / "model", b"in the run folder")
    by_runs = service.register(store, f"runs:/{run.id}/model", "fraud")
    assert (by_runs.source, by_runs.run_id) == (f"runs:/{run.id}/model", run.id)
    resolved = f"mlflow-artifacts:/0/{run.id}/artifacts/model"  # what MLflow's client sends for runs:/
    by_uri = service.register(store, resolved, "fraud", run_id=run.id, create_model=False)
    assert (by_uri.source, by_uri.files_sha256) == (resolved, by_runs.files_sha256)
    destination = tmp_path / "uploads"  # a server's --artifacts-destination is read first, as it serves
    _write_model(destination / "0" / run.id / "artifacts" / "model", b"uploaded")
    uploaded = service.register(store, resolved, "fraud", artifacts_root=destination)
    assert (Path(uploaded.storage_location or "") / "w.bin").read_bytes() == b"uploaded"
    with pytest.raises(ModelNotFound, match=f"Unable to find a logged_model with artifact_path other under run {run.id}"):
        service.register(store, f"runs:/{run.id}/other", "fraud")


def test_a_run_folder_swapped_for_a_link_is_not_followed(store: SqliteStore, tmp_path: Path) -> None:
    run = store.create_client_run("0", "u", None, {}, "train")
    _write_model(tmp_path / "host" / "model")
    artifacts = store.run_dir(run.id) / "artifacts"
    artifacts.parent.mkdir(parents=True, exist_ok=True)
    artifacts.symlink_to(tmp_path / "host")
    with pytest.raises(ModelNotFound):
        service.register(store, f"runs:/{run.id}/model", "fraud")
    assert store.search_registered_models()[0] == []
