"""Where the repository, its example projects and the tests' data live, computed once from this file."""
from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "example-projects"
DATA = REPO / "tests" / "data"
