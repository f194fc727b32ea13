"""The registry's rules beyond storing: model and alias names (MLflow's messages), protected aliases and stages,
and the reproduction verdict an alias may require."""
from __future__ import annotations

from proj.errors import InvalidState, UsageError
from proj.tracking import registry_rules
from proj.tracking.registry_records import STAGES, RegisteredModelRecord

# what --require-verdict accepts, strictest first: a stricter verdict satisfies a looser requirement
VERDICTS = ("identical", "within-tolerance")


def check_alias(alias: str | None) -> str:
    """An alias being set or protected: MLflow's name rules, and ``latest`` and ``v<digits>`` reserved."""
    return registry_rules.check_alias(alias, setting=True)


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
