"""The docker backend against a real daemon: image reuse, mounts, variables, exit codes, cancel, errors.

Projects use the locally built ``python:3.11-slim`` (``.ci/build-base-image.sh``). Each test's
project has a unique name, so its images are ``proj/ptest-<id>:*``; they are removed afterwards.
"""
from __future__ import annotations

import os
import shutil
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from helpers.cli import Proj, require, wait_for
from helpers.paths import EXAMPLES

pytestmark = pytest.mark.docker
BASE = "python:3.11-slim"


@pytest.fixture(scope="session")
def client() -> Any:
    try:
        import docker

        client = docker.from_env()
        client.ping()
    except Exception as exc:  # noqa: BLE001 - any failure means "no daemon"
        require(False, f"docker daemon does not answer ({exc}); run .ci/install-docker.sh")
    try:
        client.images.get(BASE)
    except Exception:  # noqa: BLE001
        require(False, f"image {BASE} missing; run .ci/build-base-image.sh")
    return client


@pytest.fixture
def slug(client: Any) -> Iterator[str]:
    """A unique project name; every image and container of that project is removed afterwards."""
    name = f"ptest-{uuid.uuid4().hex[:10]}"
    yield name
    for container in client.containers.list(all=True, filters={"label": f"dev.proj.project={name}"}):
        container.remove(force=True)
    # Project images first: a base built from a project's Dockerfile is their parent.
    import docker.errors

    queries = ({"name": f"proj/{name}"}, {"name": f"{name}-base"}, {"filters": {"label": f"dev.proj.project={name}"}})
    for query in queries:
        for image in client.images.list(**query):
            try:
                client.images.remove(image.id, force=True)
            except docker.errors.ImageNotFound:
                pass


@pytest.fixture
def dproject(make_project: Callable[..., Path], slug: str) -> Callable[..., Path]:
    """Write a docker_env project named ``slug``: ``dproject(command, docker_env_extra_yaml, files)``."""

    def make(command: str, env_yaml: str = "", files: dict[str, str] | None = None,
             params: str = "", image: str = BASE) -> Path:
        mlproject = (f"name: {slug}\ndocker_env:\n  image: {image}\n{env_yaml}"
                     f"entry_points:\n  main:\n{params}    command: {command!r}\n")
        return make_project({"MLproject": mlproject, **(files or {})}, name=slug)

    return make


def _last_run(proj: Proj) -> dict[str, Any]:
    runs = proj.runs()
    assert runs, "no run recorded"
    return proj.show(runs[0]["id"])


def test_image_built_once_then_reused_until_copied_content_changes(proj: Proj, dproject: Callable[..., Path]) -> None:
    root = dproject("cat data.txt; test ! -e secret.txt && test ! -e .proj", files={
        "data.txt": "v1\n", ".dockerignore": "secret.txt\n", "secret.txt": "s1"})
    first = proj("run", str(root))
    assert first.code == 0 and "v1" in first.stdout, first
    built = _last_run(proj)["env"]
    assert built["cache_hit"] is False and built["image"].startswith("proj/")

    second = proj("run", str(root))
    reused = _last_run(proj)["env"]
    assert second.code == 0 and reused["cache_hit"] is True, second
    assert reused["image_id"] == built["image_id"] and "Step 1/" not in second.stderr

    (root / "secret.txt").write_text("s2")  # ignored: same image
    (root / ".proj").mkdir()
    (root / ".proj" / "x").write_text("store data")
    assert proj("run", str(root)).code == 0
    assert _last_run(proj)["env"]["image_id"] == built["image_id"]

    (root / "data.txt").write_text("v2\n")  # copied: a new image
    third = proj("run", str(root))
    rebuilt = _last_run(proj)["env"]
    assert third.code == 0 and "v2" in third.stdout and "project files changed" in third.stderr, third
    assert rebuilt["cache_hit"] is False and rebuilt["image_id"] != built["image_id"]


