"""Activate a conda prefix the way ``conda activate`` does, computed once and replayed cheaply.

rattler writes the activation script (PATH, ``CONDA_PREFIX``, env vars from ``conda-meta/state``,
``etc/conda/activate.d/*.sh``); running it once in bash and diffing the environment gives a *delta*
that is stored in the env's cache metadata. A warm run applies the delta without bash or rattler.
A variable the script extended (``PATH=$PREFIX/bin:$PATH``) is stored as a template, so the delta
is applied to whatever value the caller has at run time.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

from proj.errors import EnvError

Delta = dict[str, "str | None"]  # name -> new value (may hold HOLE), or None for "unset"
HOLE = "\x00PROJ_PREVIOUS\x00"  # marks where the caller's value goes in a template
_PLACEHOLDER = "__PROJ_CALLER_PATH__"
_SHELL_NOISE = {"PWD", "OLDPWD", "SHLVL", "_"}


def compute(prefix: Path) -> Delta:
    """Run the activation script for ``prefix`` in bash and return the environment delta."""
    from rattler.shell import ActivationVariables, Shell, activate

    script = activate(prefix, ActivationVariables(None, [_PLACEHOLDER]), Shell.bash).script
    # rattler lists the current PATH itself and appends ${PATH}; keep only the live ${PATH}.
    script = script.replace(f"{_PLACEHOLDER}:", "").replace(_PLACEHOLDER, "")
    declared = _declared_variables(prefix)
    # Declared variables are set literally below; bash must never see (and expand or run) their values.
    script = "\n".join(line for line in script.splitlines()
                       if not any(line.startswith((f"export {n}=", f"{n}=")) for n in declared))
    before = {k: v for k, v in os.environ.items() if k not in _SHELL_NOISE}
    after = _run(script + "\nenv -0\n", before, prefix)
    delta: Delta = {k: None for k in before if k not in after and k not in _SHELL_NOISE}
    for name, value in after.items():
        if name in _SHELL_NOISE or before.get(name) == value:
            continue
        old = before.get(name)
        delta[name] = value.replace(old, HOLE, 1) if old and len(old) > 1 and old in value else value
    delta["CONDA_DEFAULT_ENV"] = str(prefix)
    delta.update(declared)
    return delta


def _declared_variables(prefix: Path) -> dict[str, str]:
    """conda.yaml ``variables`` exactly as declared: the activation script would let bash expand
    ``$(...)`` and ``$X`` in them (as data, they must not run)."""
    import json

    try:
        state = json.loads((prefix / "conda-meta" / "state").read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in (state.get("env_vars") or {}).items()}


def _run(script: str, env: dict[str, str], prefix: Path) -> dict[str, str]:
    proc = subprocess.run(["bash", "--noprofile", "--norc", "-c", script], env=env, cwd=prefix,
                          capture_output=True, check=False)
    if proc.returncode != 0:
        detail = proc.stderr.decode(errors="replace").strip().splitlines()
        raise EnvError(f"activating {prefix} failed: {detail[-1] if detail else f'exit code {proc.returncode}'}")
    pairs = (item.split("=", 1) for item in proc.stdout.decode(errors="replace").split("\0") if "=" in item)
    return dict(pairs)


def apply(delta: Delta, base: dict[str, str]) -> dict[str, str]:
    """The child's environment: ``base`` with the activation replayed on top of it."""
    env = dict(base)
    _drop_other_prefix(env)
    for name, value in delta.items():
        if value is None:
            env.pop(name, None)
        elif HOLE in value:
            old = env.get(name, "")
            env[name] = value.replace(HOLE, old) if old else _strip_hole(value)
        else:
            env[name] = value
    return env


def _strip_hole(value: str) -> str:
    """A template applied to an unset variable: drop the hole and the separator next to it."""
    for sep in (os.pathsep + HOLE, HOLE + os.pathsep, HOLE):
        value = value.replace(sep, "")
    return value


def _drop_other_prefix(env: dict[str, str]) -> None:
    """A conda env the caller had active is deactivated first, as ``conda activate`` would."""
    other = env.get("CONDA_PREFIX")
    if other and "PATH" in env:
        stale = os.path.join(other, "bin")
        env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep) if p != stale)
