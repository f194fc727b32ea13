"""The Reporter: levels are data; -q (quiet) hides info and notes, never warnings."""
from __future__ import annotations

import io

from proj.report import INFO, NOTE, WARN, Collector, Silent, StderrReporter


def test_stderr_reporter_prefixes_by_level() -> None:
    out = io.StringIO()
    rep = StderrReporter(stream=out)
    rep.info("building")
    rep.note("redirected")
    rep.warn("did you mean alpha?")
    assert out.getvalue().splitlines() == ["proj: building", "proj: note: redirected",
                                           "proj: warning: did you mean alpha?"]


def test_quiet_keeps_warnings_only() -> None:
    out = io.StringIO()
    rep = StderrReporter(quiet=True, stream=out)
    rep.info("building")
    rep.note("redirected")
    rep.warn("did you mean alpha?")
    assert out.getvalue() == "proj: warning: did you mean alpha?\n"


def test_a_warning_is_one_escaped_line() -> None:
    out = io.StringIO()
    StderrReporter(stream=out).warn("name a\nb\x1b[31m" + "x" * 2000)
    line = out.getvalue()
    assert line.count("\n") == 1 and "\x1b" not in line and "\\n" in line and len(line) < 500


def test_collector_keeps_levels_and_silent_says_nothing() -> None:
    col = Collector()
    col.info("i")
    col.warn("w")
    col.note("n")
    assert col.said == [(INFO, "i"), (WARN, "w"), (NOTE, "n")]
    assert col.messages(WARN) == ["w"]
    Silent().warn("nothing")  # no output, no error