def test_two_concurrent_runs_build_the_image_once(proj: Proj, dproject: Callable[..., Path]) -> None:
    root = dproject("echo done", files={"big.bin": "x" * 2_000_000})
    runners = [proj.popen("run", str(root)) for _ in range(2)]
    outputs = [runner.communicate(timeout=120) for runner in runners]
    assert [runner.returncode for runner in runners] == [0, 0], outputs
    assert sum("building project image" in err for _, err in outputs) == 1, outputs
    assert len({run["env"]["image_id"] for run in map(proj.show, [r["id"] for r in proj.runs()])}) == 1


def test_lock_records_image_base_and_context(proj: Proj, dproject: Callable[..., Path]) -> None:
    import json

    root = dproject("true")
    assert proj("run", str(root)).code == 0
    run = _last_run(proj)
    lock = json.loads(run["lock"]["text"] if isinstance(run["lock"], dict) else run["lock"])
    env = run["env"]
    assert env["lock_format"] == "docker-image"
    assert lock["image_id"] == env["image_id"] and lock["base_id"] == env["base_image_id"]
    assert lock["context_hash"] == env["context_hash"] and lock["dockerfile"].startswith("FROM ")
    assert env["base_image"] == BASE


def test_declared_volumes_and_environment_are_passed(proj: Proj, dproject: Callable[..., Path],
                                                     tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "in.txt").write_text("from the host volume")
    env_yaml = (f"  volumes: ['{shared}:/shared', './local:/local:ro']\n"
                "  environment: [COPIED_VAR, [DEFINED_VAR, 'a b'], [NUMBER, 3], 'EQ_VAR=x=y']\n")
    command = 'echo "$COPIED_VAR|$DEFINED_VAR|$NUMBER|$EQ_VAR"; cat /shared/in.txt /local/l.txt; echo out > /shared/out.txt'
    root = dproject(command, env_yaml, files={"local/l.txt": "relative volume\n"})
    out = proj("run", str(root), env={"COPIED_VAR": "copied from host"})
    assert out.code == 0, out
    assert "copied from host|a b|3|x=y" in out.stdout
    assert "from the host volume" in out.stdout and "relative volume" in out.stdout
    assert (shared / "out.txt").read_text() == "out\n"
    assert (shared / "out.txt").stat().st_uid == os.getuid()  # the container ran as the invoking user


def test_missing_host_variable_fails_before_anything_runs(proj: Proj, dproject: Callable[..., Path],
                                                          client: Any, slug: str) -> None:
    root = dproject("echo should-not-run", "  environment: [PROJ_TEST_SURELY_UNSET_VAR]\n")
    out = proj("run", str(root))
    assert out.code != 0 and "PROJ_TEST_SURELY_UNSET_VAR" in out.stderr, out
    assert "should-not-run" not in out.stdout
    assert len(out.stderr.strip().splitlines()) == 1, out  # one clear line, no traceback
    assert proj.runs() == []
    assert client.images.list(name=f"proj/{slug}") == []


def test_path_parameter_is_visible_and_exit_code_propagates(proj: Proj, dproject: Callable[..., Path],
                                                            tmp_path: Path) -> None:
    data = tmp_path / "inputs" / "data.csv"
    data.parent.mkdir()
    data.write_text("x,y\n1,2\n")
    params = "    parameters:\n      data: path\n      code: {type: int, default: 3}\n"
    root = dproject("cat {data}; exit {code}", params=params)
    out = proj("run", str(root), "-P", f"data={data}")
    assert out.code == 3, out
    assert "x,y" in out.stdout
    run = _last_run(proj)
    assert run["status"] == "FAILED" and run["exit_code"] == 3 and run["failure_phase"] == "execution"


def test_metrics_artifacts_and_model_land_in_the_run(proj: Proj, slug: str, tmp_path: Path) -> None:
    root = tmp_path / slug
    shutil.copytree(EXAMPLES / "docker", root)
    text = (root / "MLproject").read_text().replace("name: docker-example", f"name: {slug}")
    (root / "MLproject").write_text(text)
    out = proj("run", str(root), "-P", "alpha=0.4", "-P", "epochs=4")
    assert out.code == 0, out
    run = _last_run(proj)
    assert run["status"] == "FINISHED"
    assert run["metrics"]["loss"]["step"] == 3 and "w" in run["metrics"]
    model = Path(run["run_dir"]) / "artifacts" / "model"
    assert (model / "MLmodel").is_file() and (model / "MLmodel").stat().st_uid == os.getuid()
    assert "epoch 3" in (Path(run["run_dir"]) / "logs" / "stdout.log").read_text()


