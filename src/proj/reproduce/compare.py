"""Comparing two runs: params, source, inputs, environment, metrics and artifacts, with a verdict.

Verdicts: ``identical`` (everything equal), ``within tolerance`` (only metrics or model predictions differ,
each within the relative tolerance), ``differs`` (anything else; each difference is named). Artifacts are
compared in levels (see :mod:`proj.reproduce.artifacts`): bytes, archive contents, volatile lines only, and
for MLflow model directories the models' behaviour; the verdict says which level it rests on.
"""
from __future__ import annotations

import fnmatch
import hashlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from proj.lockfiles import docker_image
from proj.reproduce.artifacts import ARCHIVE, BEHAVIOUR, BYTES, DIFFERS, VOLATILE, Level, compare_files, file_hash
from proj.reproduce.behaviour import Behaviour, PythonRunner, cached_env_runner, compare_behaviour
from proj.reproduce.packages import describe_changes, lock_packages
from proj.safe_yaml import load_untrusted
from proj.tracking.records import RunRecord
from proj.tracking.store import RunStore

IDENTICAL, WITHIN, DIFFERS_VERDICT = "identical", "within tolerance", "differs"
# MLmodel keys that name the run or the moment, not the model: ignored when hashing model files.
VOLATILE_MLMODEL_KEYS = ("run_id", "model_uuid", "model_id", "utc_time_created", "artifact_path", "model_size_bytes")
SKIPPED_ARTIFACTS = ("source/",)
WITHIN_MARK = " (within tolerance)"  # our own provenance copies, compared under "source"


@dataclass
class Section:
    name: str
    same: bool
    lines: list[str] = field(default_factory=list)
    tolerable: bool = False  # differs, but only within the tolerance
    basis: list[str] = field(default_factory=list)  # what "same" rests on beyond equal bytes
    notes: list[str] = field(default_factory=list)  # files that matched at a level other than bytes
    artifacts: dict[str, dict[str, Any]] = field(default_factory=dict)  # path -> {"level", "detail"}


@dataclass
class ArtifactOptions:
    """How artifacts are compared: volatile lines allowed or not, files dropped, where models are loaded."""

    strict: bool = False  # --strict-artifacts: text must match byte for byte (archives still by content)
    ignore: tuple[str, ...] = ()  # --ignore GLOB, matched against the path under artifacts/
    runner: PythonRunner | None = None  # runs the model comparison in the run's environment
    runner_note: str = ""  # why there is no runner


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
        return DIFFERS_VERDICT

    @property
    def verdict_line(self) -> str:
        """The verdict and what it rests on: ``identical (bytes)``, ``differs (artifacts: ...)``."""
        verdict = self.verdict
        if verdict == DIFFERS_VERDICT:
            reasons = [f"{s.name}: {s.lines[0] if s.lines else 'differs'}"
                       + (f" (+{len(s.lines) - 1} more)" if len(s.lines) > 1 else "")
                       for s in self.sections if not s.same and not s.tolerable]
            return f"{verdict} ({'; '.join(reasons)})"
        basis = [b for s in self.sections for b in s.basis]
        if verdict == WITHIN:
            basis = [s.name for s in self.sections if s.tolerable and s.name != "artifacts"] + basis
        return f"{verdict} ({'; '.join(basis) or 'bytes'})"

    def to_dict(self) -> dict[str, Any]:
        return {"a": self.a, "b": self.b, "tolerance": self.tolerance, "verdict": self.verdict,
                "verdict_line": self.verdict_line, "sections": [asdict(s) for s in self.sections]}

    def render(self) -> str:
        out = [f"comparing {self.a[:12]} (A) with {self.b[:12]} (B), relative tolerance {self.tolerance:g}"]
        for s in self.sections:
            mark = "same" if s.same else ("within tolerance" if s.tolerable else "DIFFERS")
            out.append(f"  {s.name:<12} {mark}")
            out.extend(f"      {line}" for line in s.lines + s.notes)
        out.append(f"verdict: {self.verdict_line}")
        return "\n".join(out)


def compare_runs(store: RunStore, a: RunRecord, b: RunRecord, tolerance: float = 0.0,
                 options: ArtifactOptions | None = None) -> Comparison:
    """Compare run B with run A. Model behaviour is compared with ``options.runner`` (the reproduced
    environment); without one, run B's environment is used when it is still cached."""
    options = options or ArtifactOptions()
    if options.runner is None:
        runner, note = cached_env_runner(b)
        options = ArtifactOptions(options.strict, options.ignore, runner, note)
    sections = [_outcome(a, b), _params(a, b), _source(a, b), _inputs(a, b), _environment(store, a, b),
                _metrics(store, a, b, tolerance), _artifacts(a, b, tolerance, options)]
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
                "uncommitted changes": _short(file_hash(Path(run.run_dir) / "artifacts" / "source" / "uncommitted.patch")),
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
    same_inputs = docker_image.build_inputs(lock_a[1]) == docker_image.build_inputs(lock_b[1])
    if lock_a[0] == lock_b[0] == docker_image.NAME and same_inputs:
        # Docker builds are not bit-reproducible: a rebuild from the same base and context is the same env.
        return Section("environment", True, ["image rebuilt from the same base image and build context"])
    lines = [f"backend {a.env.get('backend')} -> {b.env.get('backend')}"] if a.env.get("backend") != b.env.get("backend") else []
    lines += describe_changes(lock_packages(*lock_a), lock_packages(*lock_b)) or ["lock text differs (same packages)"]
    return Section("environment", False, lines)


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


