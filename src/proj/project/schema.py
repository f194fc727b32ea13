"""Load YAML files and check them against proj's JSON Schemas, with errors that name file, line and key.

jsonschema costs ~70 ms to import, so a document whose exact bytes already passed a schema is
remembered (by content hash) in the cache and not checked again: a warm `proj run` never imports it.
"""
from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from proj.errors import ProjectError
from proj.paths import cache
from proj.safe_yaml import read_yaml_text, safe_compose, safe_load

SCHEMA_DIR = Path(__file__).parent.parent / "schemas"


def read_text(path: Path) -> str:
    """Read a spec file, turning I/O and encoding problems into one clear error."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ProjectError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ProjectError(f"{path}: cannot be read: {exc}") from None


def load_yaml(path: Path, text: str | None = None) -> Any:
    """Parse YAML safely (no aliases, bounded size and depth); an error names the file and line."""
    return safe_load(read_yaml_text(path) if text is None else text, path)


def load_validated(path: Path, schema_name: str) -> tuple[Any, str]:
    """Parse and validate a YAML spec file; returns (data, text).

    The parsed form of a document that already passed is kept as JSON under its content hash, so a
    warm run neither imports PyYAML's resolver nor jsonschema.
    """
    text = read_yaml_text(path)
    marker = _validated_marker(_fingerprint(schema_name, text))
    if marker is not None:
        try:
            return json.loads(marker.read_text()), text
        except (OSError, ValueError):
            pass
    data = load_yaml(path, text)
    validate(data, schema_name, path, text, marker=None)
    _remember(marker, data)
    return data, text


def _remember(marker: Path | None, data: Any) -> None:
    if marker is None:
        return
    try:
        encoded = json.dumps(data)
        if json.loads(encoded) != data:
            return  # YAML-only types (dates, ...) would not survive the round trip
        from proj.paths import atomic_write

        atomic_write(marker, encoded)
    except (OSError, TypeError, ValueError):
        pass  # the cache is an optimisation only


def validate(data: Any, schema_name: str, path: Path, text: str, *, marker: Path | None | bool = True) -> None:
    """Check ``data`` against ``schemas/<schema_name>.schema.json``; raise the most useful error."""
    if marker is True:
        marker = _validated_marker(_fingerprint(schema_name, text))
        if marker is not None and marker.exists():
            return
    errors = _schema_errors(data, schema_name)
    if errors:
        raise ProjectError(_first_error(errors, path, text, schema_name))
    if isinstance(marker, Path):
        _remember(marker, data)


def _fingerprint(schema_name: str, text: str) -> str:
    schema_bytes = (SCHEMA_DIR / f"{schema_name}.schema.json").read_bytes()
    digest = hashlib.sha256(schema_bytes)
    digest.update(b"\0" + text.encode())
    return digest.hexdigest()


def _validated_marker(fingerprint: str) -> Path | None:
    try:
        return cache().validation_marker(fingerprint)
    except Exception:  # noqa: BLE001 - no usable cache dir just means no shortcut
        return None


@lru_cache(maxsize=None)
def load_schema(schema_name: str) -> dict[str, Any]:
    """The parsed JSON Schema shipped with proj."""
    schema: dict[str, Any] = json.loads((SCHEMA_DIR / f"{schema_name}.schema.json").read_text())
    return schema


def _schema_errors(data: Any, schema_name: str) -> list[Any]:
    import jsonschema

    schema = load_schema(schema_name)
    validator_cls = jsonschema.validators.validator_for(schema)
    validator = validator_cls(schema)
    # Deepest, most specific error first: that is the one a person can act on.
    return sorted(validator.iter_errors(data), key=lambda e: (-len(e.absolute_path), e.validator == "oneOf"))


def _first_error(errors: list[Any], path: Path, text: str, schema_name: str) -> str:
    """The error nearest the top of the file (then by key path), with a count of the rest.

    jsonschema's order follows the schema, not the file, so the same file must be ordered here to give
    the same message every time; among errors at one place the most specific one wins (see above).
    """
    rank = {id(error): n for n, error in enumerate(errors)}
    ordered = sorted(errors, key=lambda e: (_error_line(e, text), _path_key(list(e.absolute_path)), rank[id(e)]))
    message = _describe(ordered[0], path, text, schema_name)
    return f"{message} (and {len(ordered) - 1} more)" if len(ordered) > 1 else message


def _error_line(error: Any, text: str) -> int:
    keys = list(error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        keys += _unknown_keys(error)[:1]  # the message points at the first unknown key
    return _line_of(text, keys)


def _path_key(keys: list[Any]) -> list[tuple[int, int, str]]:
    """A sort key for a key path that mixes list indexes and (possibly non-string) mapping keys."""
    return [(0, k, "") if isinstance(k, int) and not isinstance(k, bool) else (1, 0, str(k)) for k in keys]


def _unknown_keys(error: Any) -> list[Any]:
    allowed = set(error.schema.get("properties", {}))
    # YAML keys need not be strings (``true: 1``): order them by their text, never by comparing types.
    return sorted((k for k in error.instance if k not in allowed), key=lambda k: (str(k), type(k).__name__))


def _short(value: Any, limit: int = 80) -> str:
    """``repr(value)`` cut with an ellipsis: the value is quoted so it can be found, not reproduced."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