def test_no_build_image_mounts_the_project_read_only(proj: Proj, dproject: Callable[..., Path],
                                                     client: Any, slug: str) -> None:
    root = dproject("cat hello.txt; pwd; touch new-file || echo read-only", files={"hello.txt": "mounted\n"})
    out = proj("run", str(root), "--no-build-image")
    assert out.code == 0, out
    assert "mounted" in out.stdout and "/mlflow/projects/code" in out.stdout and "read-only" in out.stdout
    assert not (root / "new-file").exists()
    env = _last_run(proj)["env"]
    assert env["build_image"] is False and env["image_id"] == env["base_image_id"]
    assert client.images.list(name=f"proj/{slug}") == []


def test_docker_args_are_applied_and_unknown_ones_rejected(proj: Proj, dproject: Callable[..., Path]) -> None:
    root = dproject('id -u; echo "extra=$EXTRA"; cat /sys/fs/cgroup/memory.max 2>/dev/null '
                    '|| cat /sys/fs/cgroup/memory/memory.limit_in_bytes')
    out = proj("run", str(root), "-A", "user=1234:1234", "-A", "env=EXTRA=yes", "-A", "memory=64m")
    assert out.code == 0, out
    assert "1234" in out.stdout and "extra=yes" in out.stdout and str(64 * 1024 * 1024) in out.stdout

    bad = proj("run", str(root), "-A", "frobnicate=1")
    assert bad.code == 2 and "frobnicate" in bad.stderr and "shm-size" in bad.stderr, bad
    assert len(proj.runs()) == 1  # the bad one never started


def test_cancel_stops_and_removes_the_container(proj: Proj, dproject: Callable[..., Path], client: Any,
                                                slug: str) -> None:
    root = dproject("echo started; sleep 120")
    runner = proj.popen("run", str(root))
    try:
        container = _wait_for(lambda: client.containers.list(filters={"label": f"dev.proj.project={slug}"}))
        run_id = container[0].labels["dev.proj.run-id"]
        out = proj("runs", "cancel", run_id)
        assert out.code == 0, out
        runner.wait(timeout=30)
    finally:
        if runner.poll() is None:
            runner.kill()
    assert proj.show(run_id)["status"] == "KILLED"
    assert client.containers.list(all=True, filters={"label": f"dev.proj.run-id={run_id}"}) == []


def test_sigint_stops_the_container_and_marks_killed(proj: Proj, dproject: Callable[..., Path], client: Any,
                                                     slug: str) -> None:
    import signal

    root = dproject("sleep 120")
    runner = proj.popen("run", str(root))
    try:
        container = _wait_for(lambda: client.containers.list(filters={"label": f"dev.proj.project={slug}"}))
        runner.send_signal(signal.SIGINT)
        assert runner.wait(timeout=30) == 130
    finally:
        if runner.poll() is None:
            runner.kill()
    run_id = container[0].labels["dev.proj.run-id"]
    assert proj.show(run_id)["status"] == "KILLED"
    assert client.containers.list(all=True, filters={"label": f"dev.proj.run-id={run_id}"}) == []


