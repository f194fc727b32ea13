"""Finding model folders (an MLmodel file) under a run's artifacts: used by every collector of models."""
from __future__ import annotations

import os
from pathlib import Path

SKIP_ARTIFACTS = ("source",)  # the runner's own copy of the source snapshot


def find_model_dirs(artifacts: Path) -> list[str]:
    """Artifact subfolders holding an MLmodel file (not descending into a model), relative paths."""
    found: list[str] = []
    if not artifacts.is_dir():
        return found
    for dirpath, dirnames, filenames in os.walk(artifacts):
        rel = os.path.relpath(dirpath, artifacts)
        if rel == ".":
            dirnames[:] = [d for d in dirnames if d not in SKIP_ARTIFACTS]
        elif "MLmodel" in filenames:
            found.append(Path(rel).as_posix())
            dirnames[:] = []
    return sorted(found)
