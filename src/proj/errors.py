"""The one family of user-facing errors: each carries a message that names the file, key or value."""
from __future__ import annotations


class ProjError(Exception):
    """A user-facing failure: the CLI prints the message on one line and exits with ``exit_code``."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class UsageError(ProjError):
    """Bad command-line input (exit 2, like click's own usage errors)."""

    exit_code = 2


class ProjectError(UsageError):
    """The MLproject file (or a file it names) is missing, malformed or invalid."""


class ParameterError(UsageError):
    """A parameter is missing, undeclared in a placeholder, or of the wrong type."""


class SourceError(ProjError):
    """The project source (directory or git URL) could not be resolved."""


class EnvError(ProjError):
    """An environment could not be chosen, resolved or built."""


class UnsafePath(ProjError):
    """A name a run, a shipped file or a command line chose would lead outside the folder it belongs in."""


class StoreError(ProjError):
    """The run store could not be opened or a run could not be found."""


class RunFailed(ProjError):
    """A synchronous run did not finish (as MLflow's ExecutionException); ``.run`` is the SubmittedRun."""

    def __init__(self, message: str, run: object) -> None:
        super().__init__(message)
        self.run = run


class StoreMissing(StoreError):
    """A reading command was pointed at a directory that holds no run store."""

    exit_code = 2


class RunNotFound(StoreError):
    """No run (or more than one run) matches an id or prefix."""

    exit_code = 2
