"""``proj -q run``: progress is hidden, warnings are not (the typo hint, the loader's, the after-run ones)."""
from __future__ import annotations

PROJECT = {
    "MLproject": """\
        entry_points:
          main:
            parameters:
              alpha: {type: float, default: 0.1}
              n: {type: nubmer, default: 1}
            command: python report.py
        """,
    "report.py": """\
        import os
        with open(os.environ["PROJ_METRICS_FILE"], "a") as fh:
            fh.write("not json\\n")
        print("child output")
        """,
}


def test_quiet_run_still_shows_every_warning(proj, make_project) -> None:
    root = make_project(PROJECT)
    for args in (["-q", "run"], ["run", "-q"]):
        out = proj(*args, str(root), "--env-manager", "local", "-P", "alhpa=0.5")
        assert out.code == 0 and "child output" in out.stdout, out
        assert "did you mean alpha?" in out.stderr, out  # planning: a typo of a declared parameter
        assert "parameter 'n' has unknown type 'nubmer'" in out.stderr, out  # the MLproject loader
        assert "skipped 1 line(s) of metrics.jsonl" in out.stderr, out  # after the run: it went to info before
        assert "proj: running:" not in out.stderr and "started" not in out.stderr, out  # progress is hidden
        assert all(line.startswith("proj: warning: ") for line in out.stderr.splitlines()), out


def test_progress_shows_without_quiet(proj, make_project) -> None:
    out = proj("run", str(make_project(PROJECT)), "--env-manager", "local")
    assert out.code == 0 and "proj: running: python report.py" in out.stderr, out
    assert "proj: warning: skipped 1 line(s) of metrics.jsonl" in out.stderr, out
