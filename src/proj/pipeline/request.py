"""What a user asks for (RunRequest) with its typed backend and source options, and their JSON record."""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from typing import Any

CONDA_FRONTENDS = ("conda", "mamba", "micromamba")


@dataclass(frozen=True)
class RunOptions:
    """Options for the source and the backends; each backend reads only its own."""

    require_clean: bool = False  # source: refuse a git work tree with uncommitted changes
    docker_args: tuple[str, ...] = ()  # docker: -A KEY[=VALUE] options for `docker run`
    build_image: bool = True  # docker: build a project image (False: mount the project)
    keep_container: bool = False  # docker: keep the container after the run
    conda_frontend: str | None = None  # conda: install with this executable instead of the built-in installer

    def changed(self) -> list[str]:
        """Names of the options that differ from their defaults (for notes about dropped options)."""
        default = RunOptions()
        return [f.name for f in fields(self) if getattr(self, f.name) != getattr(default, f.name)]

    def as_dict(self) -> dict[str, Any]:
        """The options as JSON data (and as the keyword map the sources and backends read)."""
        data = asdict(self)
        data["docker_args"] = list(self.docker_args)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunOptions:
        """Read a recorded options map; keys written by a proj that knew other options are ignored, a
        missing key keeps its default (records written before that option existed)."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        if "docker_args" in values:
            values["docker_args"] = tuple(str(a) for a in values["docker_args"] or ())
        return cls(**values)


@dataclass(frozen=True)
class RunRequest:
    """Everything a user asks for; JSON-serialisable so a detached worker can carry it out."""

    uri: str = "."
    entry_point: str | None = None
    params: dict[str, str] = field(default_factory=dict)
    version: str | None = None
    env_manager: str | None = None
    experiment: str | None = None
    run_name: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    cwd: str = field(default_factory=os.getcwd)
    refresh_env: bool = False
    options: RunOptions = field(default_factory=RunOptions)
    reproduces: str | None = None  # the run `proj reproduce` re-runs

    def to_json(self) -> str:
        data = asdict(self)
        data["options"] = self.options.as_dict()
        return json.dumps(data, indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> RunRequest:
        """Read a request record, including those written by older versions of proj."""
        data = json.loads(text)
        if not isinstance(data, dict):
            raise TypeError("a run request must be a JSON object")
        if "parent_run_id" in data:  # written before child runs took that name
            data["reproduces"] = data.pop("parent_run_id")
        data["options"] = RunOptions.from_dict(data.get("options") or {})
        return cls(**data)
