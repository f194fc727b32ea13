"""End-to-end runs in the local environment through the real CLI: what gets recorded, and how."""
from __future__ import annotations

import json
from pathlib import Path

from helpers.paths import EXAMPLES

QUICKSTART = EXAMPLES / "quickstart"


def test_quickstart_records_params_metrics_logs_and_command(proj, tmp_path: Path) -> None:
    (tmp_path / "mine.csv").write_text("x,y\n1,5\n2,8\n3,11\n")
    out = proj("run", str(QUICKSTART), "--env-manager", "local", "-P", "alpha=0.1", "-P", "data=mine.csv",
               "-P", "label=my run", "--experiment-name", "exp1", "--run-name", "first", "-T", "team=ml")
    assert out.code == 0, out
    assert "done: w=" in out.stdout  # the entry point's output reaches the terminal
    [summary] = proj.runs()
    run = proj.show(summary["id"])
    assert run["status"] == "FINISHED" and run["exit_code"] == 0 and run["experiment"] == "exp1"
    assert run["name"] == "first" and run["tags"]["team"] == "ml" and run["tags"]["label"] == "my run"
    params = {p["key"]: p for p in run["params"]}
    assert params["alpha"]["value"] == "0.1" and params["alpha"]["typed"] == 0.1 and params["alpha"]["source"] == "user"
    assert params["epochs"]["typed"] == 5 and params["epochs"]["source"] == "default"
    assert params["normalize"]["typed"] is True
    assert params["data"]["typed"] == str(tmp_path / "mine.csv")  # resolved against the invoking dir
    assert params["label"]["value"] == "my run"  # raw, never shell-quoted
    assert run["command"].startswith("python train.py --alpha 0.1 --epochs 5")
    assert f"--data {tmp_path / 'mine.csv'}" in run["command"] and "--label 'my run'" in run["command"]
    assert run["metrics"]["loss"]["step"] == 4
    history = [p for p in run["metrics"]]
    assert set(history) == {"loss", "w", "b"}
    stdout_log = Path(run["run_dir"]) / "logs" / "stdout.log"
    assert "done: w=" in stdout_log.read_text()
    assert (Path(run["run_dir"]) / "artifacts" / "weights.json").is_file()
    assert run["env"]["backend"] == "local" and run["lock"]["format"] == "pip-freeze"
    assert "click==" in run["lock"]["text"].lower()
    assert run["source"]["dir"] == str(QUICKSTART)


def test_human_show_and_list(proj) -> None:
    assert proj("run", str(QUICKSTART), "--env-manager", "local", "-P", "alpha=0.2").code == 0
    run_id = proj.runs()[0]["id"]
    listing = proj("runs", "list")
    assert run_id[:12] in listing.stdout and "FINISHED" in listing.stdout
    assert proj("runs", "show", "last", "--json").json()["id"] == run_id
    shown = proj("runs", "show", run_id[:8])
    for text in ("FINISHED", "alpha", "0.2", "loss", "command    python train.py", "logs", "stdout (last 5 lines",
                 "done: w="):
        assert text in shown.stdout, shown
    logs = proj("runs", "logs", run_id, "--stream", "stdout")
    assert "epoch 4" in logs.stdout


def test_json_output_is_clean(proj) -> None:
    out = proj("run", str(QUICKSTART), "--env-manager", "local", "-P", "alpha=0.1", "--json")
    assert out.code == 0 and "done: w=" in out.stderr, out
    run = out.json()
    assert run["status"] == "FINISHED" and run["metrics"]["loss"]["step"] == 4


def test_a_typo_in_a_parameter_name_is_warned_about(proj) -> None:
    out = proj("run", str(QUICKSTART), "--env-manager", "local", "-P", "alpha=0.1", "-P", "Epochs=3")
    assert "-P Epochs is not declared by entry point main; did you mean epochs?" in out.stderr, out


