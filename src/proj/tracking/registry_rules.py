"""MLflow's rules for registry names, in one place: model names, version numbers, tag keys and values, stage
names and alias names, with MLflow's messages (mlflow.utils.validation). The store checks them on every
change; proj.registry and the server check them first where a friendlier refusal helps."""
from __future__ import annotations

import json
import posixpath
import re

from proj.errors import UsageError
from proj.tracking.registry_records import STAGES

MAX_TAG_KEY = 250  # MLflow's MAX_MODEL_REGISTRY_TAG_KEY_LENGTH
MAX_TAG_VALUE = 100_000  # MLflow's MAX_MODEL_REGISTRY_TAG_VALUE_LENGTH
_TAG_KEY = re.compile(r"^[/\w.\- :]*$")
ALIAS_NAME = re.compile(r"^[\w-]+$")  # MLflow's alias names (stage names are such names too)
_VERSION_ALIAS = re.compile(r"^[vV]\d+$")
MAX_ALIAS = 255


def check_model_name(name: str | None, path: str = "name") -> str:
    """MLflow's _validate_model_name: not empty, no '/' or ':', not a path that resolves to another name."""
    if name is None or not str(name).strip():
        raise UsageError(f"Missing value for required parameter '{path}'.")
    if "/" in name or ":" in name:
        raise UsageError(f"Invalid model name '{name}'. Names cannot contain '/' or ':'.")
    norm = posixpath.normpath(name)
    if norm != name or norm == "." or norm.startswith(".."):
        raise UsageError(f"Invalid value {json.dumps(name)} for parameter '{path}' supplied: Names may be treated "
                         "as files in certain cases, and must not resolve to other names when treated as such. "
                         f"This name would resolve to {norm!r}")
    return name


def check_version(version: int | str) -> int:
    """A version number as MLflow takes it (an int or its decimal text)."""
    try:
        return int(str(version).strip())
    except ValueError:
        raise UsageError(f"Parameter 'version' must be an integer, got '{version}'.") from None


def check_tag(key: str | None, value: str | None) -> None:
    """MLflow's registry tag rules: a key of names' characters (at most 250), a value (at most 100,000)."""
    if key is None or key == "":
        raise UsageError("Missing value for required parameter 'key'.")
    if not _TAG_KEY.match(key):
        raise UsageError(f"Invalid value {json.dumps(key)} for parameter 'key' supplied: Names may only contain "
                         "alphanumerics, underscores (_), dashes (-), periods (.), spaces ( ), colon(:) and "
                         "slashes (/).")
    norm = posixpath.normpath(key)
    if norm != key or norm == "." or norm.startswith(("..", "/")):
        raise UsageError(f"Invalid value {json.dumps(key)} for parameter 'key' supplied: Names may be treated as "
                         "files in certain cases, and must not resolve to other names when treated as such. "
                         f"This name would resolve to {norm!r}")
    if len(key) > MAX_TAG_KEY:
        raise UsageError(f"'key' exceeds the maximum length of {MAX_TAG_KEY} characters")
    if value is None:
        raise UsageError("Tag value cannot be None")
    if len(value) > MAX_TAG_VALUE:
        raise UsageError(f"'value' exceeds the maximum length of {MAX_TAG_VALUE} characters")


def canonical_stage(stage: str) -> str:
    """MLflow's get_canonical_stage: "production" -> "Production"; anything else refused with the choices."""
    found = {s.lower(): s for s in STAGES}.get(str(stage).lower())
    if found is None:
        raise UsageError(f"Invalid Model Version stage: {stage}. Value must be one of {', '.join(STAGES)}.")
    return found


def check_alias(alias: str | None, *, setting: bool = False) -> str:
    """MLflow's alias rules: not empty, ``^[\\w-]+$``, at most 255 characters; ``latest`` and ``v<digits>`` are
    reserved (refused only when setting one: reading ``latest`` means the newest version)."""
    if not alias:
        raise UsageError("Registered model alias name cannot be empty.")
    if not ALIAS_NAME.match(alias):
        raise UsageError(f"Invalid alias name: '{alias}'. Names may only contain alphanumerics, underscores (_), "
                         "and dashes (-).")
    if len(alias) > MAX_ALIAS:
        raise UsageError(f"'Registered model alias name' exceeds the maximum length of {MAX_ALIAS} characters")
    if setting and alias.lower() == "latest":
        raise UsageError("'latest' alias name (case insensitive) is reserved.")
    if setting and _VERSION_ALIAS.match(alias):
        raise UsageError(f"Version alias name '{alias}' is reserved.")
    return alias
