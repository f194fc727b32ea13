"""``artifacts/preview``: what the artifacts browser shows of one path, never reading more than ``limit`` bytes;
paths checked and files opened exactly as the artifact endpoints do (server.artifact_paths, server.artifacts)."""
from __future__ import annotations

import csv
import io
from urllib.parse import urlencode

from proj.errors import NotFound, UsageError
from proj.server import artifact_paths as ap
from proj.server.artifacts import list_artifacts, open_artifact, run_owner
from proj.server.protocol import validate as v
from proj.server.ui.call import JsonDict, UiCall

PREVIEW_LIMIT = 65536
MAX_PREVIEW_LIMIT = 4 << 20
MAX_ROWS = 200
IMAGE_MAX = 20 << 20  # the browser fetches an image itself (get-artifact) only below this size
_IMAGES = {"png", "jpg", "jpeg", "gif", "svg", "webp", "bmp", "ico"}
_CSV = {"csv": ",", "tsv": "\t"}


def _kind(name: str, head: bytes) -> str:
    ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    if ext in _IMAGES:
        return "image"
    if ext == "json":
        return "json"
    if ext in _CSV:
        return "csv"
    if b"\0" in head:
        return "binary"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 3:  # not just a character cut at the limit
            return "binary"
    return "text"


def _rows(text: str, delimiter: str, truncated: bool) -> list[list[str]]:
    lines = text.splitlines(keepends=True)
    if truncated and lines and not lines[-1].endswith(("\n", "\r")):
        lines.pop()  # the last line read is cut by the limit
    rows = []
    for row in csv.reader(io.StringIO("".join(lines)), delimiter=delimiter):
        rows.append(row)
        if len(rows) >= MAX_ROWS:
            break
    return rows


def preview(call: UiCall) -> JsonDict:
    run_id = call.string("run_id", need=True)
    assert run_id is not None
    v.check_run_id(run_id)
    path = ap.clean(call.string("path") or "")
    limit = call.integer("limit", PREVIEW_LIMIT, low=1, high=MAX_PREVIEW_LIMIT)
    assert limit is not None
    owner = run_owner(call.state, run_id)
    entries = list_artifacts(owner, path)
    if entries or not path:
        return {"path": path, "size": None, "kind": "dir", "truncated": False,
                "entries": [{"path": ap.join(path, e.name), "is_dir": e.is_dir, "file_size": e.size}
                            for e in entries]}
    try:
        fh, size = open_artifact(owner, path)
    except UsageError:  # a folder with nothing in it
        return {"path": path, "size": None, "kind": "dir", "truncated": False, "entries": []}
    except NotFound:
        raise NotFound(f"No such artifact: '{path}' in run {run_id}") from None
    with fh:
        head = fh.read(min(limit, size) if size else limit)
    kind = _kind(path, head[:8192])
    truncated = size > len(head)
    out: JsonDict = {"path": path, "size": size, "kind": kind, "truncated": truncated}
    if kind == "image":
        out["url"] = "/get-artifact?" + urlencode({"run_id": run_id, "path": path})
        out["too_large"] = size >= IMAGE_MAX
        out["truncated"] = False
    elif kind != "binary":
        out["text"] = head.decode("utf-8", errors="replace")
        if kind == "csv":
            out["rows"] = _rows(out["text"], _CSV[path.rsplit(".", 1)[-1].lower()], truncated)
    return out
