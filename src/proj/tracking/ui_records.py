"""What the web UI asks a run store for: a runs query, a table column (``metrics.loss:min``), a sampled series."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from proj.errors import UsageError
from proj.tracking.records import ACTIVE_ONLY
from proj.tracking.search import DATASET, METRIC, RUNS, Grammar, parse_order_by

SAMPLE_X = ("step", "wall", "relative")  # a sampled history's x: the step, ms since the epoch, ms since the first point
AGGREGATES = ("min", "max")  # over a metric's whole history (a bare metric column is its latest value)
# The run grammar's names (datasets aside) plus the attributes only a table shows or sorts by.
UI_GRAMMAR = Grammar({k: v for k, v in RUNS.entities.items() if v != DATASET}, RUNS.entity_names,
                     RUNS.attributes + ("duration", "experiment_id"), RUNS.numeric + ("duration",), RUNS.aliases,
                     RUNS.list_keys)


@dataclass(frozen=True)
class Column:
    """One column of the runs table: ``type`` is search.METRIC/PARAM/TAG/ATTRIBUTE; ``aggregate`` min/max of a
    metric's history, None for its latest value; ``name`` as the client wrote it."""

    type: str
    key: str
    aggregate: str | None = None
    name: str = ""


@dataclass(frozen=True)
class RunsQuery:
    experiment_ids: list[str] = field(default_factory=list)
    filter_string: str | None = None
    view_type: str = ACTIVE_ONLY
    top_level: bool = False
    parent_run_id: str | None = None  # only this run's children


@dataclass(frozen=True)
class SampledSeries:
    total: int  # points in the range asked
    sampled: bool
    x: list[Any]
    y: list[Any]  # floats, or "NaN"/"Infinity"/"-Infinity"


def parse_column(text: str) -> Column:
    """``params.alpha``, ``metrics.loss``, ``metrics.loss:min``, ``tags.team``, ``attributes.duration``,
    ``run_name``; UsageError naming what is wrong."""
    name = text.strip()
    body, aggregate = name, None
    head, sep, tail = name.rpartition(":")
    if sep and tail.strip().lower() in AGGREGATES:
        body, aggregate = head, tail.strip().lower()
    order = parse_order_by(body, UI_GRAMMAR)
    if not order.ascending or body.rstrip().lower().endswith(" asc"):
        raise UsageError(f"column {text!r} takes no ASC/DESC (that is order_by's)")
    if aggregate and order.type != METRIC:
        raise UsageError(f"column {text!r}: ':{aggregate}' applies to metrics only")
    return Column(order.type, order.key, aggregate, name)


def parse_order(text: str) -> tuple[Column, bool]:
    """An order_by term: a column and ASC (default) or DESC, e.g. ``metrics.loss:min DESC``."""
    words = text.strip().rsplit(None, 1)
    ascending = True
    if len(words) == 2 and words[1].upper() in ("ASC", "DESC"):
        text, ascending = words[0], words[1].upper() == "ASC"
    return parse_column(text), ascending
