"""Bringing back the exact code a run used: a git commit (plus its uncommitted patch and untracked
files) or the snapshot of a directory outside git, in a private directory that nothing else mutates."""
from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import Any

from proj.errors import CannotReproduce, ProjError, UnsafePath
from proj.paths import cache, contained
from proj.sources.base import Source
from proj.sources.provenance import PATCH, UNTRACKED
from proj.sources.snapshot import SNAPSHOT
from proj.tracking.records import RunRecord

# The only files reproduce takes from a run's artifacts/source/, with how messages name them.
PROVENANCE = {SNAPSHOT: "source snapshot", PATCH: "uncommitted changes (uncommitted.patch)",
              UNTRACKED: "untracked files (untracked.tar.gz)"}


def materialize(old: RunRecord, workdir: Path, notes: list[str] | None = None) -> Source:
    """A Source whose project_dir holds exactly the code ``old`` ran, and whose record repeats old's."""
    src = dict(old.source)
    saved = recorded_files(old, workdir / "provenance", notes if notes is not None else [])
    if src.get("commit"):
        root = _checkout(src, workdir)
        _apply_local_changes(root, saved)
        # Local work trees record the project's path inside the repository; git sources their #subdir.
        rel = (src.get("repo_path") if src.get("kind") == "local" else src.get("subdir")) or ""
        project_dir = _inside(root, rel) if rel else root
    elif SNAPSHOT in saved:
        project_dir = workdir / "snapshot"
        _untar(saved[SNAPSHOT], project_dir)
    else:
        raise CannotReproduce(f"run {old.id[:12]} recorded neither a git commit nor a snapshot of {src.get('uri')}")
    source = Source(uri=src.get("uri", ""), project_dir=project_dir, kind=src.get("kind", "local"),
                    version=src.get("version"), commit=src.get("commit"), branch=src.get("branch"),
                    remote=src.get("remote"), subdir=src.get("subdir"), dirty=src.get("dirty"),
                    untracked=list(src.get("untracked") or []),
                    extra={k: v for k, v in src.items() if k in ("worktree", "repo_path", "snapshot", "snapshot_sha256")})
    source.artifacts = dict(saved)  # the new run keeps the same (verified) provenance files
    return source


def recorded_files(old: RunRecord, dest: Path, notes: list[str]) -> dict[str, Path]:
    """Private copies (in ``dest``) of the provenance files ``old``'s record lists, each checked against
    the sha256 the record holds.

    The run folder is the child's to write (a container mounts it): only the known names the record lists
    are taken (a file that appeared later, e.g. a patch beside a clean run, is ignored), never a symlink,
    and a file whose content no longer matches refuses the reproduction.
    """
    listed = {str(name).removeprefix("source/") for name in old.source.get("artifacts") or []}
    hashes = dict(old.source.get("artifact_sha256") or {})
    if old.source.get("snapshot_sha256"):
        hashes.setdefault(SNAPSHOT, old.source["snapshot_sha256"])
    saved = Path(old.run_dir) / "artifacts" / "source"
    found: dict[str, Path] = {}
    for name in PROVENANCE:
        if name not in listed:
            continue
        data = read_plain(saved / name, old)
        recorded = hashes.get(name)
        if recorded is None:  # recorded by a proj that kept no hash of it
            notes.append(f"source: {name} of run {old.id[:12]} was recorded without a hash and cannot be verified")
        elif hashlib.sha256(data).hexdigest() != recorded:
            raise CannotReproduce(f"cannot reproduce: the recorded {PROVENANCE[name]} was modified "
                                  f"(sha256 mismatch): {saved / name}")
        dest.mkdir(parents=True, exist_ok=True)
        (dest / name).write_bytes(data)
        found[name] = dest / name
    return found


