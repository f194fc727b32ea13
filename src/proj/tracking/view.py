"""How a reader sees a run: RUNNING with a dead runner on this host reads as FAILED, not yet collected."""
from __future__ import annotations

import os

from proj.execution.liveness import is_alive
from proj.tracking.records import FAILED, RUNNING, RunRecord

NOT_COLLECTED = ("not yet collected: `proj runs collect` (or the next `proj run`, `runs cancel` or `reproduce`)"
                 " stops what it left running, ingests its metrics and models and records this")


def died(pid: int | None) -> str:
    return f"the proj process running it (pid {pid}) died without recording an end"


def presented(run: RunRecord) -> RunRecord:
    """How a reader sees a run: RUNNING with a dead runner on this host reads as FAILED in phase runner,
    ``collected`` False. Nothing is written: a reading command must work on a read-only or full disk."""
    if run.status != RUNNING or run.host != os.uname().nodename or is_alive(run.pid, run.pid_start):
        return run
    run.status, run.failure_phase, run.collected = FAILED, "runner", False
    run.failure_reason = f"{died(run.pid)}; {NOT_COLLECTED}"
    return run
