"""Output levels as data: what the core tells the user goes through a Reporter, never print() or a text prefix.

``info`` is progress (hidden by ``-q``), ``note`` is something worth knowing once (hidden by ``-q``),
``warn`` is something that may be a mistake (never hidden). The CLI's reporter writes ``proj: ...``
lines to stderr; the Python API passes one of its own; tests collect what was said.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Protocol, TextIO

from proj.errors import one_line

INFO, NOTE, WARN = "info", "note", "warning"


class Reporter(Protocol):
    def info(self, message: str) -> None: ...
    def note(self, message: str) -> None: ...
    def warn(self, message: str) -> None: ...


@dataclass
class StderrReporter:
    """``proj: message`` lines on stderr; ``quiet`` hides info and notes, never warnings."""

    quiet: bool = False
    stream: TextIO | None = None  # None: sys.stderr at the time of writing (pytest swaps it)

    def info(self, message: str) -> None:
        if not self.quiet:
            self._write(f"proj: {message}")

    def note(self, message: str) -> None:
        if not self.quiet:
            self._write(f"proj: note: {one_line(message)}")

    def warn(self, message: str) -> None:
        # Warnings quote user values (keys, names a run chose): one capped, escaped line, like errors.
        self._write(f"proj: warning: {one_line(message)}")

    def _write(self, line: str) -> None:
        stream = self.stream or sys.stderr
        stream.write(line + "\n")
        stream.flush()


@dataclass
class Collector:
    """Keeps what was said, by level (the Python API's and the tests' reporter)."""

    said: list[tuple[str, str]] = field(default_factory=list)

    def info(self, message: str) -> None:
        self.said.append((INFO, message))

    def note(self, message: str) -> None:
        self.said.append((NOTE, message))

    def warn(self, message: str) -> None:
        self.said.append((WARN, message))

    def messages(self, level: str) -> list[str]:
        return [message for said_level, message in self.said if said_level == level]


class Silent:
    """Says nothing (a background collector with no one to tell)."""

    def info(self, message: str) -> None:
        pass

    def note(self, message: str) -> None:
        pass

    def warn(self, message: str) -> None:
        pass
