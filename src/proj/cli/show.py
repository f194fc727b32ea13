"""The human view of one run for ``proj runs show``."""
from __future__ import annotations

from pathlib import Path

from proj.cli.render import number, seconds, table, when
from proj.errors import printable
from proj.tracking.records import RunRecord
from proj.tracking.store import RunStore


def render_run(store: RunStore, run: RunRecord) -> str:
    # Names, tags and log lines come from the run: control characters escaped (table() escapes its cells).
    lines = [f"run        {run.id}" + (f"  ({printable(run.name)})" if run.name else ""),
             f"status     {run.status}" + (f" in phase {run.failure_phase}: {run.failure_reason}" if run.failure_phase else "")
             + (f", exit code {run.exit_code}" if run.exit_code is not None else ""),
             f"experiment {run.experiment}",
             f"started    {when(run.start_time)} by {run.user}@{run.host}"
             + (f", took {seconds(run.duration)}" if run.duration else ""),
             f"project    {run.project_name or '-'}, entry point {run.entry_point}",
             f"command    {run.command}"]
    if run.reproduces:
        lines.append(f"reproduces {run.reproduces}")
    if run.parent_run_id:
        lines.append(f"child of   {run.parent_run_id}: MLflow run {run.mlflow_run_id or '?'} that the program "
                     "opened besides its first one")
    elif run.mlflow_run_id:
        lines.append(f"mlflow run {run.mlflow_run_id}")
    lines += ["", "source"] + [f"  {k:<10} {_value(v)}" for k, v in run.source.items() if k != "untracked"]
    if run.source.get("untracked"):
        lines.append(f"  untracked  {len(run.source['untracked'])} file(s): {', '.join(run.source['untracked'][:5])}")
    lines += ["", "environment"] + [f"  {k:<14} {v}" for k, v in run.env.items()]
    if run.params:
        lines += ["", "params", _indent(table(("KEY", "VALUE", "TYPE", "FROM"),
                                              [(p.key, p.typed if p.type == "path" else p.value, p.type, p.source)
                                               for p in run.params]))]
    if run.metrics:
        history: dict[str, int] = {}
        for point in store.metric_history(run.id):
            history[point.key] = history.get(point.key, 0) + 1
        lines += ["", "metrics", _indent(table(("KEY", "LAST", "STEP", "POINTS"),
                                               [(m.key, number(m.value), m.step, history.get(m.key, 1))
                                                for m in run.metrics.values()]))]
    if run.tags:
        lines += ["", "tags"] + [f"  {printable(k)} = {printable(v)}" for k, v in run.tags.items()]
    children = store.list_children(run.id)
    if children:
        lines += ["", f"child runs ({len(children)}; `proj runs show ID` for each)",
                  _indent(table(("RUN", "NAME", "STATUS", "MLFLOW RUN", "METRICS"),
                                [(c.id[:12], c.name or "", c.status, (c.mlflow_run_id or "")[:12], _brief(c))
                                 for c in children]))]
    models = store.list_models(run_id=run.id)
    if models:
        lines += ["", "models", _indent(table(("PATH", "FLAVORS", "SIZE", "VALID"),
                                              [(m.path, ", ".join(m.flavors), m.size,
                                                "yes" if m.valid else f"no: {m.reason}") for m in models]))]
    lines += ["", "files"] + [f"  {name:<10} {path}" for name, path in _files(Path(run.run_dir))]
    lines += _log_tail(Path(run.run_dir) / "logs")
    return "\n".join(lines)


def _brief(run: RunRecord, count: int = 3) -> str:
    """A child's first few latest metrics, so the parent's view shows which trial did best."""
    shown = [f"{m.key}={number(m.value)}" for m in list(run.metrics.values())[:count]]
    return ", ".join(shown) + (", ..." if len(run.metrics) > count else "")


def _log_tail(logs: Path, count: int = 5) -> list[str]:
    """The last lines the entry point wrote, so `show` answers "what happened" without another command."""
    out = []
    for name in ("stdout", "stderr"):
        try:
            with open(logs / f"{name}.log", "rb") as fh:
                fh.seek(max(0, fh.seek(0, 2) - 8192))
                tail = fh.read().decode(errors="replace").splitlines()[-count:]
        except OSError:
            continue
        if tail:
            out += ["", f"{name} (last {len(tail)} lines; `proj runs logs` for all)"] + [f"  {printable(line)}" for line in tail]
    return out


def _files(run_dir: Path) -> list[tuple[str, str]]:
    found = [("logs", str(run_dir / "logs"))]
    artifacts = run_dir / "artifacts"
    count = sum(1 for p in artifacts.rglob("*") if p.is_file()) if artifacts.is_dir() else 0
    found.append(("artifacts", f"{artifacts} ({count} file{'s' if count != 1 else ''})"))
    return found


def _value(value: object) -> str:
    """Source fields as text: dicts (snapshot info) and lists (artifacts) without Python reprs."""
    if isinstance(value, dict):
        return ", ".join(f"{k} {v}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())
