"""Unit tests: MLmodel schema validation and completion, and the lock parsers behind the env files."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml

from proj.models.envfiles import LockParseError, parse_conda_lock, parse_lock, parse_pylock, render
from proj.models.mlmodel import complete, read_mlmodel

MLFLOW_SKLEARN = """\
artifact_path: model
flavors:
  python_function:
    env:
      conda: conda.yaml
      virtualenv: python_env.yaml
    loader_module: mlflow.sklearn
    model_path: model.pkl
    predict_fn: predict
    python_version: 3.11.7
  sklearn:
    code: null
    pickled_model: model.pkl
    serialization_format: cloudpickle
    sklearn_version: 1.5.2
mlflow_version: 2.17.0
model_size_bytes: 1234
model_uuid: 3b1b9a1f0d6f4e0b9b3f9b1c2d3e4f50
run_id: 5f1c
utc_time_created: '2024-10-01 10:00:00.000000'
signature:
  inputs: '[{"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1, 10]}}]'
  outputs: '[{"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1]}}]'
  params: null
databricks_runtime: null
my_custom_key: {kept: true}
"""


def _mlmodel(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "MLmodel"
    path.write_text(textwrap.dedent(text))
    return path


def test_mlflow_written_mlmodel_is_valid_and_unknown_keys_are_kept(tmp_path: Path) -> None:
    data, reason = read_mlmodel(_mlmodel(tmp_path, MLFLOW_SKLEARN))
    assert reason is None and data is not None
    assert data["my_custom_key"] == {"kept": True}
    filled = complete(data, "proj-run", 99, env_written=True)
    assert filled["run_id"] == "5f1c" and filled["model_size_bytes"] == 1234  # present values are not touched
    assert filled["my_custom_key"] == {"kept": True}


def test_missing_fields_are_filled_in(tmp_path: Path) -> None:
    data, reason = read_mlmodel(_mlmodel(tmp_path, "flavors:\n  python_function: {loader_module: m}\n"))
    assert reason is None
    filled = complete(data, "abc123", 42, env_written=True)
    assert filled["run_id"] == "abc123" and filled["model_size_bytes"] == 42
    assert len(filled["model_uuid"]) == 32 and filled["utc_time_created"].startswith("20")
    assert filled["flavors"]["python_function"]["env"] == {"conda": "conda.yaml", "virtualenv": "python_env.yaml"}


def test_unquoted_timestamp_is_read_as_mlflow_writes_it(tmp_path: Path) -> None:
    data, reason = read_mlmodel(_mlmodel(tmp_path, "flavors: {x: {}}\nutc_time_created: 2024-10-01 10:00:00\n"))
    assert reason is None and isinstance(data["utc_time_created"], str)


@pytest.mark.parametrize("text, expected", [
    ("flavors: [unclosed\n", "not valid YAML"),
    ("- just\n- a list\n", "expected a mapping"),
    ("run_id: abc\n", "'flavors' is a required property"),
    ("flavors: {}\n", "flavors"),
    ("flavors: {sklearn: {serialization_format: pickle}}\n", "'pickled_model' is a required property"),
    ("flavors: {sklearn: {pickled_model: m.pkl, serialization_format: json}}\n", "is not one of"),
    ("flavors: {x: {}}\nmodel_size_bytes: -1\n", "model_size_bytes"),
    ("flavors: {x: {}}\nsignature: not-a-mapping\n", "signature"),
])
def test_invalid_mlmodel_reports_the_reason(tmp_path: Path, text: str, expected: str) -> None:
    data, reason = read_mlmodel(_mlmodel(tmp_path, text))
    assert data is None and expected in reason and "MLmodel" in reason


def test_pip_freeze_lock_keeps_exact_lines_and_splits_build_tools() -> None:
    text = ("# made by proj\nclick==8.1.7\nnumpy==2.1.0  # via scikit-learn\npip==24.2\n"
            "-e git+https://example.invalid/x.git@abc#egg=x\nscikit-learn==1.5.2 \\\n"
            "    --hash=sha256:aaaa \\\n    --hash=sha256:bbbb\n--index-url https://example.invalid/simple\n")
    spec = parse_lock("pip-freeze", text)
    assert spec.pip == ["click==8.1.7", "numpy==2.1.0", "-e git+https://example.invalid/x.git@abc#egg=x",
                        "scikit-learn==1.5.2"]
    assert spec.build == ["pip==24.2"]


PYLOCK = """\
lock-version = "1.0"
created-by = "uv"
requires-python = "==3.11.7"

[[packages]]
name = "numpy"
version = "2.1.0"
index = "https://pypi.org/simple"
wheels = [{ url = "https://files.example/numpy-2.1.0.whl", hashes = { sha256 = "00" } }]

[[packages]]
name = "colorama"
version = "0.4.6"
marker = "sys_platform == 'win32'"

