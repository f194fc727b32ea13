"""moto's standalone S3 server (``python -m moto.server``) on a free loopback port, for the s3:// artifact tests:
started as a subprocess, waited for, a bucket made with boto3, and the environment a `proj server` needs."""
from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from helpers.cli import require
from helpers.servers import free_port

REGION = "us-east-1"
# moto accepts any key unless told to check them; these are what every test client signs with
KEY_ID, SECRET = "testing-key-id", "testing-secret-never-printed"


@dataclass
class Moto:
    """One moto S3 server; ``restart`` brings it back on the same port (empty: moto keeps state in memory)."""

    port: int
    log: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self, key_id: str = KEY_ID, secret: str = SECRET) -> dict[str, str]:
        """What a `proj server` (or an MLflow client) needs to use this endpoint."""
        return {"AWS_ACCESS_KEY_ID": key_id, "AWS_SECRET_ACCESS_KEY": secret, "AWS_DEFAULT_REGION": REGION,
                "MLFLOW_S3_ENDPOINT_URL": self.url}

    def client(self, key_id: str = KEY_ID, secret: str = SECRET) -> Any:
        import boto3

        return boto3.client("s3", endpoint_url=self.url, aws_access_key_id=key_id, aws_secret_access_key=secret,
                            region_name=REGION)

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p",
                                             str(self.port)], stdout=out, stderr=subprocess.STDOUT,
                                            env={**os.environ, **self.extra_env}, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"moto exited with {self.process.returncode}:\n{self.log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(self.url + "/moto-api/", timeout=1):
                    return
            except urllib.error.HTTPError:
                return  # it answers
            except OSError:
                time.sleep(0.1)
        raise AssertionError(f"moto did not answer on {self.url} in 60 s:\n{self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def make_bucket(self, name: str) -> None:
        self.client().create_bucket(Bucket=name)

    def keys(self, bucket: str, prefix: str = "") -> dict[str, bytes]:
        """Every object in the bucket below ``prefix``, with its content."""
        s3 = self.client()
        found: dict[str, bytes] = {}
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                found[item["Key"]] = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
        return found


def moto_available() -> bool:
    return all(importlib.util.find_spec(m) is not None for m in ("moto", "boto3", "s3fs", "flask"))


@contextmanager
def moto_server(work: Path, extra_env: dict[str, str] | None = None) -> Iterator[Moto]:
    """A running moto S3 server (skipped, or failed under PROJ_TEST_REQUIRE_ALL=1, when moto is not installed)."""
    require(moto_available(), "moto[server], boto3 and s3fs are not installed (pip install -e '.[test]')")
    work.mkdir(parents=True, exist_ok=True)
    moto = Moto(free_port(), work / "moto.log", dict(extra_env or {}))
    try:
        moto.start()
        yield moto
    finally:
        moto.stop()
