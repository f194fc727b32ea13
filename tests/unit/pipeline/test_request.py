"""RunRequest and RunOptions: the JSON record round-trips, and records older versions wrote still read."""
from __future__ import annotations

import json

import pytest

from proj.pipeline.request import RunOptions, RunRequest


def test_options_round_trip_through_the_request_record() -> None:
    options = RunOptions(require_clean=True, docker_args=("memory=1g", "e=FOO"), build_image=False,
                         keep_container=True, conda_frontend="mamba")
    req = RunRequest(uri="/p", entry_point="train", params={"alpha": "0.5"}, tags={"t": "1"}, cwd="/w",
                     options=options, reproduces="abc")
    back = RunRequest.from_json(req.to_json())
    assert back == req
    assert isinstance(back.options, RunOptions) and back.options.docker_args == ("memory=1g", "e=FOO")
    assert json.loads(req.to_json())["options"]["docker_args"] == ["memory=1g", "e=FOO"]  # plain JSON data


def test_a_default_request_round_trips() -> None:
    req = RunRequest(cwd="/w")
    assert RunRequest.from_json(req.to_json()) == req
    assert req.options.changed() == []


def test_an_old_record_with_options_as_a_loose_map_reads() -> None:
    """As proj wrote it before options were typed: a dict with only the keys the CLI set, and the old
    ``parent_run_id`` name."""
    old = {"uri": "/p", "entry_point": "main", "params": {}, "version": None, "env_manager": "local",
           "experiment": None, "run_name": None, "tags": {}, "cwd": "/w", "refresh_env": False,
           "options": {"require_clean": False, "docker_args": ["memory=1g"], "build_image": True,
                       "keep_container": False},
           "parent_run_id": "r1"}
    req = RunRequest.from_json(json.dumps(old))
    assert req.reproduces == "r1"
    assert req.options == RunOptions(docker_args=("memory=1g",))  # conda_frontend absent: its default
    assert req.options.changed() == ["docker_args"]


def test_an_old_record_without_options_or_with_unknown_keys_reads() -> None:
    assert RunRequest.from_json(json.dumps({"uri": "/p", "cwd": "/w"})).options == RunOptions()
    odd = RunRequest.from_json(json.dumps({"uri": "/p", "cwd": "/w", "options": {"retired_flag": 1}}))
    assert odd.options == RunOptions()


def test_a_record_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(TypeError):
        RunRequest.from_json("[1, 2]")


def test_options_are_frozen() -> None:
    with pytest.raises(AttributeError):
        RunOptions().build_image = False  # type: ignore[misc]
