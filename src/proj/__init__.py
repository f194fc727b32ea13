"""proj: run MLproject projects in locked, cached environments and record every run."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:  # pragma: no cover
    from proj.api import SubmittedRun, run

__all__ = ["run", "SubmittedRun", "__version__"]


def __getattr__(name: str) -> Any:
    """``proj.run`` and ``proj.SubmittedRun`` are loaded on first use, keeping ``import proj`` cheap."""
    if name in ("run", "SubmittedRun"):
        from proj import api

        return getattr(api, name)
    raise AttributeError(f"module 'proj' has no attribute {name!r}")
