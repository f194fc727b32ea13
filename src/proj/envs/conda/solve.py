"""Solve and install conda packages in-process with py-rattler (no conda binary), or with a frontend.

rattler is async: each coroutine runs under ``asyncio.run``. Its errors are typed; each is turned
into one line that names the spec file and says what to do. rattler trusts ``file://`` packages
without checking their hash, so every local package file is verified against the lock here.
"""
from __future__ import annotations

import asyncio
import hashlib
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from proj.envs.base import BuildLog
from proj.envs.conda.channels import describe
from proj.envs.conda.spec import CondaSpec
from proj.errors import EnvError, ProjectError
from proj.paths import cache

FRONTENDS = ("conda", "mamba", "micromamba")


def solve(spec: CondaSpec, urls: list[tuple[str, str]], platform: str, log: BuildLog) -> list[Any]:
    """The records that satisfy the spec's conda dependencies, from the mapped channels."""
    log.write(f"solving {len(spec.conda)} conda dependencies against {describe(urls)} for {platform}")
    records, error = _solve(spec, urls, platform)
    if error is not None:
        raise error
    log.write("solved: " + ", ".join(f"{r.name.normalized}={r.version}" for r in records))
    return sorted(records, key=lambda r: r.name.normalized)


def run_async(coro: Any) -> Any:
    """``asyncio.run`` for rattler coroutines, then a 10 ms GIL-free pause.

    rattler's tokio thread finishes its side of a call (dropping Python references) just after the
    result is delivered; if the interpreter starts shutting down first, the process crashes at exit
    (py-rattler 0.28: exit code 139/134 in about 1 run in 4 of ``solve`` + exit). The pause lets
    that thread finish; it is paid on cold paths only.
    """
    try:
        return asyncio.run(coro)
    finally:
        time.sleep(0.01)


def _solve(spec: CondaSpec, urls: list[tuple[str, str]], platform: str) -> tuple[list[Any], Exception | None]:
    """Run the solver; failures come back as a value, so no rattler object outlives this frame."""
    import rattler

    specs = [_match_spec(s, spec) for s in spec.conda]
    channels = [rattler.Channel(url) for _, url in urls]
    try:
        records = run_async(rattler.solve(channels, specs, gateway=_gateway(), platforms=[platform, "noarch"],  # type: ignore[list-item]
                                            virtual_packages=rattler.VirtualPackage.detect(),
                                            channel_relations="disabled"))
    except Exception as exc:  # noqa: BLE001 - narrowed by _solve_error, returned as-is when unknown
        return [], _solve_error(exc, spec, urls)
    return records, None


def check_match_specs(spec: CondaSpec) -> None:
    """Parse every conda dependency, so a typo fails before a run is recorded (not at solve time)."""
    for text, written in zip(spec.conda, spec.written or spec.conda, strict=True):
        _match_spec(text, spec, written)


def _match_spec(text: str, spec: CondaSpec, written: str | None = None) -> Any:
    import rattler

    try:
        return rattler.MatchSpec(text)
    except Exception as exc:  # noqa: BLE001 - InvalidMatchSpecError and friends
        # rattler appends a "Caused by:" repetition on further lines: its first line says it all.
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        message = f"{spec.path}: dependencies: {written or text!r} is not a valid conda match spec: {reason}"
    raise ProjectError(message)  # a mistake in the file, like a schema error (exit 2)


def _gateway() -> Any:
    import rattler

    return rattler.Gateway(cache_dir=cache().conda_repodata)


def _solve_error(exc: Exception, spec: CondaSpec, urls: list[tuple[str, str]]) -> Exception:
    kind = type(exc).__name__
    text = " ".join(str(exc).split())
    where = f"in channels {describe(urls)}"
    if kind == "SolverError" and "No candidates were found for" in text:
        wanted = text.split("No candidates were found for", 1)[1].strip().rstrip(".")
        return EnvError(f"{spec.path}: no package matches {wanted!r} {where}")
    if kind == "SolverError":
        reason = _one_line(str(exc).replace("Cannot solve the request because of:", ""))
        return EnvError(f"{spec.path}: the dependencies cannot be installed together: {reason}")
    if kind in ("GatewayError", "FetchRepoDataError", "InvalidChannelError"):
        return EnvError(f"{spec.path}: a channel cannot be read ({describe(urls)}): {_one_line(str(exc))} "
                        f"(set PROJ_CONDA_CHANNEL_ALIAS or [conda.channels] in the proj config to use a mirror)")
    return exc


