"""proj.registry, the Python API, over the store PROJ_TRACKING_URI names: the same operations as the CLI."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

import proj.registry as registry
from proj.errors import InvalidState, NotFound


def _model(tmp_path: Path, name: str, weights: bytes) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    (folder / "MLmodel").write_text("flavors:\n  python_function:\n    loader_module: m\n")
    (folder / "w.bin").write_bytes(weights)
    return folder


def test_the_api_registers_promotes_and_answers_history(proj_env: dict[str, str], tmp_path: Path) -> None:
    one = registry.register(str(_model(tmp_path, "a", b"1")), "fraud", description="first", tags={"team": "risk"})
    two = registry.register(str(_model(tmp_path, "b", b"2")), "fraud")
    assert (one.version, two.version, one.tags) == (1, 2, {"team": "risk"})
    registry.transition_stage("fraud", 1, "Production")
    registry.set_alias("fraud", "champion", 1)
    registry.protect("fraud", alias="champion")
    before = time.time()
    with pytest.raises(InvalidState, match="is protected"):
        registry.set_alias("fraud", "champion", 2)
    registry.set_alias("fraud", "champion", 2, reason="better")
    registry.transition_stage("fraud", 2, "production", archive_existing=True)
    registry.set_tag("fraud", "validated", "yes", version=2)
    registry.describe("fraud", "v2 wins", version=2)
    assert registry.get_version("models:/fraud@champion").version == 2
    assert registry.get_version("models:/fraud/Production").description == "v2 wins"
    assert [v.current_stage for v in registry.versions("fraud")] == ["Archived", "Production"]
    assert registry.state_at("fraud", before).aliases == {"champion": 1}
    assert registry.state_at("fraud", before).in_stage("Production") == [1]
    assert [e.reason for e in registry.history("fraud") if e.kind == "alias_set"] == [None, "better"]
    out = registry.export("models:/fraud@champion", tmp_path / "out")
    assert (out / "w.bin").read_bytes() == b"2"
    assert registry.lineage("models:/fraud/1")["version"]["intact"] is True
    registry.rename("fraud", "fraud2")
    registry.delete("fraud2", version=1)
    with pytest.raises(NotFound):
        registry.get_version("models:/fraud2/1")
    registry.delete("fraud2", reason="retired")
    assert registry.history("fraud2")[-1].kind == "model_deleted"
