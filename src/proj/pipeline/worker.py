"""The detached worker: carries out a run that ``proj run --detach`` (or ``proj.run(synchronous=False)``)
already validated and recorded. Usage: ``python -m proj.pipeline.worker STORE_ROOT RUN_ID``."""
from __future__ import annotations

import os
import sys
from pathlib import Path

from proj.errors import ProjError
from proj.execution.process import install_sigterm_handler
from proj.pipeline.request import RunRequest
from proj.pipeline.run import submit
from proj.report import StderrReporter
from proj.tracking.open import open_store


def main(argv: list[str]) -> int:
    install_sigterm_handler()
    store_root, run_id = Path(argv[0]), argv[1]
    store = open_store(str(store_root), create=False, write=True)
    store.set_owner(run_id, os.getpid())
    run = store.get_run(run_id)
    reporter = StderrReporter()  # stderr is the run's logs/runner.log
    try:
        recorded = store.get_request(run_id) or (Path(run.run_dir) / "request.json").read_text()
        done = submit(RunRequest.from_json(recorded), lambda: store, reporter, recorded=run, stream=False)
    except ProjError as exc:
        print(f"proj: error: {exc}", file=sys.stderr)  # this process's top, as cli.main's: into runner.log
        return 1
    return done.outcome.exit_code if done.outcome else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