def test_exit_code_is_propagated_and_the_run_failed(proj, make_project) -> None:
    root = make_project({"MLproject": "entry_points:\n  main:\n    command: 'echo oops >&2; exit 7'\n"})
    out = proj("run", str(root), "--env-manager", "local")
    assert out.code == 7 and "oops" in out.stderr, out
    run = proj.show(proj.runs()[0]["id"])
    assert run["status"] == "FAILED" and run["failure_phase"] == "execution" and run["exit_code"] == 7
    assert "oops" in (Path(run["run_dir"]) / "logs" / "stderr.log").read_text()


def test_scripts_without_an_mlproject(proj) -> None:
    out = proj("run", str(EXAMPLES / "scripts"), "--env-manager", "local", "-e", "hello.py", "-P", "name=you",
               "-P", "times=2")
    assert out.code == 0 and out.stdout.count("hello, you") == 2, out
    run = proj.show(proj.runs()[0]["id"])
    assert run["command"] == "python hello.py --name you --times 2"
    assert run["metrics"]["greetings"]["value"] == 2.0
    out = proj("run", str(EXAMPLES / "scripts"), "--env-manager", "local", "-e", "count.sh", "-P", "upto=2")
    assert out.code == 0 and "count 2" in out.stdout, out


def test_case_insensitive_mlproject_and_long_short_forms(proj, make_project) -> None:
    root = make_project({"mlproject": """\
        entry_points:
          main:
            parameters:
              a: int
              b: {default: hello}
              c: {type: float, default: 0.5}
            command: "python -c 'import sys; print(sys.argv[1:])' {a} {b} {c}"
        """})
    out = proj("run", str(root), "--env-manager", "local", "-P", "a=3")
    assert out.code == 0 and "['3', 'hello', '0.5']" in out.stdout, out


def test_child_sees_run_variables_and_can_report(proj, make_project) -> None:
    root = make_project({
        "MLproject": "entry_points:\n  main:\n    command: python report.py\n",
        "report.py": """\
            import json, os
            import proj_client
            for step in range(3):
                proj_client.log_metric("acc", 0.5 + step / 10, step=step)
            proj_client.log_param("seed", 42)
            proj_client.set_tag("stage", "dev")
            with open(os.path.join(os.environ["PROJ_ARTIFACT_DIR"], "env.json"), "w") as fh:
                json.dump({k: v for k, v in os.environ.items() if k.startswith("PROJ_")}, fh)
            # A raw line written without the client works too; a bad line is skipped.
            with open(os.environ["PROJ_METRICS_FILE"], "a") as fh:
                fh.write(json.dumps({"key": "raw", "value": 1.5, "step": 9}) + "\\n")
                fh.write("not json\\n")
            """,
    })
    out = proj("run", str(root), "--env-manager", "local")
    assert out.code == 0 and "skipped 1 line(s) of metrics.jsonl" in out.stderr, out
    run = proj.show(proj.runs()[0]["id"])
    seen = json.loads((Path(run["run_dir"]) / "artifacts" / "env.json").read_text())
    assert seen["PROJ_RUN_ID"] == run["id"]
    assert seen["PROJ_MODEL_DIR"] == str(Path(run["run_dir"]) / "artifacts" / "model")
    assert Path(seen["PROJ_TRACKING_URI"]) == Path(proj.env["PROJ_TRACKING_URI"]).resolve()
    assert run["metrics"]["acc"]["value"] == 0.7 and run["metrics"]["acc"]["step"] == 2
    assert run["metrics"]["raw"]["step"] == 9
    assert {p["key"]: p["source"] for p in run["params"]}["seed"] == "logged"
    assert run["tags"]["stage"] == "dev"


def test_tracking_uri_option_and_filters(proj, make_project, tmp_path: Path) -> None:
    root = make_project({"MLproject": "entry_points:\n  main:\n    command: 'exit {code}'\n    parameters: {code: int}\n"})
    other = tmp_path / "other-store"
    for code in ("0", "3"):
        proj("run", str(root), "--env-manager", "local", "-P", f"code={code}", "--tracking-uri", str(other))
    listed = proj("runs", "list", "--json", "--tracking-uri", str(other), "--status", "failed").json()
    assert [r["exit_code"] for r in listed] == [3]
    assert proj.runs() == []  # the default store was not touched
