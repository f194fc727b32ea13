"""proj's client for entry points: report metrics, params and tags to the current run.

Dependency-free (standard library only) and put on the run's PYTHONPATH by proj, so any interpreter
in any environment can ``import proj_client`` without installing anything. Outside a proj run every
call is a no-op, after one warning on stderr.
"""
from __future__ import annotations

import json
import os
import sys
import time
from typing import TYPE_CHECKING, Any, Mapping

__all__ = ["log_metric", "log_metrics", "log_param", "log_params", "set_tag", "run_id", "artifact_dir", "model_dir",
           "save_model"]
_warned = False


def _append(record: Mapping[str, Any]) -> None:
    global _warned
    path = os.environ.get("PROJ_METRICS_FILE")
    if not path:
        if not _warned:
            print("proj_client: not inside a proj run (PROJ_METRICS_FILE unset); nothing is recorded", file=sys.stderr)
            _warned = True
        return
    line = (json.dumps(record, allow_nan=True) + "\n").encode()
    # One O_APPEND write per record: concurrent writers never interleave within a line.
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def log_metric(key: str, value: float, step: int | None = None, timestamp: float | None = None) -> None:
    """Record one metric point (step defaults to 0, timestamp to now)."""
    _append({"kind": "metric", "key": str(key), "value": float(value), "step": int(step or 0),
             "timestamp": time.time() if timestamp is None else float(timestamp)})


def log_metrics(metrics: Mapping[str, float], step: int | None = None) -> None:
    for key, value in metrics.items():
        log_metric(key, value, step)


def log_param(key: str, value: Any) -> None:
    """Record a parameter the program chose itself (declared parameters are recorded by proj)."""
    _append({"kind": "param", "key": str(key), "value": value if isinstance(value, (int, float, bool)) else str(value)})


def log_params(params: Mapping[str, Any]) -> None:
    for key, value in params.items():
        log_param(key, value)


def set_tag(key: str, value: Any) -> None:
    _append({"kind": "tag", "key": str(key), "value": str(value)})


def run_id() -> str | None:
    return os.environ.get("PROJ_RUN_ID")


def artifact_dir() -> str | None:
    """Where files saved as the run's artifacts go."""
    return os.environ.get("PROJ_ARTIFACT_DIR")


def model_dir() -> str | None:
    """Where the run's model (an MLmodel directory) goes."""
    return os.environ.get("PROJ_MODEL_DIR")


def save_model(obj: Any, path: str | None = None, flavor: str = "sklearn", **options: Any) -> str:
    """Save ``obj`` as an MLflow-compatible model directory (default: this run's model dir).

    ``flavor="sklearn"`` writes the ``sklearn`` + ``python_function`` flavors MLflow writes, so
    ``mlflow.sklearn.load_model`` and ``mlflow.pyfunc.load_model`` load it; ``flavor="pickle"`` pickles
    any object. Options: ``serialization_format`` ("cloudpickle" or "pickle"), ``signature``,
    ``metadata``, ``pip_requirements``. Returns the model directory.
    """
    if TYPE_CHECKING:  # mypy knows the sibling module only by its package name
        from proj._childpath.proj_models import save_model as _save
    else:
        try:  # imported on first use, so importing proj_client stays free
            from proj_models import save_model as _save
        except ImportError:  # imported as proj._childpath.proj_client
            from proj._childpath.proj_models import save_model as _save

    return _save(obj, path, flavor, **options)
