"""A model written by a run in a real conda env (local channel): its env files come from the conda-lock."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from backends.conda.test_runs import conda_channel, conda_project, cproj  # noqa: F401 - fixtures reused from the conda tests
from proj.models.envfiles import parse_conda_lock

pytestmark = [pytest.mark.conda]


def test_conda_run_model_env_files_come_from_the_conda_lock(cproj, make_project, conda_channel: Path) -> None:  # noqa: F811
    command = "mkdir -p $PROJ_MODEL_DIR && echo 'flavors: {{custom: {{}}}}' > $PROJ_MODEL_DIR/MLmodel"
    root = conda_project(make_project, ["python", "greet=1.0"], command,
                         pip=["--no-index", f"--find-links {conda_channel / 'wheels'}", "tinywheel"])
    out = cproj("run", str(root))
    assert out.code == 0, out
    run = cproj.show(cproj.runs()[0]["id"])
    assert run["lock"]["format"] == "conda-lock.yml"
    spec = parse_conda_lock(run["lock"]["text"], run["env"]["platform"])
    model_dir = Path(run["run_dir"]) / "artifacts" / "model"
    assert (model_dir / "requirements.txt").read_text() == "tinywheel==1.0\n"
    conda = yaml.safe_load((model_dir / "conda.yaml").read_text())
    assert conda["dependencies"] == [*spec.conda, {"pip": ["tinywheel==1.0"]}]
    assert any(dep.startswith("greet=1.0=") for dep in spec.conda)
    assert yaml.safe_load((model_dir / "python_env.yaml").read_text())["python"] == spec.python
    [model] = cproj("models", "list", "--json").json()
    assert model["valid"] and model["env_source"] == "conda-lock.yml"
