"""Comparing two runs: params, source, inputs, environment, metrics and artifacts, with a verdict.

Verdicts: ``identical`` (everything equal), ``within tolerance`` (only metrics differ, and each within
the relative tolerance), ``differs`` (anything else; each difference is named).
"""
from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from proj.reproduce.packages import describe_changes, lock_packages
from proj.tracking.records import RunRecord
from proj.tracking.store import RunStore

IDENTICAL, WITHIN, DIFFERS = "identical", "within tolerance", "differs"
# MLmodel keys that name the run or the moment, not the model: ignored when hashing model files.
VOLATILE_MLMODEL_KEYS = ("run_id", "model_uuid", "model_id", "utc_time_created", "artifact_path", "model_size_bytes")
SKIPPED_ARTIFACTS = ("source/",)  # our own provenance copies, compared under "source"


@dataclass
class Section:
    name: str
    same: bool
    lines: list[str] = field(default_factory=list)
    tolerable: bool = False  # differs, but only within the tolerance


@dataclass
class Comparison:
    a: str
    b: str
    tolerance: float
    sections: list[Section]

    @property
    def verdict(self) -> str:
        if all(s.same for s in self.sections):
            return IDENTICAL
        if all(s.same or s.tolerable for s in self.sections):
            return WITHIN
        return DIFFERS

    def to_dict(self) -> dict[str, Any]:
        return {"a": self.a, "b": self.b, "tolerance": self.tolerance, "verdict": self.verdict,
                "sections": [asdict(s) for s in self.sections]}

    def render(self) -> str:
        out = [f"comparing {self.a[:12]} (A) with {self.b[:12]} (B), relative tolerance {self.tolerance:g}"]
        for s in self.sections:
            mark = "same" if s.same else ("within tolerance" if s.tolerable else "DIFFERS")
            out.append(f"  {s.name:<12} {mark}")
            out.extend(f"      {line}" for line in s.lines)
        out.append(f"verdict: {self.verdict}")
        return "\n".join(out)


def compare_runs(store: RunStore, a: RunRecord, b: RunRecord, tolerance: float = 0.0) -> Comparison:
    sections = [_outcome(a, b), _params(a, b), _source(a, b), _inputs(a, b), _environment(store, a, b),
                _metrics(store, a, b, tolerance), _artifacts(a, b)]
    return Comparison(a.id, b.id, tolerance, sections)