[[packages]]
name = "mylib"
vcs = { type = "git", url = "https://example.invalid/mylib.git", commit-id = "0123abc" }

[[packages]]
name = "setuptools"
version = "75.1.0"
"""


def test_pylock_parser() -> None:
    spec = parse_pylock(PYLOCK)
    assert spec.python == "3.11.7"
    assert spec.pip == ["numpy==2.1.0", "colorama==0.4.6 ; sys_platform == 'win32'",
                        "mylib @ git+https://example.invalid/mylib.git@0123abc"]
    assert spec.build == ["setuptools==75.1.0"]
    with pytest.raises(LockParseError):
        parse_pylock("[[packages]\nname=")


CONDA_LOCK = """\
version: 1
metadata:
  content_hash: {linux-64: aa, osx-arm64: bb}
  channels:
  - url: conda-forge
    used_env_vars: []
  platforms: [linux-64, osx-arm64]
  sources: [environment.yml]
package:
- name: python
  version: 3.11.9
  manager: conda
  platform: linux-64
  dependencies: {}
  url: https://conda.example/conda-forge/linux-64/python-3.11.9-hb806964_0_cpython.conda
  hash: {md5: x, sha256: y}
  category: main
  optional: false
- name: numpy
  version: 1.26.4
  manager: conda
  platform: linux-64
  dependencies: {}
  url: https://conda.example/conda-forge/linux-64/numpy-1.26.4-py311h64a7726_0.conda
  hash: {md5: x, sha256: y}
  build: py311h64a7726_0
  category: main
  optional: false
- name: numpy
  version: 1.26.4
  manager: conda
  platform: osx-arm64
  dependencies: {}
  url: https://conda.example/conda-forge/osx-arm64/numpy-1.26.4-py311h7125741_0.conda
  hash: {md5: x, sha256: y}
  category: main
  optional: false
- name: requests
  version: 2.32.3
  manager: pip
  platform: linux-64
  dependencies: {}
  url: https://files.example/requests-2.32.3-py3-none-any.whl
  hash: {sha256: z}
  category: main
  optional: false
"""


def test_conda_lock_parser_picks_one_platform() -> None:
    linux = parse_conda_lock(CONDA_LOCK, "linux-64")
    assert linux.python == "3.11.9" and linux.channels == ["conda-forge"]
    assert linux.conda == ["python=3.11.9=hb806964_0_cpython", "numpy=1.26.4=py311h64a7726_0"]
    assert linux.pip == ["requests==2.32.3"]
    mac = parse_conda_lock(CONDA_LOCK, "osx-arm64")
    assert mac.conda == ["numpy=1.26.4=py311h7125741_0"] and mac.pip == []
    assert parse_conda_lock(CONDA_LOCK, "win-64").conda == linux.conda  # not in the lock: its first platform
    with pytest.raises(LockParseError):
        parse_conda_lock("version: 1\n")


def test_rendered_env_files_pin_exactly_what_the_lock_holds() -> None:
    files = render(parse_conda_lock(CONDA_LOCK, "linux-64"), "3.10.0")
    assert files["requirements.txt"] == "requests==2.32.3\n"
    conda = yaml.safe_load(files["conda.yaml"])
    assert conda["channels"] == ["conda-forge"]
    assert conda["dependencies"] == ["python=3.11.9=hb806964_0_cpython", "numpy=1.26.4=py311h64a7726_0",
                                     {"pip": ["requests==2.32.3"]}]
    python_env = yaml.safe_load(files["python_env.yaml"])
    assert python_env == {"python": "3.11.9", "build_dependencies": ["pip", "setuptools", "wheel"],
                          "dependencies": ["-r requirements.txt"]}
    freeze = render(parse_lock("pip-freeze", "pip==24.2\nclick==8.1.7\n"), "3.12.1")
    assert yaml.safe_load(freeze["python_env.yaml"])["build_dependencies"] == ["pip==24.2"]
    assert yaml.safe_load(freeze["conda.yaml"])["dependencies"] == ["python=3.12.1", "pip=24.2", {"pip": ["click==8.1.7"]}]
    assert parse_lock("docker-image", "sha256:abc") is None


def test_client_yaml_writer_round_trips_through_pyyaml() -> None:
    import sys

    from proj.pipeline.run import CHILD_PATH

    sys.path.insert(0, str(CHILD_PATH))
    try:
        from proj_models import to_yaml
    finally:
        sys.path.remove(str(CHILD_PATH))
    data = {"flavors": {"python_function": {"env": {"conda": "conda.yaml"}, "code": None, "n": 3, "ok": True}},
            "deps": ["python=3.11", {"pip": ["a==1", "b: c"]}], "empty": {}, "none": [], "quote": 'say "hi"\n'}
    assert yaml.safe_load(to_yaml(data)) == data
