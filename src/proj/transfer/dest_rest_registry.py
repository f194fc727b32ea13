"""Registered models into a tracking server (proj's or MLflow's) over MLflow's registry REST API: the model is created
with the ``proj.import.incomplete`` tag, each version from the imported run's artifacts (``runs:/RUN/path``, checked
to hold the version's stored files by content), its stage, deletion and the aliases set, and the tag removed once
whole. A failure deletes the model; a model a dead server left marked is deleted and redone by the next import.
The history and protected keys have no REST call: they stay behind (the summary says so)."""
from __future__ import annotations

from typing import Any, Callable

from proj.errors import NotFound
from proj.tracking.registry_records import STAGE_NONE
from proj.tracking.rest import RestStore
from proj.transfer.bundle import IMPORTED_FROM, INCOMPLETE, Bundle, TransferError
from proj.transfer.registry import ModelBundle

RunHere = Callable[[str | None, str | None], str | None]


class RestRegistry:
    def __init__(self, store: RestStore, label: str) -> None:
        self.store = store
        self.label = label

    def state(self, name: str) -> tuple[bool, dict[str, str]]:
        """(exists, its tags) of the registered model ``name`` on the server."""
        try:
            found = self.store.call("GET", "registered-models/get", {"name": name})["registered_model"]
        except NotFound:
            return False, {}
        return True, {t["key"]: t.get("value", "") for t in found.get("tags", [])}

    def delete(self, name: str) -> None:
        self.store.call("DELETE", "registered-models/delete", {"name": name})

    def check(self, model: ModelBundle, run_here: RunHere, bundles: dict[str, Bundle]) -> None:
        """Refuse, before the model is created, a live version the server could not make from an imported run, or
        whose run's files are not the version's stored files."""
        for version in model.record.get("versions", []):
            if version.get("deleted"):
                continue
            number, run_id = version["version"], version.get("run_id")
            path = _run_path(version)
            if path is None or run_here(run_id, version.get("run_origin")) is None:
                raise TransferError(f"registered model {model.name!r} version {number}: its source "
                                    f"{version['source']!r} is not a run imported into {self.label}; a tracking server "
                                    "makes versions from runs only (import into its store instead)")
            bundle = bundles.get(str(run_id))
            if bundle is None:
                continue  # imported before: the server checks the source exists
            have = {f.path: f.sha256 for f in bundle.files}
            prefix = f"artifacts/{path}/" if path else "artifacts/"
            for entry in version.get("files", []):
                if have.get(prefix + entry["path"]) != entry["sha256"]:
                    raise TransferError(f"registered model {model.name!r} version {number}: its stored file "
                                        f"{entry['path']!r} is not the one in run {run_id}'s artifacts (changed after "
                                        "it was registered); into a tracking server a version is made from its run")

    def write(self, model: ModelBundle, run_here: RunHere) -> int:
        """The model and its versions; nothing of it stays when this raises. The number of versions made."""
        rec = model.record
        tags = {**rec.get("tags", {}), IMPORTED_FROM: model.origin, INCOMPLETE: "1"}
        self.store.call("POST", "registered-models/create", {
            "name": model.name, "description": rec.get("description") or "",
            "tags": [{"key": k, "value": v} for k, v in tags.items()]})
        try:
            numbers = self._versions(model, run_here)
            for alias, number in rec.get("aliases", {}).items():
                if int(number) in numbers:
                    self.store.call("POST", "registered-models/alias",
                                    {"name": model.name, "alias": alias, "version": str(numbers[int(number)])})
            self.store.call("DELETE", "registered-models/delete-tag", {"name": model.name, "key": INCOMPLETE})
        except BaseException:
            try:
                self.delete(model.name)
            except Exception:  # noqa: BLE001 - the server is gone: the incomplete tag marks it for the next import
                pass
            raise
        return len(numbers)

    def _versions(self, model: ModelBundle, run_here: RunHere) -> dict[int, int]:
        """Each version in order: the source's number -> the server's. A deleted version (its source redacted, as
        MLflow does) is made from a live version's source and deleted again, so the numbers stay the same."""
        numbers: dict[int, int] = {}
        versions = sorted(model.record.get("versions", []), key=lambda v: int(v["version"]))
        sources = {int(v["version"]): (run, f"runs:/{run}/{_run_path(v)}".rstrip("/")) for v in versions
                   if not v.get("deleted") and _run_path(v) is not None
                   and (run := run_here(v.get("run_id"), v.get("run_origin"))) is not None}
        if not sources:
            return numbers
        stand_in = next(iter(sources.values()))
        for version in versions:
            run, source = sources.get(int(version["version"]), stand_in)
            made: dict[str, Any] = self.store.call("POST", "model-versions/create", {
                "name": model.name, "source": source, "run_id": run,
                "description": version.get("description") or "", "run_link": version.get("run_link") or "",
                "tags": [{"key": k, "value": v} for k, v in (version.get("tags") or {}).items()]})["model_version"]
            number = int(made["version"])
            numbers[int(version["version"])] = number
            if version.get("deleted"):
                self.store.call("DELETE", "model-versions/delete", {"name": model.name, "version": str(number)})
                continue
            if version.get("current_stage", STAGE_NONE) != STAGE_NONE:
                self.store.call("POST", "model-versions/transition-stage", {
                    "name": model.name, "version": str(number), "stage": version["current_stage"],
                    "archive_existing_versions": False})
        return numbers


def _run_path(version: dict[str, Any]) -> str | None:
    """The model's path in its run's artifacts when the source is ``runs:/<its run>/path``, else None."""
    source, run_id = str(version.get("source", "")), version.get("run_id")
    if not run_id or not source.startswith(f"runs:/{run_id}"):
        return None
    rest = source[len(f"runs:/{run_id}"):]
    if rest and not rest.startswith("/"):
        return None
    return rest.strip("/")
