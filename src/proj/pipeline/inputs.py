"""Content fingerprints of a run's ``path`` inputs, so a reproduction can tell data changes from code changes.

Hashing is capped (``MAX_BYTES`` per input, ``MAX_FILES`` per directory) and the cap is noted; results
are cached by (path, size, mtime, inode) so warm runs over the same data cost a few stat calls.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Iterator

from proj.paths import cache

MAX_BYTES = 256 * 1024 * 1024
MAX_FILES = 10_000
# Entries kept in input-hashes.json (two directory inputs at the file cap, a few MB of JSON at most).
CACHE_ENTRIES = 2 * MAX_FILES


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
    for path in _walk_files(root):
        if files >= MAX_FILES or total >= MAX_BYTES:
            capped = True
            break  # closes the generator, so os.walk stops too (``-P d=/usr`` must not walk all of /usr)
        info = cache.file(path, budget=MAX_BYTES - total)
        manifest.update(f"{path.relative_to(root)}\0{info['sha256']}\n".encode())
        total += info["bytes"]
        files += 1
        capped = capped or info["capped"]
    return {"sha256": manifest.hexdigest(), "bytes": total, "files": files, "capped": capped}


def _walk_files(root: Path) -> Iterator[Path]:
    """Every regular file under ``root`` in a stable (sorted) order, walked lazily.

    Broken symlinks, sockets and FIFOs are left out: stat fails on the first, and reading a FIFO blocks.
    """
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for fname in sorted(filenames):
            if os.path.isfile(os.path.join(dirpath, fname)):
                yield Path(dirpath, fname)


class _Cache:
    """sha256 of files, one entry per path holding the stat signature it was computed for.

    Keyed by path (not by path + stats), so an edited file replaces its entry instead of adding one;
    at most ``CACHE_ENTRIES`` are kept (the oldest written go first), and the file is rewritten only
    when an entry was added, so warm runs over unchanged data write nothing.
    """

    def __init__(self) -> None:
        self.path = cache().input_hashes
        try:
            saved = json.loads(self.path.read_text())
        except (OSError, ValueError):
            saved = None
        # An older layout (keys of path + stats) is dropped rather than carried along forever.
        current = isinstance(saved, dict) and saved.get("version") == 2
        self.data: dict[str, Any] = saved["files"] if current else {}
        self.dirty = saved is not None and not current

    def file(self, path: Path, budget: int = MAX_BYTES) -> dict[str, Any]:
        st = path.stat()
        key = str(path.resolve())
        # How many bytes are hashed belongs to the signature: a capped hash must not answer for a full one.
        signature = f"{st.st_size}:{st.st_mtime_ns}:{st.st_ino}:{min(st.st_size, budget)}"
        entry = self.data.get(key)
        if entry is not None and entry.get("sig") == signature:
            info: dict[str, Any] = entry["info"]
            return info
        info = {"sha256": _hash_file(path, min(st.st_size, budget)), "bytes": st.st_size,
                "capped": st.st_size > budget}
        self.data.pop(key, None)  # re-inserted last: insertion order is the age used for trimming
        self.data[key] = {"sig": signature, "info": info}
        self.dirty = True
        return info

    def save(self) -> None:
        if not self.dirty:
            return
        from proj.paths import atomic_write

        if len(self.data) > CACHE_ENTRIES:
            self.data = dict(list(self.data.items())[-CACHE_ENTRIES:])
        try:
            atomic_write(self.path, json.dumps({"version": 2, "files": self.data}))
        except OSError:
            pass  # a cache that cannot be written only costs the next run some hashing


def _hash_file(path: Path, limit: int) -> str:
    """sha256 of the first ``limit`` bytes of ``path``."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        remaining = limit
        while remaining > 0:
            chunk = fh.read(min(1 << 20, remaining))
            if not chunk:
                break
            digest.update(chunk)
            remaining -= len(chunk)
    return digest.hexdigest()
