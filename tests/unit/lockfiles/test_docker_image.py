"""lockfiles.docker_image: the docker backend's lock names an image and its build inputs, no packages."""
from __future__ import annotations

import json

from proj.lockfiles import docker_image
from proj.lockfiles.registry import by_name

# The shape envs/docker/backend.py records (json, indent 2, sorted keys), plus a number: every scalar is kept.
LOCK = json.dumps({"image_id": "sha256:" + "1" * 64, "base_image": "python:3.11-slim", "base_id": "sha256:" + "2" * 64,
                   "context_hash": "3" * 64, "dockerfile": "Dockerfile", "size": 1234}, indent=2, sort_keys=True) + "\n"


def test_the_lock_lists_no_packages_but_its_fields() -> None:
    fmt = by_name("docker-image")
    assert fmt is docker_image.FORMAT and not fmt.lists_packages and fmt.parse(LOCK, None).packages == []
    fields = docker_image.fields(LOCK)
    assert fields["image_id"] == "sha256:" + "1" * 64 and fields["base_image"] == "python:3.11-slim"
    assert fields["size"] == "1234"  # every scalar, as text (reproduce diffs them like package versions)


def test_build_inputs_ignore_the_image_id() -> None:
    rebuilt = LOCK.replace("1" * 64, "9" * 64)
    assert docker_image.build_inputs(rebuilt) == docker_image.build_inputs(LOCK) == (
        "sha256:" + "2" * 64, "3" * 64, "Dockerfile")
    assert docker_image.build_inputs(LOCK.replace("3" * 64, "4" * 64)) != docker_image.build_inputs(LOCK)


def test_a_lock_that_is_not_json_stands_for_its_image() -> None:
    assert docker_image.fields("python:3.11-slim\n") == {"image": "python:3.11-slim"}
    assert docker_image.build_inputs("python:3.11-slim") is None