def _one_line(text: str) -> str:
    """rattler explains conflicts as a tree; keep its words, drop the drawing, join into one line."""
    out = ""
    for line in (ln.strip(" │├└─\t") for ln in text.strip().splitlines()):
        if not line:
            continue
        glue = " " if not out or out.endswith((":", "require")) else "; "
        out += (glue if out else "") + line
        if line == "The following packages are incompatible":
            out += ":"
    return out


def verify_files(records: list[Any]) -> None:
    """Check every local (``file://``) package file against the sha256 the lock recorded."""
    for record in records:
        url = record.url
        if not url.startswith("file://"):
            continue  # rattler checks downloads against the record's sha256 itself
        path = Path(unquote(urlparse(url).path))
        expected = record.sha256.hex() if record.sha256 is not None else None
        if expected is None:
            raise EnvError(f"package {record.file_name}: the lock has no sha256 for it, so it cannot be verified")
        actual = _sha256(path)
        if actual != expected:
            raise EnvError(f"package file {path} does not match the lock (sha256 {actual[:16]}..., expected "
                           f"{expected[:16]}...): it was rebuilt or corrupted; re-lock with --refresh-env if intended")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    except OSError as exc:
        raise EnvError(f"package file {path} cannot be read: {exc.strerror or exc}") from None
    return digest.hexdigest()


def install(records: list[Any], prefix: Path, log: BuildLog, frontend: str | None = None) -> None:
    """Create ``prefix`` holding exactly ``records`` (verified first)."""
    verify_files(records)
    if frontend is not None:
        _install_with_frontend(records, prefix, frontend, log)
        return
    log.write(f"installing {len(records)} conda packages into {prefix}")
    error = _install(records, prefix)
    if error is not None:
        raise EnvError(f"installing conda packages into {prefix} failed: {error}")


def _install(records: list[Any], prefix: Path) -> str | None:
    """rattler's install; a failure is returned as text (see _solve for why it is not raised here)."""
    import rattler

    try:
        run_async(rattler.install(records, prefix.resolve(), cache_dir=cache().conda_pkgs,
                                    show_progress=False))
    except Exception as exc:  # noqa: BLE001 - InstallerError, TransactionError, LinkError, ...
        return _one_line(str(exc))
    return None


def frontend_path(name: str) -> str:
    """The executable of a requested frontend, or a clear error."""
    if name not in FRONTENDS:
        raise EnvError(f"--conda-frontend {name!r} is not one of: {', '.join(FRONTENDS)}")
    found = shutil.which(name)
    if found is None:
        raise EnvError(f"--conda-frontend {name}: no {name!r} executable on PATH (omit the option to use the "
                       f"built-in installer, which needs no conda)")
    return found


def _install_with_frontend(records: list[Any], prefix: Path, frontend: str, log: BuildLog) -> None:
    """Install the locked set with conda/mamba/micromamba from an @EXPLICIT file (no re-solve)."""
    exe = frontend_path(frontend)
    explicit = prefix.parent / f".{prefix.name}.explicit.txt"
    explicit.write_text("@EXPLICIT\n" + "".join(f"{r.url}#{r.sha256.hex()}\n" for r in records))
    argv = [exe, "create", "--yes", "--prefix", str(prefix), "--file", str(explicit)]
    log.write("$ " + " ".join(argv))
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    explicit.unlink(missing_ok=True)
    log.write(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        lines = [line for line in (proc.stderr or proc.stdout).splitlines() if line.strip()]
        raise EnvError(f"{frontend} create failed: {lines[-1] if lines else f'exit code {proc.returncode}'}")