def artifact_hashes(run_dir: Path, ignore: tuple[str, ...] = ()) -> dict[str, str | None]:
    """sha256 of every artifact file (MLmodel files without their run-specific keys; None if unreadable)."""
    root = run_dir / "artifacts"
    hashes: dict[str, str | None] = {}
    if not root.is_dir():
        return hashes
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_symlink() or not path.is_file() or rel.startswith(SKIPPED_ARTIFACTS) or _ignored(rel, ignore):
            continue
        hashes[rel] = _mlmodel_hash(path) if path.name == "MLmodel" else file_hash(path)
    return hashes


def _ignored(rel: str, globs: tuple[str, ...]) -> bool:
    # A glob matches the path under artifacts/ or any folder above it ("plots" drops plots/a.png).
    parts = rel.split("/")
    prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    return any(fnmatch.fnmatchcase(p, g) for g in globs for p in prefixes)


def _artifacts(a: RunRecord, b: RunRecord, tolerance: float, options: ArtifactOptions) -> Section:
    root_a, root_b = Path(a.run_dir) / "artifacts", Path(b.run_dir) / "artifacts"
    ha, hb = artifact_hashes(Path(a.run_dir), options.ignore), artifact_hashes(Path(b.run_dir), options.ignore)
    levels = {k: compare_files(root_a / k, root_b / k, hash_a=ha[k], hash_b=hb[k], strict=options.strict)
              for k in sorted(ha.keys() & hb.keys())}
    basis = []
    for model in _model_dirs(ha.keys() & hb.keys()):
        inside = [k for k in levels if _under(k, model) and not levels[k].same]
        if not inside:
            continue  # every file of the model matched already: no need to load it
        behaviour = _behaviour(root_a / model, root_b / model, tolerance, options)
        for k in inside:
            levels[k] = _model_level(levels[k], behaviour)
        if behaviour.same:
            basis.append(f"model behaviour on {_rows(behaviour.rows)}")
    lines = [f"{k} {lv.detail}" if lv.detail else f"changed: {k}" for k, lv in levels.items() if not lv.same]
    lines += [f"added: {k}" for k in sorted(hb.keys() - ha.keys())]
    lines += [f"removed: {k}" for k in sorted(ha.keys() - hb.keys())]
    differs = bool(lines)
    notes = [f"{k}: {lv.detail}" for k, lv in levels.items() if lv.same and lv.level != BYTES]
    for kind in (ARCHIVE, VOLATILE):
        hit = [k for k, lv in levels.items() if lv.level == kind]
        if hit:
            basis.append(f"{kind}: {', '.join(hit[:3])}" + (" ..." if len(hit) > 3 else ""))
    inexact = any(lv.level == BEHAVIOUR and lv.detail.endswith(WITHIN_MARK) for lv in levels.values())
    return Section("artifacts", not differs and not inexact, lines, tolerable=not differs and inexact,
                   basis=[] if differs else basis, notes=notes,
                   artifacts={k: {"level": lv.level, "same": lv.same, "detail": lv.detail} for k, lv in levels.items()})


def _rows(n: int) -> str:
    return f"{n} example row{'s' if n != 1 else ''}"


def _model_dirs(paths: set[str]) -> list[str]:
    """Folders (under artifacts/) holding an MLmodel file in both runs, deepest first."""
    dirs = {p.rsplit("/", 1)[0] if "/" in p else "" for p in paths if p.rsplit("/", 1)[-1] == "MLmodel"}
    return sorted(dirs, key=lambda d: -d.count("/"))


def _under(path: str, folder: str) -> bool:
    return folder == "" or path.startswith(folder + "/")


def _behaviour(model_a: Path, model_b: Path, tolerance: float, options: ArtifactOptions) -> Behaviour:
    if options.runner is None:
        return Behaviour(error=f"model behaviour not compared: {options.runner_note or 'no environment to load it in'}")
    return compare_behaviour(model_a, model_b, options.runner, tolerance)


def _model_level(level: Level, behaviour: Behaviour) -> Level:
    if behaviour.same:
        return Level(BEHAVIOUR, f"same predictions on {_rows(behaviour.rows)}" + ("" if behaviour.exact else WITHIN_MARK))
    if behaviour.error is not None:
        return Level(DIFFERS, f"{level.detail + '; ' if level.detail else 'bytes differ; '}{behaviour.error}")
    return Level(DIFFERS, f"predictions differ on {behaviour.differing} of {behaviour.rows} rows")


def _mlmodel_hash(path: Path) -> str | None:
    import json

    import yaml

    try:
        data = load_untrusted(path.read_text())
    except (OSError, yaml.YAMLError):
        return file_hash(path)
    if not isinstance(data, dict):
        return file_hash(path)
    stable = {k: v for k, v in data.items() if k not in VOLATILE_MLMODEL_KEYS}
    return hashlib.sha256(json.dumps(stable, sort_keys=True, default=str).encode()).hexdigest()
