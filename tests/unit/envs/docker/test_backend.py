"""Docker backend parts that need no daemon: -A parsing, context hashing, mounts, errors, lazy import."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Callable

import pytest

from helpers.cli import Proj
from proj.envs.base import Invocation
from proj.envs.docker.args import parse_docker_args
from proj.envs.docker.context import content_digest, context_files
from proj.envs.docker.mounts import declared_volumes, host_environment, invocation_volumes
from proj.errors import EnvError, UsageError
from proj.project.spec import DockerEnv


def test_docker_args_map_to_sdk_keywords() -> None:
    kwargs = parse_docker_args(["memory=2g", "cpus=1.5", "shm-size=1g", "user=1000:1000", "gpus=all",
                                "env=A=1", "e=B=2", "--network=host", "label=k=v", "read-only", "ulimit=nofile=10:20"])
    assert kwargs["mem_limit"] == "2g" and kwargs["nano_cpus"] == 1_500_000_000 and kwargs["shm_size"] == "1g"
    assert kwargs["user"] == "1000:1000" and kwargs["network_mode"] == "host" and kwargs["read_only"] is True
    assert kwargs["environment"] == ["A=1", "B=2"] and kwargs["labels"] == {"k": "v"}
    assert kwargs["device_requests"][0]["Count"] == -1
    assert kwargs["ulimits"][0]["Soft"] == 10 and kwargs["ulimits"][0]["Hard"] == 20


def test_docker_args_errors_name_the_item_and_the_choices() -> None:
    with pytest.raises(UsageError, match=r"unsupported docker option 'frob'.*memory.*shm-size"):
        parse_docker_args(["frob=1"])
    with pytest.raises(UsageError, match="memory needs a value"):
        parse_docker_args(["memory"])
    with pytest.raises(UsageError, match="bad value for cpus"):
        parse_docker_args(["cpus=lots"])


def test_context_honours_dockerignore_and_always_skips_store_and_git(tmp_path: Path) -> None:
    for rel in ("a.py", "data/x.csv", "data/keep.csv", "notes.md", ".git/HEAD", ".proj/db", "sub/.proj"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(rel)
    (tmp_path / ".dockerignore").write_text("# comment\n*.md\ndata/*\n!data/keep.csv\n")
    files = context_files(tmp_path)
    assert "a.py" in files and "data/keep.csv" in files and "sub/.proj" in files
    assert not {"notes.md", "data/x.csv", ".git/HEAD", ".proj/db", ".git", ".proj"} & set(files)


def test_content_digest_follows_content_mode_and_names(tmp_path: Path) -> None:
    (tmp_path / "a.sh").write_text("echo 1")
    before = content_digest(tmp_path, ["a.sh"])
    (tmp_path / "a.sh").write_text("echo 1")  # same content, new mtime: same digest
    assert content_digest(tmp_path, ["a.sh"]) == before
    (tmp_path / "a.sh").chmod(0o755)
    assert content_digest(tmp_path, ["a.sh"]) != before


def test_host_environment_copies_defines_and_reports_missing() -> None:
    spec = DockerEnv(image="i", environment=("HOSTVAR", ("DEF", "v"), "GONE1", "GONE2"))
    with pytest.raises(EnvError, match="copies GONE1, GONE2 from the host, but they are not set"):
        host_environment(spec, "MLproject", {"HOSTVAR": "h"})
    ok = DockerEnv(image="i", environment=("HOSTVAR", ("DEF", "v")))
    assert host_environment(ok, "MLproject", {"HOSTVAR": "h"}) == {"HOSTVAR": "h", "DEF": "v"}


def test_mounts_use_identical_paths_without_duplicates(tmp_path: Path) -> None:
    run_dir, data = tmp_path / "run", tmp_path / "data.csv"
    inv = Invocation(command="c", cwd=tmp_path, env={}, path_params={"d": data, "inner": run_dir / "x"},
                     mounts={run_dir: "rw", Path("/opt/client"): "ro"})
    assert invocation_volumes(inv) == ["/opt/client:/opt/client:ro", f"{data}:{data}:rw", f"{run_dir}:{run_dir}:rw"]
    spec = DockerEnv(image="i", volumes=("./d:/d:ro", "/abs:/abs", "named:/n"))
    assert declared_volumes(spec, tmp_path) == [f"{tmp_path}/d:/d:ro", "/abs:/abs", "named:/n"]


def test_no_daemon_is_one_clear_error_before_the_run(proj: Proj, make_project: Callable[..., Path],
                                                     tmp_path: Path) -> None:
    root = make_project({"MLproject": "docker_env:\n  image: python:3.11-slim\n"
                                      "entry_points:\n  main:\n    command: 'true'\n"})
    out = proj("run", str(root), env={"DOCKER_HOST": f"unix://{tmp_path}/no-such.sock"})
    assert out.code == 1 and "cannot reach the Docker daemon" in out.stderr, out
    assert len(out.stderr.strip().splitlines()) == 1, out
    assert proj.runs() == []


def test_docker_sdk_is_not_imported_at_startup() -> None:
    code = "import sys, proj.cli.main, proj.pipeline.run; print('docker' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
