"""proj: run MLproject projects in locked, cached environments and record every run."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:  # pragma: no cover
    from proj.api import SubmittedRun

__all__ = ["run", "SubmittedRun", "__version__"]


def run(uri: str = ".", entry_point: str = "main", parameters: dict[str, Any] | None = None,
        **kwargs: Any) -> "SubmittedRun":
    """Run a project; see :func:`proj.api.run` (imported lazily to keep ``import proj`` cheap)."""
    from proj.api import run as _run

    return _run(uri, entry_point=entry_point, parameters=parameters, **kwargs)


def __getattr__(name: str) -> Any:
    if name == "SubmittedRun":
        from proj.api import SubmittedRun

        return SubmittedRun
    raise AttributeError(name)
