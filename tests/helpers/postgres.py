"""A real PostgreSQL server for the tests: Debian's binaries, a cluster in a temporary directory on a free port
(one per test session or xdist worker), a fresh database per test module, torn down at the end."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

from helpers.cli import require

BIN = Path(os.environ.get("PROJ_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))


@dataclass
class Cluster:
    directory: Path
    port: int
    user: str

    def uri(self, database: str) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"

    def create_database(self, prefix: str = "t") -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        self._as_owner([str(BIN / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), name])
        return name

    def drop_database(self, name: str) -> None:
        self._as_owner([str(BIN / "dropdb"), "-h", "127.0.0.1", "-p", str(self.port), "--force", "--if-exists", name],
                       check=False)

    def psql(self, database: str, sql: str) -> str:
        done = self._as_owner([str(BIN / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-At", "-v",
                               "ON_ERROR_STOP=1", "-c", sql, database])
        return done.stdout.strip()

    def _as_owner(self, argv: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(_as_user(self.user, argv), capture_output=True, text=True, check=check, timeout=60)

    def halt(self) -> None:
        """Stop the server (fast: open connections are ended) but keep its data: ``start`` brings it back. Only on
        a cluster the test started itself, never the session's shared one."""
        self._as_owner([str(BIN / "pg_ctl"), "-D", str(self.directory / "data"), "-m", "fast", "-w", "stop"])

    def start(self) -> None:
        self._as_owner(_start_argv(self.directory, self.port))

    def restart(self) -> None:
        """``pg_ctl restart -m fast``: every connection ended, the server back on the same port."""
        self._as_owner([str(BIN / "pg_ctl"), "-D", str(self.directory / "data"), "-l", str(self.directory / "server.log"),
                        "-m", "fast", "-w", "restart"])

    def stop(self) -> None:
        subprocess.run(_as_user(self.user, [str(BIN / "pg_ctl"), "-D", str(self.directory / "data"), "-m", "fast",
                                            "-w", "stop"]), capture_output=True, timeout=60)
        shutil.rmtree(self.directory, ignore_errors=True)


def _as_user(user: str, argv: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: as root, run its tools as the postgres user."""
    return ["runuser", "-u", user, "--", *argv] if os.geteuid() == 0 else argv


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def missing_reason() -> str | None:
    """Why a cluster cannot be started here, or None."""
    if not (BIN / "initdb").is_file():
        return f"PostgreSQL is not installed ({BIN / 'initdb'} missing: apt-get install postgresql)"
    if os.geteuid() == 0:
        try:
            import pwd

            pwd.getpwnam("postgres")
        except KeyError:
            return "no postgres user to run PostgreSQL as (root may not)"
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed (pip install 'psycopg[binary]')"
    return None


def start_cluster() -> Cluster:
    """initdb + pg_ctl start in a new temporary directory; skips (fails under PROJ_TEST_REQUIRE_ALL) if impossible."""
    reason = missing_reason()
    require(reason is None, reason or "")
    user = "postgres" if os.geteuid() == 0 else os.environ.get("USER", "postgres")
    directory = Path(tempfile.mkdtemp(prefix="proj-pg-"))
    if os.geteuid() == 0:
        shutil.chown(directory, user)
        directory.chmod(0o700)
    data = directory / "data"
    init = subprocess.run(_as_user(user, [str(BIN / "initdb"), "-D", str(data), "-A", "trust", "-U", user]),
                          capture_output=True, text=True, timeout=120)
    require(init.returncode == 0, f"initdb failed: {init.stderr.strip()[-300:]}")
    for _ in range(3):  # a port taken between choosing and binding: try another
        port = free_port()
        started = subprocess.run(_as_user(user, _start_argv(directory, port)), capture_output=True, text=True,
                                 timeout=120)
        if started.returncode == 0:
            return Cluster(directory, port, user)
    log = (directory / "server.log").read_text(errors="replace")[-300:] if (directory / "server.log").exists() else ""
    shutil.rmtree(directory, ignore_errors=True)
    require(False, f"pg_ctl start failed: {started.stderr.strip()[-200:]} {log}")
    raise AssertionError("unreachable")


def _start_argv(directory: Path, port: int) -> list[str]:
    return [str(BIN / "pg_ctl"), "-D", str(directory / "data"), "-l", str(directory / "server.log"), "-o",
            f"-p {port} -k {directory} -c listen_addresses=127.0.0.1 -c fsync=off", "-w", "start"]


def admin(cluster: Cluster):  # type: ignore[no-untyped-def]
    """An autocommit connection to the cluster's maintenance database (CREATE/DROP DATABASE)."""
    import psycopg

    return psycopg.connect(cluster.uri("postgres"), autocommit=True)


def copy_database(cluster: Cluster, template: str, prefix: str = "t") -> str:
    """A fresh database holding what ``template`` holds (a migrated empty store: 30 ms instead of a migration)."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with admin(cluster) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    return name


def drop(cluster: Cluster, name: str) -> None:
    with admin(cluster) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
