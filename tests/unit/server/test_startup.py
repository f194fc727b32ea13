"""`proj server` loads starlette and uvicorn only for itself: other commands' start-up does not grow."""
from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("starlette", "uvicorn", "orjson", "anyio",
         "fsspec", "s3fs", "botocore", "aiobotocore")  # only for an s3:// --artifacts-destination (object_store)


def _imported(*argv: str) -> set[str]:
    out = subprocess.run([sys.executable, "-X", "importtime", "-m", "proj", *argv], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    names = set()
    for line in out.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    return names


@pytest.mark.parametrize("argv", [("--help",), ("server", "--help"), ("runs", "--help")])
def test_no_server_framework_at_start_up(argv: tuple[str, ...]) -> None:
    imported = _imported(*argv)
    assert "click" in imported  # the probe sees imports at all
    assert not imported & set(HEAVY), sorted(imported & set(HEAVY))


def test_server_command_is_listed() -> None:
    out = subprocess.run([sys.executable, "-m", "proj", "--help"], capture_output=True, text=True, timeout=60)
    assert "server" in out.stdout