def read_plain(path: Path, old: RunRecord) -> bytes:
    """The bytes of a regular file, read without following a symlink (one planted there is refused)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise CannotReproduce(f"cannot reproduce run {old.id[:12]}: its recorded {path.name} is missing ({path})") from None
    except OSError as exc:
        raise CannotReproduce(f"cannot reproduce run {old.id[:12]}: its recorded {path.name} is not a plain file "
                              f"({path}: {exc.strerror})") from None
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            raise CannotReproduce(f"cannot reproduce run {old.id[:12]}: its recorded {path.name} is not a plain file ({path})")
        return fh.read()


def _inside(root: Path, rel: str) -> Path:
    """``root/rel`` for the recorded project path inside the checkout, which must stay inside it."""
    try:
        contained(root, rel, what="recorded project path")
    except UnsafePath as exc:
        raise CannotReproduce(str(exc)) from None
    return root / rel


def _checkout(src: dict[str, Any], workdir: Path) -> Path:
    """A private copy of the recorded commit (the shared cache checkout must stay read-only)."""
    from proj.sources.git import resolve_git
    from proj.sources.urls import file_url

    if src.get("kind") == "local":
        origin = src.get("worktree") or src.get("dir")
        url = file_url(str(origin))
    else:
        url = src.get("remote") or src.get("uri", "").split("#")[0]
    try:
        shared = resolve_git(url, src["commit"])
    except ProjError as exc:
        raise CannotReproduce(f"the recorded commit {src['commit'][:12]} cannot be fetched: {exc}") from None
    root = shared.project_dir
    private = workdir / "checkout"
    shutil.copytree(root, private, symlinks=True, ignore=shutil.ignore_patterns(".git"))
    for path in private.rglob("*"):  # the cache's checkouts are read-only; the copy must be writable
        if not path.is_symlink():
            path.chmod(path.stat().st_mode | 0o200)
    private.chmod(private.stat().st_mode | 0o200)
    return private


def _apply_local_changes(root: Path, saved: dict[str, Path]) -> None:
    patch = saved.get(PATCH)
    if patch is not None and patch.stat().st_size:
        proc = subprocess.run(["git", "apply", "--binary", "--whitespace=nowarn", str(patch)], cwd=root,
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise CannotReproduce(f"the recorded uncommitted changes do not apply: {proc.stderr.strip().splitlines()[-1:]}")
    untracked = saved.get(UNTRACKED)
    if untracked is not None:
        _untar(untracked, root)


def _untar(archive: Path, dest: Path) -> None:
    """Unpack ``archive`` into ``dest`` member by member, each checked just before it is written (an
    earlier member may be a symlink a later one would write through); anything leading outside is refused."""
    dest.mkdir(parents=True, exist_ok=True)
    # tarfile's own "data" filter (Python >= 3.10.12) also drops modes and owners it should not restore
    extra: dict[str, Any] = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}  # filter= only where known
    try:
        with tarfile.open(archive) as tar:
            for member in tar:
                _check_member(member, dest, archive)
                tar.extract(member, dest, **extra)
    except UnsafePath as exc:
        raise CannotReproduce(f"the recorded source archive {archive} is refused: {exc}") from None
    except (tarfile.TarError, OSError) as exc:
        raise CannotReproduce(f"the recorded source archive {archive} cannot be unpacked: {exc}") from None


def _check_member(member: tarfile.TarInfo, dest: Path, archive: Path) -> None:
    """UnsafePath unless ``member`` is a file, folder or link that stays inside ``dest``."""
    what = f"member of {archive.name}"
    if member.name.strip("/") in ("", ".") and member.isdir() and not member.name.startswith("/"):
        return  # the archive's own top folder ("./")
    target = contained(dest, member.name, what=what)
    if not (member.isfile() or member.isdir() or member.issym() or member.islnk()):
        raise UnsafePath(f"{what} {member.name!r} is a device or fifo; only files, folders and links are restored")
    if member.issym():
        if member.linkname.startswith("/"):
            raise UnsafePath(f"{what} {member.name!r} is a symlink to an absolute path ({member.linkname!r})")
        link = os.path.normpath(os.path.join(target.parent.relative_to(dest.resolve()), member.linkname))
        if link != ".":  # a link to the top folder itself stays inside
            contained(dest, link, what=f"symlink target of {what} {member.name!r}")
    elif member.islnk():
        contained(dest, member.linkname, what=f"hard link target of {what} {member.name!r}")


def workspace() -> tempfile.TemporaryDirectory[str]:
    """A private directory for one reproduction, under the cache dir, removed afterwards."""
    base = cache().reproduce
    base.mkdir(parents=True, exist_ok=True)
    return tempfile.TemporaryDirectory(prefix="run-", dir=base)