# The file kind each schema describes, for messages that point at the right reference.
FILE_KINDS = {"mlproject": "MLproject", "python_env": "python_env.yaml", "conda_env": "conda.yaml",
              "mlmodel": "MLmodel"}


def _describe(error: Any, path: Path, text: str, schema_name: str | None = None) -> str:
    keys = list(error.absolute_path)
    where = f"{path}:{_line_of(text, keys)}" if keys else str(path)
    dotted = ".".join(str(k) for k in keys) or "(top level)"
    if error.validator == "type" and not keys and error.validator_value == "object":
        # A list or a scalar at the top: naming the keys that belong there says what the file should look like.
        expected = ", ".join(error.schema.get("properties", {}))
        return f"{path}: the top level must be a mapping with keys {expected} (found {_kind_of(error.instance)})"
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        extra = _unknown_keys(error) if isinstance(error.instance, dict) else []
        bad = ", ".join(_short(e) for e in extra)
        key_where = f"{path}:{_line_of(text, keys + extra[:1])}"
        return f"{key_where}: unknown key {bad} in {dotted}; valid keys: {', '.join(allowed)}"
    if error.validator == "required":
        return f"{where}: {dotted}: {_message(error)}"
    if error.validator == "enum":
        choices = ", ".join(str(c) for c in error.validator_value)
        return f"{where}: {dotted}: {_short(error.instance)} is not one of: {choices}"
    if error.validator == "oneOf":
        for sub in sorted(error.context or [], key=lambda e: -len(e.absolute_path)):
            if sub.validator == "enum":  # e.g. an unknown parameter type, in short or long form
                return _describe(sub, path, text, schema_name)
        if error.schema.get("description"):  # the schema says what belongs here: quote it
            return f"{where}: {dotted}: {_short(error.instance)} is not valid here; expected {error.schema['description']}"
        kind = FILE_KINDS.get(schema_name or "", path.name)
        return f"{where}: {dotted}: {_short(error.instance)} is not valid here (see the {kind} reference)"
    return f"{where}: {dotted}: {_message(error)}"


def _message(error: Any) -> str:
    """jsonschema's message, with the value it starts with (often the whole offending subtree) shortened."""
    message: str = error.message  # jsonschema's ValidationError.message (jsonschema is untyped here)
    quoted = repr(error.instance)
    if message.startswith(quoted) and len(quoted) > 80:
        return _short(error.instance) + message[len(quoted):]
    return message


def _kind_of(value: Any) -> str:
    if value is None:
        return "an empty document"
    return {list: "a list", str: "a string", bool: "a boolean"}.get(type(value), f"a {type(value).__name__}")


@lru_cache(maxsize=4)
def _composed(text: str) -> Any:
    """The node tree of ``text`` (False when it does not parse), composed once for all its errors."""
    try:
        return safe_compose(text, Path("<yaml>"))
    except ProjectError:
        return False


def _line_of(text: str, keys: list[Any]) -> int:
    """The 1-based line of the node at ``keys`` in the YAML text (best effort; 1 if not found)."""
    import yaml

    node = _composed(text)
    if node is False:
        return 1
    line = node.start_mark.line if node else 0
    for key in keys:
        if isinstance(node, yaml.MappingNode):
            match = next(((k, v) for k, v in node.value if _spells(k, key)), None)
            if match is None:
                break
            line = match[0].start_mark.line
            node = match[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
            line = node.start_mark.line
        else:
            break
    return line + 1


def _spells(node: Any, key: Any) -> bool:
    """Whether the YAML key ``node`` is ``key`` (a boolean key is written true/True/TRUE)."""
    if isinstance(key, bool):
        return isinstance(node.value, str) and node.value.lower() == str(key).lower()
    value: object = node.value
    return value == str(key)
