"""The registry's append-only history: every change with who, when, from -> to and why, and the model's
state at any past moment replayed from it ("which version was Production on 2026-11-03 14:00?")."""
from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import Any

from proj.errors import UsageError
from proj.tracking.registry_records import STAGE_NONE, RegistryEvent
from proj.tracking.store import RunStore


@dataclass
class ModelState:
    """A registered model as it stood at ``time``: each live version's stage, the aliases, the tags."""

    name: str
    time: float
    exists: bool = False
    stages: dict[int, str] = field(default_factory=dict)  # version -> stage
    aliases: dict[str, int] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    description: str | None = None
    events: int = 0  # how many events the replay applied

    def in_stage(self, stage: str) -> list[int]:
        return sorted(v for v, s in self.stages.items() if s == stage)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["stages"] = {str(k): v for k, v in self.stages.items()}
        return data


def parse_time(text: str) -> float:
    """Seconds since the epoch from ISO 8601 (``2026-11-03 14:00``, ``2026-11-03T14:00:00Z``; local time when
    no zone is given, as proj prints times) or from a number of seconds."""
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"--at {text!r} is not a time: use ISO 8601 such as '2026-11-03 14:00' (local time), "
                         "'2026-11-03T14:00:00Z', or seconds since the epoch") from None
    return moment.timestamp() if moment.tzinfo else moment.astimezone().timestamp()


def events(store: RunStore, name: str, *, until: float | None = None) -> list[RegistryEvent]:
    """The events of ``name`` (renames followed), oldest first; NotFound (from the store) when it never existed."""
    return store.registry_events(name, until=until)


def state_at(store: RunStore, name: str, at: float) -> ModelState:
    """Replay the events of ``name`` up to ``at``."""
    state = ModelState(name, at)
    for event in events(store, name, until=at):
        apply(state, event)
    return state


def _version(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def apply(state: ModelState, event: RegistryEvent) -> None:
    """One event's effect on the replayed state (kinds as registry_records.RegistryEvent lists them)."""
    state.events += 1
    kind = event.kind
    if kind == "model_created":
        state.exists, state.name = True, event.model
    elif kind == "version_created" and event.version is not None:
        state.stages[event.version] = STAGE_NONE
    elif kind == "stage" and event.version is not None:
        state.stages[event.version] = event.new or STAGE_NONE
    elif kind == "alias_set" and event.key:
        target = _version(event.new) if event.new is not None else event.version
        if target is not None:
            state.aliases[event.key] = target
    elif kind == "alias_deleted" and event.key:
        state.aliases.pop(event.key, None)
    elif kind == "tag_set" and event.key and event.version is None:
        state.tags[event.key] = event.new or ""
    elif kind == "tag_deleted" and event.key and event.version is None:
        state.tags.pop(event.key, None)
    elif kind == "description" and event.version is None:
        state.description = event.new
    elif kind == "renamed":
        state.name = event.new or state.name
    elif kind == "version_deleted" and event.version is not None:
        state.stages.pop(event.version, None)
        state.aliases = {a: v for a, v in state.aliases.items() if v != event.version}
    elif kind == "model_deleted":
        state.exists, state.stages, state.aliases, state.tags = False, {}, {}, {}


def describe_event(event: RegistryEvent) -> str:
    """One event in words: ``alias champion 2 -> 3``, ``stage of v3 None -> Production``."""
    version = f"v{event.version} " if event.version is not None else ""
    key = f"{event.key} " if event.key and event.kind != "stage" else ""  # a stage event's key is its new stage
    if event.kind == "version_created":
        change = f"from {event.new}" if event.new else ""
    elif event.old is not None or event.new is not None:
        change = f"{event.old if event.old is not None else '-'} -> {event.new if event.new is not None else '-'}"
    else:
        change = ""
    return f"{event.kind.replace('_', ' ')} {version}{key}{change}".strip()
