"""Content fingerprints of a run's ``path`` inputs, so a reproduction can tell data changes from code changes.

Hashing is capped (``MAX_BYTES`` per input, ``MAX_FILES`` per directory) and the cap is noted; results
are cached by (path, size, mtime, inode) so warm runs over the same data cost a few stat calls.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

MAX_BYTES = 256 * 1024 * 1024
MAX_FILES = 10_000


def fingerprint_inputs(paths: dict[str, str]) -> dict[str, dict[str, Any]]:
    """``{param: {"path", "kind", "sha256", "bytes", "files", "capped"}}`` for each existing local path."""
    cache = _Cache()
    result = {}
    for name, value in paths.items():
        path = Path(value)
        if path.is_file():
            result[name] = {"path": value, "kind": "file", **cache.file(path)}
        elif path.is_dir():
            result[name] = {"path": value, "kind": "dir", **_directory(path, cache)}
    cache.save()
    return result


def _directory(root: Path, cache: "_Cache") -> dict[str, Any]:
    """A manifest hash over (relative path, file hash), in sorted order, within the caps."""
    manifest = hashlib.sha256()
    total = files = 0
    capped = False
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for fname in sorted(filenames):
            path = Path(dirpath, fname)
            if files >= MAX_FILES or total >= MAX_BYTES:
                capped = True
                break
            info = cache.file(path, budget=MAX_BYTES - total)
            manifest.update(f"{path.relative_to(root)}\0{info['sha256']}\n".encode())
            total += info["bytes"]
            files += 1
            capped = capped or info["capped"]
    return {"sha256": manifest.hexdigest(), "bytes": total, "files": files, "capped": capped}


class _Cache:
    """sha256 of files keyed by their stat signature, kept in the user cache dir."""

    def __init__(self) -> None:
        from proj.paths import cache_dir

        self.path = cache_dir() / "input-hashes.json"
        try:
            self.data: dict[str, Any] = json.loads(self.path.read_text())
        except (OSError, ValueError):
            self.data = {}
        self.dirty = False

    def file(self, path: Path, budget: int = MAX_BYTES) -> dict[str, Any]:
        st = path.stat()
        key = f"{path.resolve()}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ino}"
        if key in self.data:
            return self.data[key]
        digest, capped = hashlib.sha256(), st.st_size > budget
        with open(path, "rb") as fh:
            remaining = min(st.st_size, budget)
            while remaining > 0:
                chunk = fh.read(min(1 << 20, remaining))
                if not chunk:
                    break
                digest.update(chunk)
                remaining -= len(chunk)
        info = {"sha256": digest.hexdigest(), "bytes": st.st_size, "capped": capped}
        self.data[key] = info
        self.dirty = True
        return info

    def save(self) -> None:
        if not self.dirty:
            return
        from proj.paths import atomic_write

        if len(self.data) > 50_000:  # bounded: drop the oldest half
            self.data = dict(list(self.data.items())[25_000:])
        try:
            atomic_write(self.path, json.dumps(self.data))
        except OSError:
            pass
