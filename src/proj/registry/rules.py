"""The registry's rules beyond storing: model and alias names (MLflow's messages), protected aliases and stages,
and the reproduction verdict an alias may require."""
from __future__ import annotations

import re

from proj.errors import InvalidState, UsageError
from proj.tracking.registry_records import STAGES, RegisteredModelRecord

ALIAS_PATTERN = re.compile(r"^[\w\-]*$")
VERSION_ALIAS = re.compile(r"^[vV]\d+$")
MAX_ALIAS = 255
# what --require-verdict accepts, strictest first: a stricter verdict satisfies a looser requirement
VERDICTS = ("identical", "within-tolerance")


def check_model_name(name: str | None, what: str = "name") -> str:
    if name is None or not name.strip():
        raise UsageError(f"Missing value for required parameter '{what}'.")
    if "/" in name or ":" in name:
        raise UsageError(f"Invalid model name '{name}'. Names cannot contain '/' or ':'.")
    return name


def check_alias(alias: str | None) -> str:
    """MLflow's alias rules: ``^[\\w-]+$``, at most 255 characters, ``latest`` and ``v<digits>`` reserved."""
    if not alias:
        raise UsageError("Registered model alias name cannot be empty.")
    if not ALIAS_PATTERN.match(alias):
        raise UsageError(f"Invalid alias name: '{alias}'. Names may only contain alphanumerics, underscores (_), "
                         "and dashes (-).")
    if len(alias) > MAX_ALIAS:
        raise UsageError(f"'Registered model alias name' exceeds the maximum length of {MAX_ALIAS} characters")
    if alias.lower() == "latest":
        raise UsageError("'latest' alias name (case insensitive) is reserved.")
    if VERSION_ALIAS.match(alias):
        raise UsageError(f"Version alias name '{alias}' is reserved.")
    return alias


def alias_key(alias: str) -> str:
    """The key a protected alias is stored under: its name (the store reads a stage's name as the stage)."""
    return alias


def stage_key(stage: str) -> str:
    """A stage's key: its canonical name (None, Staging, Production, Archived)."""
    return stage


def need_reason(model: RegisteredModelRecord, key: str, reason: str | None, action: str) -> None:
    """Refuse to move a protected alias or stage without a reason."""
    if key in model.protected and not (reason and reason.strip()):
        kind = "stage" if key in STAGES else "alias"
        raise InvalidState(f"{kind} {key!r} of registered model '{model.name}' is protected: {action} needs a "
                           "reason (--reason TEXT)")


def satisfies(found: str | None, required: str) -> bool:
    """Whether a recorded verdict (``identical``, ``within-tolerance``, ``differs``, ``cannot``) meets ``required``."""
    if required not in VERDICTS:
        raise UsageError(f"required verdict {required!r} is not one of {', '.join(VERDICTS)}")
    return found in VERDICTS[: VERDICTS.index(required) + 1]
