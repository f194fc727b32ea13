"""What a UI handler gets (the query parameters, the server's state, the thread's store) and how it reads them."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

from proj.errors import UsageError
from proj.server.protocol import validate as v
from proj.server.protocol.validate import QueryArgs
from proj.server.state import ServerState
from proj.tracking.records import VIEW_TYPES, json_number, millis
from proj.tracking.store import RunStore

JsonDict = dict[str, Any]


@dataclass
class UiCall:
    args: QueryArgs
    state: ServerState

    @property
    def store(self) -> RunStore:
        return self.state.store()  # the calling thread's own handle

    def strings(self, key: str) -> list[str]:
        """A repeatable parameter: given several times and/or comma-joined (``run_ids=a,b&run_ids=c``)."""
        found = []
        for item in v.array(self.args, key):
            if not isinstance(item, str):
                raise UsageError(v.invalid_value(key, item))
            found += [part.strip() for part in item.split(",") if part.strip()]
        return found

    def string(self, key: str, *, need: bool = False, default: str | None = None) -> str | None:
        value = v.string(self.args, key, need=need)
        return default if value is None or value == "" else value

    def integer(self, key: str, default: int | None, low: int | None = None, high: int | None = None) -> int | None:
        value = v.integer(self.args, key, default)
        if value is not None and ((low is not None and value < low) or (high is not None and value > high)):
            bounds = f"between {low} and {high}" if low is not None and high is not None else (
                f"at least {low}" if low is not None else f"at most {high}")
            raise UsageError(v.invalid_value(key, value, f"it must be {bounds}."))
        return value

    def number(self, key: str) -> float | None:
        value = self.string(key)
        if value is None:
            return None
        try:
            parsed = float(value)
        except ValueError:
            parsed = math.nan
        if not math.isfinite(parsed):
            raise UsageError(v.invalid_value(key, value, "it must be a finite number."))
        return parsed

    def boolean(self, key: str, default: bool) -> bool:
        value = self.string(key)
        if value is None:
            return default
        if value.lower() not in ("true", "false", "1", "0"):
            raise UsageError(v.invalid_value(key, value, "it must be 'true' or 'false'."))
        return value.lower() in ("true", "1")

    def choice(self, key: str, choices: tuple[str, ...], default: str) -> str:
        value = self.string(key, default=default)
        assert value is not None
        if value not in choices:
            raise UsageError(v.invalid_value(key, value, f"it must be one of {list(choices)}."))
        return value

    def view(self) -> str:
        return self.choice("view", VIEW_TYPES, VIEW_TYPES[0])


def parsed(key: str, value: str, parse: Callable[[str], Any]) -> Any:
    """``parse(value)``, its UsageError said again as an invalid value of parameter ``key``."""
    try:
        return parse(value)
    except UsageError as exc:
        raise UsageError(v.invalid_value(key, value, str(exc))) from None


def ms(seconds: float | None) -> int | None:
    return None if seconds is None else millis(seconds)


def wire(value: Any) -> Any:
    """A float for JSON: the infinities and NaN as MLflow's strings (other values as they are)."""
    return json_number(value) if isinstance(value, float) else value
