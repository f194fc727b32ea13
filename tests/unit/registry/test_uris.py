"""Model URIs as MLflow parses them (versions, stages any case, latest, aliases, logged-model ids, runs:/ and the
client's resolved mlflow-artifacts:/ form), refused with MLflow's message, and resolved against a real store."""
from __future__ import annotations

from pathlib import Path

import pytest

from proj.errors import NotFound, UsageError
from proj.registry.uris import parse, resolve_version
from proj.tracking.registry_rules import canonical_stage
from proj.tracking.sqlite import SqliteStore

RUN = "0123456789abcdef0123456789abcdef"
MODEL_ID = "m-" + "ab" * 16


@pytest.mark.parametrize(("uri", "kind", "fields"), [
    ("models:/fraud/3", "version", {"name": "fraud", "version": 3}),
    ("models:/fraud/production", "stage", {"name": "fraud", "stage": "Production"}),
    ("models:/fraud/STAGING", "stage", {"name": "fraud", "stage": "Staging"}),
    ("models:/fraud/Latest", "latest", {"name": "fraud"}),
    ("models:/fraud@champion", "alias", {"name": "fraud", "alias": "champion"}),
    ("models:/a@b@champion", "alias", {"name": "a@b", "alias": "champion"}),
    (f"models:/{MODEL_ID}", "logged", {"model_id": MODEL_ID}),
    (f"runs:/{RUN}/model", "run", {"run_id": RUN, "path": "model"}),
    (f"runs:/{RUN}/sub/dir/", "run", {"run_id": RUN, "path": "sub/dir"}),
    (f"mlflow-artifacts:/0/{RUN}/artifacts/model", "run", {"run_id": RUN, "path": "model"}),
    (f"mlflow-artifacts:/3/models/{MODEL_ID}/artifacts", "logged", {"model_id": MODEL_ID}),
])
def test_each_form_parses(uri: str, kind: str, fields: dict[str, object]) -> None:
    parsed = parse(uri)
    assert parsed.kind == kind and parsed.text == uri
    assert {k: getattr(parsed, k) for k in fields} == fields


@pytest.mark.parametrize("uri", ["models:/", "models:/a/b/c", "models:/a/", "models:/@x", "models:/a@",
                                 "models://host/a/1", "models:/not-an-id", "model:/a/1"])
def test_improper_models_uris_get_mlflows_message(uri: str) -> None:
    with pytest.raises(UsageError, match=r"^Not a proper models:/ URI: ") as err:
        parse(uri)
    assert "'models:/name/suffix' or 'models:/name@alias'" in err.value.message
    assert err.value.error_code == "INVALID_PARAMETER_VALUE"


def test_a_stage_that_is_not_one_names_the_four() -> None:
    with pytest.raises(UsageError, match=r"^Invalid Model Version stage: Prod\. Value must be one of None, Staging, "
                                         r"Production, Archived\.$"):
        parse("models:/fraud/Prod")
    assert canonical_stage("archived") == "Archived" and canonical_stage("none") == "None"


def test_runs_uri_needs_a_run() -> None:
    with pytest.raises(UsageError, match="Not a proper runs:/ URI"):
        parse("runs:/")
    with pytest.raises(UsageError, match="mlflow-artifacts source must name a run's artifacts"):
        parse("mlflow-artifacts:/0/elsewhere")


def test_resolution_against_the_store(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "store")
    store.create_registered_model("fraud")
    for _ in range(3):
        store.create_model_version("fraud", "/x")
    store.transition_model_version_stage("fraud", 1, "Production")
    store.transition_model_version_stage("fraud", 2, "Production")
    store.set_registered_model_alias("fraud", "champion", 1)
    assert resolve_version(store, parse("models:/fraud/3")).version == 3
    assert resolve_version(store, parse("models:/fraud/latest")).version == 3
    assert resolve_version(store, parse("models:/fraud/production")).version == 2  # the newest in the stage
    assert resolve_version(store, parse("models:/fraud@champion")).version == 1
    with pytest.raises(NotFound, match=r"^No versions of model with name 'fraud' and stage 'Staging' found$"):
        resolve_version(store, parse("models:/fraud/Staging"))
    with pytest.raises(NotFound, match=r"Model Version \(name=fraud, version=9\) not found"):
        resolve_version(store, parse("models:/fraud/9"))
    with pytest.raises(NotFound, match="Registered Model with name=other not found"):
        resolve_version(store, parse("models:/other/latest"))
