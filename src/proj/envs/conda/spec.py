"""The conda environment file (``conda.yaml``) as MLflow projects use it, and its fingerprint.

The fingerprint is what a resolution is cached under: the spec's meaning (not its bytes: comments,
ordering of conda dependencies and spacing do not count), the channel URLs it resolves against
(mirror settings change the answer) and the platform.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from proj.errors import ProjectError
from proj.project.schema import load_validated

FINGERPRINT_VERSION = 1  # bump when the lock layout changes, so old resolutions are not reused


@dataclass(frozen=True)
class CondaSpec:
    """A parsed, validated conda.yaml."""

    path: Path
    name: str | None
    channels: tuple[str, ...]
    conda: tuple[str, ...]  # match specs, as written (normalised spacing)
    pip: tuple[str, ...]  # requirement lines of the ``pip:`` sub-list
    variables: tuple[tuple[str, str], ...]
    # ``conda`` as the user wrote it (same order), so an error quotes their text, not our spelling.
    written: tuple[str, ...] = field(default=(), compare=False)

    @property
    def root(self) -> Path:
        return self.path.parent


def load_spec(path: Path) -> CondaSpec:
    """Read and validate ``path`` (cached by content, so a warm run parses JSON, not YAML)."""

    data, _ = load_validated(path, "conda_env")
    return spec_from_data(path, data or {})


def spec_from_data(path: Path, data: dict[str, Any]) -> CondaSpec:
    written: list[str] = []
    pip: list[str] = []
    for item in data.get("dependencies") or []:
        if isinstance(item, dict):
            pip.extend(str(line).strip() for line in item.get("pip") or [])
        else:
            written.append(str(item))
    channels = tuple(data.get("channels") or ["defaults"])
    variables = tuple(sorted((str(k), _scalar(v)) for k, v in (data.get("variables") or {}).items()))
    conda = tuple(_normalise(item) for item in written)
    return CondaSpec(path.resolve(), data.get("name"), channels, conda, tuple(pip), variables, tuple(written))


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _normalise(spec: str) -> str:
    """One spelling per match spec: ``numpy  >= 1.2`` and ``numpy>=1.2`` are the same request."""
    spec = " ".join(spec.split())
    match = re.match(r"^([A-Za-z0-9_.\-/:]+?)\s*([=<>!~].*)?$", spec)
    if match is None:
        return spec
    name, rest = match.group(1), (match.group(2) or "").replace(" ", "")
    return f"{name} {rest}".strip() if rest else name


def fingerprint(spec: CondaSpec, urls: list[tuple[str, str]], platform: str) -> str:
    """The resolution cache key: what was asked for, against which channels, for which platform."""
    doc = {
        "v": FINGERPRINT_VERSION,
        "platform": platform,
        "channels": urls,
        "conda": sorted(spec.conda),
        "pip": list(spec.pip),
        "pip_files": _pip_file_digests(spec),
        "variables": spec.variables,
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def spec_digest(spec: CondaSpec) -> str:
    """The request alone (channels by name, any platform): recorded in a lock to spot a stale one."""
    return fingerprint(spec, [(c, c) for c in spec.channels], "any")[:32]


def _pip_file_digests(spec: CondaSpec) -> dict[str, str]:
    """``-r file`` lines name files whose content is part of the request."""
    digests = {}
    for line in spec.pip:
        parts = line.split()
        if len(parts) == 2 and parts[0] in ("-r", "--requirement", "-c", "--constraint"):
            target = spec.root / parts[1]
            try:
                digests[parts[1]] = hashlib.sha256(target.read_bytes()).hexdigest()
            except OSError:
                raise ProjectError(f"{spec.path}: pip line {line!r}: {target} cannot be read") from None
    return digests
