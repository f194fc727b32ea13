"""The detached worker: carries out a run that ``proj run --detach`` (or ``proj.run(synchronous=False)``)
already validated and recorded. Usage: ``python -m proj.pipeline.worker STORE_ROOT RUN_ID``."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from proj.errors import ProjError
from proj.execution.process import install_sigterm_handler
from proj.pipeline.run import RunRequest, execute_run, plan_run
from proj.tracking.records import FAILED
from proj.tracking.sqlite import SqliteStore


def spawn(store_root: Path, run_id: str) -> int:
    """Start the worker in its own session, detached from the terminal; returns its pid."""
    logs = store_root / "runs" / run_id / "logs"
    with open(logs / "runner.log", "ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "proj.pipeline.worker", str(store_root), run_id],
                                stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
    return proc.pid


def main(argv: list[str]) -> int:
    install_sigterm_handler()
    store_root, run_id = Path(argv[0]), argv[1]
    store = SqliteStore(store_root)
    store.set_owner(run_id, os.getpid())
    run = store.get_run(run_id)
    try:
        recorded = store.get_request(run_id) or (Path(run.run_dir) / "request.json").read_text()
        plan = plan_run(RunRequest.from_json(recorded))
    except ProjError as exc:  # the source or project changed between submission and start
        store.finish_run(run_id, FAILED, phase="plan", reason=str(exc))
        print(f"proj: error: {exc}", file=sys.stderr)
        return 1
    try:
        outcome = execute_run(store, plan, run, echo=lambda m: print(f"proj: {m}", file=sys.stderr), stream=False)
    except ProjError as exc:
        print(f"proj: error: {exc}", file=sys.stderr)
        return 1
    return outcome.exit_code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
