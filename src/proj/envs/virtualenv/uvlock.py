"""uv as resolver and installer: requirement lines -> PEP 751 ``pylock.toml`` -> packages in a virtualenv.

uv (and pip, bytecode compiling) run through :mod:`proj.envs.uv`: output streamed into the build log,
killed with proj, a failure one EnvError carrying the tool's own explanation.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

from proj.envs.base import BuildLog
from proj.envs.uv import run_tool, run_uv, uv_available
from proj.lockfiles.pylock import lock_to_requirements

LOCK_NAME = "pylock.toml"


def compile_lock(requirements: list[str], python: str, log: BuildLog, what: str) -> str:
    """Resolve requirement lines for ``python`` into pylock.toml text (with hashes)."""
    with tempfile.TemporaryDirectory(prefix="proj-resolve-") as tmp:
        req = Path(tmp) / "requirements.in"
        req.write_text("\n".join(requirements) + "\n", encoding="utf-8")
        out = Path(tmp) / LOCK_NAME
        args = ["--format", "pylock.toml", "--no-header", "--python", python, str(req), "-o", str(out)]
        if not any(line.strip() for line in requirements):
            args.append("--quiet")  # an empty env is normal (no env file): no "file has no dependencies" warning
        # uv echoes the lock on stdout as well as writing it: keep only its messages (stderr) in the log.
        run_uv(["pip", "compile"], args, log, f"resolving {what} with uv", cwd=Path(tmp), quiet_stdout=True)
        return out.read_text(encoding="utf-8")


def install_lock(lock_path: Path, python: Path, log: BuildLog, what: str) -> None:
    """Install exactly the packages of a pylock.toml into the environment of ``python``."""
    if not uv_available():
        _pip_install(lock_path, python, log, what)
        return
    run_uv(["pip", "install"], ["--python", str(python), "--preview-features", "pylock", "-r", str(lock_path)],
           log, f"installing {what} with uv", cwd=lock_path.parent)


def compile_bytecode(python: Path, log: BuildLog) -> None:
    """Compile the installed packages now, as pip does, except the build tools runs rarely import.

    A warm run then never pays for compiling (under PYTHONDONTWRITEBYTECODE it would every time), and
    the published env is not written to by runs. pip alone is ~460 files: skipping it halves the cost.
    """
    script = ("import compileall, re, sys, sysconfig; sys.exit(not compileall.compile_dir("
              "sysconfig.get_paths()['purelib'], quiet=1, workers=0, "
              "rx=re.compile(r'/site-packages/(pip|setuptools|wheel|pkg_resources|_distutils_hack)/')))")
    run_tool([str(python), "-c", script], log, "compiling bytecode", cwd=python.parent)


def _pip_install(lock_path: Path, python: Path, log: BuildLog, what: str) -> None:
    """Fallback without uv: pip installs pinned, hashed requirements exported from the lock."""

    req = lock_path.with_name("requirements.lock.txt")
    req.write_text(lock_to_requirements(lock_path.read_text(encoding="utf-8")), encoding="utf-8")
    run_tool([str(python), "-m", "ensurepip", "--default-pip"], log, "bootstrapping pip", cwd=lock_path.parent)
    run_tool([str(python), "-m", "pip", "install", "--no-deps", "--require-hashes", "-r", str(req)], log,
             f"installing {what} with pip", cwd=lock_path.parent)