def test_container_of_a_runner_killed_with_9_is_stopped_by_the_reaper(proj: Proj, dproject: Callable[..., Path],
                                                                        client: Any, slug: str) -> None:
    root = dproject("sleep 120")
    runner = proj.popen("run", str(root))
    try:
        container = _wait_for(lambda: client.containers.list(filters={"label": f"dev.proj.project={slug}"}))[0]
        _wait_for(lambda: proj.runs() and proj.runs()[0].get("status") == "RUNNING")
        time.sleep(0.5)  # the init pid is recorded right after the container starts
        runner.kill()
        runner.wait(timeout=10)
    finally:
        if runner.poll() is None:
            runner.kill()
    [run] = proj.runs()  # reading shows the dead owner's run as FAILED, not yet collected, and writes nothing
    assert (run["status"], run["failure_phase"], run["collected"]) == ("FAILED", "runner", False), run
    collected = proj("runs", "collect")  # an acting command stops its container and records the end
    assert collected.code == 0 and "collected 1 run(s)" in collected.stderr, collected
    assert proj.runs()[0]["collected"] is True
    _wait_for(lambda: (container.reload() or container.status) != "running", timeout=20)


def test_keep_container(proj: Proj, dproject: Callable[..., Path], client: Any, slug: str) -> None:
    root = dproject("echo kept")
    assert proj("run", str(root), "--keep-container").code == 0
    kept = client.containers.list(all=True, filters={"label": f"dev.proj.project={slug}"})
    assert len(kept) == 1 and b"kept" in kept[0].logs()


def test_missing_base_image_fails_fast_in_environment_phase(proj: Proj, make_project: Callable[..., Path],
                                                            client: Any) -> None:
    root = make_project({"MLproject": "docker_env:\n  image: proj-test-missing.invalid/none:1\n"
                                      "entry_points:\n  main:\n    command: 'true'\n"})
    out = proj("run", str(root), timeout=120)
    assert out.code == 1 and "proj-test-missing.invalid/none:1" in out.stderr, out
    run = _last_run(proj)
    assert run["status"] == "FAILED" and run["failure_phase"] == "environment"
    assert "could not be pulled" in run["failure_reason"]


def test_failed_build_is_recorded_in_environment_phase(proj: Proj, dproject: Callable[..., Path],
                                                       slug: str) -> None:
    root = dproject("true", "  dockerfile: Dockerfile\n", image=f"{slug}-base",
                    files={"Dockerfile": f"FROM {BASE}\nCOPY no-such-file /x\n"})
    out = proj("run", str(root))
    assert out.code == 1 and "docker build" in out.stderr and "no-such-file" in out.stderr, out
    run = _last_run(proj)
    assert run["status"] == "FAILED" and run["failure_phase"] == "environment"
    assert (Path(run["run_dir"]) / "logs" / "env-build.log").read_text()


def test_project_dockerfile_builds_the_base(proj: Proj, dproject: Callable[..., Path], slug: str) -> None:
    root = dproject('echo "FOO=$FOO"', "  dockerfile: docker/Dockerfile\n  build_args: {VALUE: from-arg}\n",
                    files={"docker/Dockerfile": f"FROM {BASE}\nARG VALUE\nENV FOO=$VALUE\n"}, image=f"{slug}-base")
    out = proj("run", str(root))
    assert out.code == 0 and "FOO=from-arg" in out.stdout, out
    again = proj("run", str(root))
    assert again.code == 0 and "building base image" not in again.stderr, again
    assert _last_run(proj)["env"]["base_image"] == f"{slug}-base"


def _wait_for(probe: Callable[[], Any], timeout: float = 60) -> Any:
    return wait_for(probe, timeout, "the container")


def test_reproduce_reuses_the_recorded_image_or_rebuilds_from_the_same_base(proj: Proj,
                                                                            dproject: Callable[..., Path],
                                                                            client: Any) -> None:
    root = dproject("python report.py", files={"data.txt": "same input\n",
                                               "report.py": "import proj_client\nproj_client.log_metric('m', 1.5)\n"})
    assert proj("run", str(root)).code == 0
    original = _last_run(proj)
    same = proj("reproduce", original["id"])
    assert same.code == 0 and "verdict: identical" in same.stdout, same
    client.images.remove(original["env"]["image_id"], force=True)  # the recorded image is gone
    rebuilt = proj("reproduce", original["id"])
    assert rebuilt.code == 0 and "verdict: identical" in rebuilt.stdout, rebuilt
    assert "same base image and build context as the recorded run" in rebuilt.stderr, rebuilt
    assert "image rebuilt from the same base image and build context" in rebuilt.stdout
