"""Rendering results twice: a human table by default, the same data as a versioned JSON envelope."""
from __future__ import annotations

import json
import time
from typing import Any, Callable, Sequence

import click

from proj.errors import printable

# Options shared by the reading commands, defined once.
json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable output (versioned envelope).")
tracking_option = click.option("--tracking-uri", envvar="PROJ_TRACKING_URI",
                               help="Run store location (default ./.proj).")


def human_size(nbytes: float) -> str:
    """Binary units, as ``du -h`` prints them."""
    value = float(nbytes)
    for unit in ("B", "K", "M", "G"):
        if value < 1024 or unit == "G":
            return f"{value:.0f}{unit}" if unit == "B" else f"{value:.1f}{unit}"
        value /= 1024
    return f"{value:.1f}G"


def print_json(kind: str, data: Any) -> None:
    from proj.tracking.records import envelope

    click.echo(json.dumps(envelope(kind, data), indent=2, default=str))


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    # cells quote names a run chose (model paths, run names, tags): control characters are shown escaped
    cells = [[str(h) for h in headers]] + [["" if c is None else printable(str(c)) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    return "\n".join(lines)


def when(ts: float | None) -> str:
    return "" if ts is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


def seconds(value: float | None) -> str:
    if value is None:
        return ""
    if value < 60:
        return f"{value:.1f}s"
    minutes, secs = divmod(int(value), 60)
    return f"{minutes}m{secs:02d}s" if minutes < 60 else f"{minutes // 60}h{minutes % 60:02d}m"


def number(value: float) -> str:
    return f"{value:.6g}"


def artifact_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """--strict-artifacts and --ignore GLOB, shared by ``proj reproduce`` and ``proj runs diff``."""
    fn = click.option("--ignore", multiple=True, metavar="GLOB",
                      help="Leave artifacts matching GLOB (path under artifacts/, repeatable) out of the comparison.")(fn)
    return click.option("--strict-artifacts", is_flag=True,
                        help="Text artifacts must match byte for byte (no allowance for volatile lines).")(fn)