def _diff_maps(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    lines = [f"{k}: {old[k]!r} -> {new[k]!r}" for k in sorted(old.keys() & new.keys()) if old[k] != new[k]]
    lines += [f"{k}: only in B ({new[k]!r})" for k in sorted(new.keys() - old.keys())]
    lines += [f"{k}: only in A ({old[k]!r})" for k in sorted(old.keys() - new.keys())]
    return lines


def _outcome(a: RunRecord, b: RunRecord) -> Section:
    lines = _diff_maps({"status": a.status, "exit code": a.exit_code}, {"status": b.status, "exit code": b.exit_code})
    return Section("outcome", not lines, lines)


def _params(a: RunRecord, b: RunRecord) -> Section:
    # Paths are compared by content (see inputs): a reproduction runs from another checkout directory.
    def values(run: RunRecord) -> dict[str, Any]:
        return {p.key: ("<path>" if p.type == "path" else p.typed) for p in run.params}

    lines = _diff_maps(values(a), values(b))
    return Section("params", not lines, lines)


def _source(a: RunRecord, b: RunRecord) -> Section:
    def view(run: RunRecord) -> dict[str, Any]:
        src = run.source
        return {"commit": src.get("commit"), "subdir": src.get("subdir"),
                "uncommitted changes": _short(_file_hash(Path(run.run_dir) / "artifacts" / "source" / "uncommitted.patch")),
                "snapshot": src.get("snapshot_sha256")}

    lines = _diff_maps(view(a), view(b))
    return Section("source", not lines, lines)


def _short(digest: str | None) -> str:
    return f"patch {digest[:12]}" if digest else "none"


def _inputs(a: RunRecord, b: RunRecord) -> Section:
    lines = []
    for name in sorted(a.inputs.keys() | b.inputs.keys()):
        old, new = a.inputs.get(name, {}), b.inputs.get(name, {})
        if old.get("sha256") != new.get("sha256"):
            lines.append(f"{name} ({new.get('path') or old.get('path')}): sha256 "
                         f"{(old.get('sha256') or 'none')[:12]} -> {(new.get('sha256') or 'none')[:12]}")
    return Section("inputs", not lines, lines)


def _environment(store: RunStore, a: RunRecord, b: RunRecord) -> Section:
    lock_a, lock_b = store.get_lock(a.id), store.get_lock(b.id)
    if lock_a == lock_b:
        return Section("environment", True, [f"same lock ({a.env.get('lock_sha256', '')[:12]})"] if lock_a else [])
    if lock_a is None or lock_b is None:
        return Section("environment", False, ["only one run has a recorded environment lock"])
    if lock_a[0] == lock_b[0] == "docker-image" and _docker_inputs(lock_a[1]) == _docker_inputs(lock_b[1]):
        # Docker builds are not bit-reproducible: a rebuild from the same base and context is the same env.
        return Section("environment", True, ["image rebuilt from the same base image and build context"])
    lines = [f"backend {a.env.get('backend')} -> {b.env.get('backend')}"] if a.env.get("backend") != b.env.get("backend") else []
    lines += describe_changes(lock_packages(*lock_a), lock_packages(*lock_b)) or ["lock text differs (same packages)"]
    return Section("environment", False, lines)


def _docker_inputs(text: str) -> tuple[Any, ...] | None:
    import json

    try:
        data = json.loads(text)
    except ValueError:
        return None
    return (data.get("base_id"), data.get("context_hash"), data.get("dockerfile"))


def _metrics(store: RunStore, a: RunRecord, b: RunRecord, tolerance: float) -> Section:
    lines, tolerable = [], True
    hist_a = _history_lengths(store, a.id)
    hist_b = _history_lengths(store, b.id)
    for key in sorted(a.metrics.keys() | b.metrics.keys()):
        if key not in a.metrics or key not in b.metrics:
            lines.append(f"{key}: only in {'B' if key not in a.metrics else 'A'}")
            tolerable = False
            continue
        va, vb = a.metrics[key].value, b.metrics[key].value
        if hist_a.get(key) != hist_b.get(key):
            lines.append(f"{key}: {hist_a.get(key)} points -> {hist_b.get(key)} points")
            tolerable = False
        if va != vb and not (va != va and vb != vb):  # NaN equals NaN here
            rel = abs(va - vb) / max(abs(va), abs(vb)) if max(abs(va), abs(vb)) else float("inf")
            ok = rel <= tolerance
            tolerable = tolerable and ok
            lines.append(f"{key}: {va:.6g} -> {vb:.6g} (relative difference {rel:.2e}"
                         f"{', within' if ok else ', over'} tolerance)")
    return Section("metrics", not lines, lines, tolerable=bool(lines) and tolerable)


def _history_lengths(store: RunStore, run_id: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for point in store.metric_history(run_id):
        counts[point.key] = counts.get(point.key, 0) + 1
    return counts


def artifact_hashes(run_dir: Path) -> dict[str, str | None]:
    """sha256 of every artifact file (MLmodel files without their run-specific keys; None if unreadable)."""
    root = run_dir / "artifacts"
    hashes: dict[str, str | None] = {}
    if not root.is_dir():
        return hashes
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_symlink() or not path.is_file() or rel.startswith(SKIPPED_ARTIFACTS):
            continue
        hashes[rel] = _mlmodel_hash(path) if path.name == "MLmodel" else _file_hash(path)
    return hashes


def _artifacts(a: RunRecord, b: RunRecord) -> Section:
    ha, hb = artifact_hashes(Path(a.run_dir)), artifact_hashes(Path(b.run_dir))
    lines = [f"changed: {k}" for k in sorted(ha.keys() & hb.keys()) if ha[k] != hb[k]]
    lines += [f"added: {k}" for k in sorted(hb.keys() - ha.keys())]
    lines += [f"removed: {k}" for k in sorted(ha.keys() - hb.keys())]
    return Section("artifacts", not lines, lines)


def _file_hash(path: Path) -> str | None:
    try:
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
        return digest.hexdigest()
    except OSError:
        return None


def _mlmodel_hash(path: Path) -> str | None:
    import json

    import yaml

    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return _file_hash(path)
    if not isinstance(data, dict):
        return _file_hash(path)
    stable = {k: v for k, v in data.items() if k not in VOLATILE_MLMODEL_KEYS}
    return hashlib.sha256(json.dumps(stable, sort_keys=True, default=str).encode()).hexdigest()
