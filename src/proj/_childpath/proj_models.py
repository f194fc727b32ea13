"""Write an MLflow-compatible model directory without MLflow: ``MLmodel`` + pickled model + env files.

Imported lazily by ``proj_client.save_model``; standard library only at import time (pickle,
cloudpickle and scikit-learn are imported when a model is saved). The files and flavor blocks are the
ones MLflow writes, so ``mlflow.sklearn.load_model(dir)`` and ``mlflow.pyfunc.load_model(dir)`` load
the result. Inside a proj run, proj rewrites the env files afterwards from the run's exact lock.
"""
from __future__ import annotations

import datetime
import json
import os
import platform
import uuid
from typing import Any, Mapping

FLAVORS = ("sklearn", "pickle")
MODEL_FILE = "model.pkl"


def save_model(obj: Any, path: str | None = None, flavor: str = "sklearn", *, serialization_format: str | None = None,
               signature: Mapping[str, Any] | None = None, metadata: Mapping[str, Any] | None = None,
               pip_requirements: list[str] | None = None) -> str:
    """Save ``obj`` as a model directory at ``path`` (default: the run's PROJ_MODEL_DIR); returns the path."""
    if flavor not in FLAVORS:
        raise ValueError(f"flavor {flavor!r} is not supported; choose one of: {', '.join(FLAVORS)}")
    path = path or os.environ.get("PROJ_MODEL_DIR")
    if not path:
        raise ValueError("no path given and PROJ_MODEL_DIR is unset (not inside a proj run): pass path=")
    if os.path.isdir(path) and os.listdir(path):
        raise FileExistsError(f"model directory {path} already exists and is not empty")
    fmt = serialization_format or _default_format(flavor)
    if fmt not in ("pickle", "cloudpickle"):
        raise ValueError(f"serialization_format {fmt!r}: use 'pickle' or 'cloudpickle'")
    os.makedirs(path, exist_ok=True)
    _dump(obj, os.path.join(path, MODEL_FILE), fmt)
    requirements = pip_requirements if pip_requirements is not None else _requirements(flavor, fmt)
    _write_env_files(path, requirements)
    flavors = _flavors(obj, flavor, fmt)
    mlmodel: dict[str, Any] = {"flavors": flavors}
    if os.environ.get("PROJ_RUN_ID"):
        mlmodel["run_id"] = os.environ["PROJ_RUN_ID"]
    mlmodel["model_uuid"] = uuid.uuid4().hex
    mlmodel["utc_time_created"] = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")
    if signature:
        mlmodel["signature"] = dict(signature)
    if metadata:
        mlmodel["metadata"] = dict(metadata)
    mlmodel["model_size_bytes"] = sum(os.path.getsize(os.path.join(path, f)) for f in os.listdir(path))
    _write(os.path.join(path, "MLmodel"), to_yaml(mlmodel))
    return path


def _default_format(flavor: str) -> str:
    if flavor == "pickle":
        return "pickle"
    try:
        import cloudpickle  # noqa: F401
    except ImportError:
        return "pickle"
    return "cloudpickle"


def _dump(obj: Any, file: str, fmt: str) -> None:
    if fmt == "cloudpickle":
        import cloudpickle as pickler
    else:
        import pickle as pickler
    with open(file, "wb") as fh:
        pickler.dump(obj, fh)


def _flavors(obj: Any, flavor: str, fmt: str) -> dict[str, Any]:
    flavors: dict[str, Any] = {}
    if hasattr(obj, "predict"):
        # mlflow.sklearn's pyfunc loader unpickles model_path and calls predict(): it serves any such object.
        flavors["python_function"] = {"env": {"conda": "conda.yaml", "virtualenv": "python_env.yaml"},
                                      "loader_module": "mlflow.sklearn", "model_path": MODEL_FILE,
                                      "predict_fn": "predict", "python_version": platform.python_version()}
    if flavor == "sklearn":
        import sklearn

        flavors["sklearn"] = {"code": None, "pickled_model": MODEL_FILE, "serialization_format": fmt,
                              "sklearn_version": sklearn.__version__}
    else:
        flavors["pickle"] = {"pickled_model": MODEL_FILE, "serialization_format": fmt,
                             "python_version": platform.python_version()}
    return flavors


def _requirements(flavor: str, fmt: str) -> list[str]:
    from importlib import metadata

    names = (["scikit-learn"] if flavor == "sklearn" else []) + (["cloudpickle"] if fmt == "cloudpickle" else [])
    pins = []
    for name in names:
        try:
            pins.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            pins.append(name)
    return pins


def _write_env_files(path: str, requirements: list[str]) -> None:
    python = platform.python_version()
    _write(os.path.join(path, "requirements.txt"), "".join(f"{r}\n" for r in requirements))
    _write(os.path.join(path, "python_env.yaml"), to_yaml({
        "python": python, "build_dependencies": ["pip", "setuptools", "wheel"], "dependencies": ["-r requirements.txt"]}))
    _write(os.path.join(path, "conda.yaml"), to_yaml({
        "channels": ["conda-forge"], "dependencies": [f"python={python}", "pip", {"pip": list(requirements)}],
        "name": "mlflow-env"}))


def _write(file: str, text: str) -> None:
    tmp = f"{file}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, file)


def to_yaml(value: Any, indent: int = 0) -> str:
    """Block-style YAML for dicts, lists and scalars (strings double-quoted, which YAML reads as JSON)."""
    pad = " " * indent
    if isinstance(value, dict):
        if not value:
            return pad + "{}\n"
        out = []
        for key, item in value.items():
            if isinstance(item, (dict, list)) and item:
                out.append(f"{pad}{key}:\n{to_yaml(item, indent + 2)}")
            else:
                out.append(f"{pad}{key}: {_scalar(item)}\n")
        return "".join(out)
    if isinstance(value, list):
        out = []
        for item in value:
            if isinstance(item, (dict, list)) and item:
                nested = to_yaml(item, indent + 2)
                out.append(f"{pad}- {nested.lstrip()}")
            else:
                out.append(f"{pad}- {_scalar(item)}\n")
        return "".join(out)
    return pad + _scalar(value) + "\n"


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return json.dumps(value)
    if isinstance(value, (dict, list)):
        return "{}" if isinstance(value, dict) else "[]"
    return json.dumps(str(value))
