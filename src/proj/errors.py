"""The one family of user-facing errors: each carries a message that names the file, key or value."""
from __future__ import annotations

import re

from proj.redact import mask_url

# Every user error is printed as one line of at most this many characters, whatever value it quotes.
MESSAGE_LIMIT = 400
# Characters that would break the line or the terminal: C0/C1 controls, Unicode line breaks, and the lone
# surrogates a non-UTF-8 byte becomes in a filename or argv (surrogateescape).
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def one_line(text: str, limit: int = MESSAGE_LIMIT) -> str:
    """``text`` as one printable line of at most ``limit`` characters, URL credentials masked, cut in the
    middle with "...".

    The head names the file and key and the tail usually lists the valid choices, so both are kept.
    """
    # Credentials are masked after escaping (a newline inside a URL no longer ends it) and before cutting.
    flat = mask_url(printable(text))
    if len(flat) <= limit:
        return flat
    head = (limit - 3) * 2 // 3
    return f"{flat[:head]}...{flat[len(flat) - (limit - 3 - head):]}"


def printable(text: str) -> str:
    """``text`` with every character that would break the line or drive the terminal escaped (``\\x1b``,
    ``\\n``): for names a run chose (artifact folders, model names) wherever proj prints them."""
    return _UNPRINTABLE.sub(_escape, str(text))


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:  # a byte that was not valid UTF-8, shown as that byte
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


class ProjError(Exception):
    """A user-facing failure: the CLI prints the message on one line and exits with ``exit_code``."""

    exit_code = 1
    # MLflow's error code for the same failure, which the server answers with (server.protocol.errors maps
    # it to the HTTP status): clients branch on it, so each subclass names the one MLflow uses.
    error_code = "INTERNAL_ERROR"

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return one_line(f"{self.message} ({self.hint})" if self.hint else self.message)


class UsageError(ProjError):
    """Bad command-line input (exit 2, like click's own usage errors); on the server, a bad request value."""

    exit_code = 2
    error_code = "INVALID_PARAMETER_VALUE"


class ProjectError(UsageError):
    """The MLproject file (or a file it names) is missing, malformed or invalid."""


class ParameterError(UsageError):
    """A parameter is missing, undeclared in a placeholder, or of the wrong type."""


class SourceError(ProjError):
    """The project source (directory or git URL) could not be resolved."""


class EnvError(ProjError):
    """An environment could not be chosen, resolved or built."""


class LockParseError(EnvError):
    """A lock's text is not in the format it claims (pylock.toml, conda-lock.yml, ...)."""


class UnsafePath(ProjError):
    """A name a run, a shipped file or a command line chose would lead outside the folder it belongs in."""

    error_code = "INVALID_PARAMETER_VALUE"  # on the server: a refused artifact path, as MLflow's "Invalid path"


class StoreError(ProjError):
    """The run store could not be opened or a run could not be found."""


class TooLarge(UsageError):
    """A request body over the server's limit (a JSON body, an artifact upload): refused before it is stored."""

    error_code = "RESOURCE_LIMIT_EXCEEDED"  # 413 on the server; MLflow's client does not retry it


class StoreUnavailable(StoreError):
    """The store's database server cannot be reached now (restarting, shutting down, the connection ended): a
    retry once it is back succeeds; a transaction it cut off was rolled back whole."""

    error_code = "TEMPORARILY_UNAVAILABLE"  # 503 with Retry-After on the server: MLflow's client retries it


class StoreDamaged(StoreError):
    """proj.db is damaged, not a database, or empty beside run folders: nothing is written to it."""


class RunFailed(ProjError):
    """A synchronous run did not finish (as MLflow's ExecutionException); ``.run`` is the SubmittedRun."""

    def __init__(self, message: str, run: object) -> None:
        super().__init__(message)
        self.run = run


class StoreMissing(StoreError):
    """A reading command was pointed at a directory that holds no run store."""

    exit_code = 2


class NotFound(StoreError):
    """No experiment, run, logged model or other record has that id or name."""

    exit_code = 2
    error_code = "RESOURCE_DOES_NOT_EXIST"


class RunNotFound(NotFound):
    """No run (or more than one run) matches an id or prefix."""


class AlreadyExists(StoreError):
    """A record with that unique name exists already (an experiment, a registered model)."""

    exit_code = 2
    error_code = "RESOURCE_ALREADY_EXISTS"


class InvalidState(UsageError):
    """The record exists but is in a state that forbids the change (a deleted run, a logged param changed)."""

    error_code = "INVALID_PARAMETER_VALUE"  # what MLflow answers for both (clients branch on it)


class OutputLost(ProjError):
    """The run's output could not be written (e.g. no space left on device), so the run was stopped."""


class UnsafeModel(UnsafePath):
    """A model directory reaches outside the run folder (through a symlink)."""


class ModelNotFound(UsageError):
    """No recorded model matches ``RUN[/path]``."""


class ModelExportError(ProjError):
    """A model cannot be exported (invalid, changed on disk, or the destination is taken)."""


class GitFailed(SourceError):
    """A git command failed; ``detail`` is its last stderr line with credentials masked."""

    def __init__(self, message: str, detail: str) -> None:
        super().__init__(message)
        self.detail = detail


class CannotReproduce(ProjError):
    """The run cannot be reproduced (exit 2): its code, data or environment is no longer available."""

    exit_code = 2
