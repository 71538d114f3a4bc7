"""`python -m dockyard plan`: the task-file dry run's output, JSON shape and exit codes."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from dockyard.cli.plan import EXIT_REFUSED, EXIT_USAGE, EXIT_VALID, main

SAMPLES = Path(__file__).parent / "taskfiles" / "acr-tasks"
REPO = Path(__file__).resolve().parents[2]

TASK = """\
version: v1.1.0
env: [K=V]
steps:
  - id: build-web
    build: -t $Registry/hello:$ID -f hello.dockerfile --build-arg A={{.Values.a}} .
  - id: build-test
    build: -t hello-test .
    when: ["-"]
  - id: test
    cmd: $Registry/hello:$ID --secret {{.Secrets.token}}
    when: [build-web, build-test]
  - id: push
    push: ["$Registry/hello:$ID"]
    retries: 2
secrets:
  - id: token
    keyvault: https://vault.example/secrets/token
"""


def run(args: list[str], tmp_path: Path, text: str = TASK) -> tuple[int, str, str]:
    task = tmp_path / "acb.yaml"
    task.write_text(text)
    out, err = io.StringIO(), io.StringIO()
    code = main([str(task), *args], out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_json_has_exactly_the_documented_shape(tmp_path: Path) -> None:
    code, out, _ = run(
        [
            "--registry",
            "reg.example",
            "--run-id",
            "ca1",
            "--set",
            "A=x",
            "--set",
            "a=1",
            "--secret",
            "token=t",
            "--json",
        ],
        tmp_path,
    )
    assert code == EXIT_VALID
    data = json.loads(out)
    assert list(data) == ["valid", "error", "version", "warnings", "steps"]
    assert data["valid"] is True and data["error"] is None and data["version"] == "v1.1.0"
    # acr-builder pushes with its own tries: a push step's retries are parsed and shown, and said to do nothing
    assert data["warnings"] == [
        "step 'push' (line 12): retries has no effect on a push step "
        "(acr-builder pushes with its own 3 tries and takes no notice of them; nor does Dockyard)"
    ]
    build, build_test, test, push = data["steps"]
    assert build == build | {
        "id": "build-web",
        "type": "build",
        "dependsOn": [],
        "tags": ["reg.example/hello:ca1"],
        "dockerfile": "hello.dockerfile",
        "context": ".",
        "buildArgs": ["A=1"],
        "target": None,
        "timeout": 600,
        "retries": 0,
        "retryDelay": 5,
        "repeat": 0,
        "ignoreErrors": False,
        "detach": False,
        "env": ["K=V"],
    }
    assert build_test["dependsOn"] == []
    assert test["type"] == "cmd" and test["image"] == "reg.example/hello:ca1" and test["args"] == ["--secret", "t"]
    assert test["dependsOn"] == ["build-web", "build-test"]
    assert push["type"] == "push" and push["images"] == ["reg.example/hello:ca1"] and push["dependsOn"] == ["test"]
    assert push["retries"] == 2


def test_human_output_shows_steps_dependencies_and_parallel_stages(tmp_path: Path) -> None:
    code, out, _ = run(["--registry", "reg.example", "--run-id", "ca1", "--set", "a=1"], tmp_path)
    assert code == EXIT_VALID
    assert "version v1.1.0: 4 step(s)" in out
    assert "build-web   build  after (start)" in out
    assert "build -t reg.example/hello:ca1 -f hello.dockerfile --build-arg A=1 ." in out
    assert "test        cmd    after build-web, build-test" in out
    assert "retries 2 every 5s" in out
    assert "  1. build-web | build-test\n  2. test\n  3. push" in out
    assert "secret 'token' has no value" in out


def test_run_variables_from_options(tmp_path: Path) -> None:
    text = "steps:\n  - cmd: ubuntu echo {{.Run.ID}} {{.Run.Date}} {{.Run.Commit}} {{.Run.Branch}} {{.Run.Registry}}\n"
    code, out, _ = run(
        ["--run-id", "xy9", "--date", "20261201-060405z", "--commit", "abc", "--branch", "dev", "--json"],
        tmp_path,
        text,
    )
    assert code == EXIT_VALID
    assert json.loads(out)["steps"][0]["args"] == ["echo", "xy9", "20261201-060405z", "abc", "dev", "registry.example"]


def test_the_default_date_is_now_in_acr_format(tmp_path: Path) -> None:
    code, out, _ = run(["--json"], tmp_path, "steps:\n  - cmd: ubuntu echo {{.Run.Date}}\n")
    assert code == EXIT_VALID
    (date,) = json.loads(out)["steps"][0]["args"][1:]
    assert len(date) == 16 and date[8] == "-" and date.endswith("z")


def test_a_refused_file_exits_1_with_the_error_in_json(tmp_path: Path) -> None:
    code, out, _ = run(["--json"], tmp_path, "typo: 1\nsteps:\n  - id: a\n    cmd: x\n    when: [later]\n")
    assert code == EXIT_REFUSED
    data = json.loads(out)
    assert list(data) == ["valid", "error", "version", "warnings", "steps"]
    assert data["valid"] is False and data["steps"] == [] and data["version"] == "v1.0.0"
    assert "step 'a'" in data["error"] and "later does not exist" in data["error"]
    assert data["warnings"] == ["line 1: task: unknown key 'typo' is ignored (as acr-builder ignores it)"]


def test_a_file_refused_before_parsing_has_no_version(tmp_path: Path) -> None:
    code, out, _ = run(["--json"], tmp_path, "version: v1.1.0\nsteps:\n  - cmd: {{nofunc}}\n")
    data = json.loads(out)
    assert code == EXIT_REFUSED and data["version"] is None and 'function "nofunc" not defined' in data["error"]


def test_a_refused_file_in_human_output(tmp_path: Path) -> None:
    code, out, _ = run([], tmp_path, "version: v9\nsteps:\n  - cmd: x\n")
    assert code == EXIT_REFUSED
    assert "refused: invalid version specified: 'v9'" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "novalue"], "--set 'novalue': expected NAME=VALUE"),
        (["--secret", "=x"], "--secret '=x': expected NAME=VALUE"),
        (["--date", "2026-12-01"], "expected YYYYMMDD-HHMMSSz"),
    ],
)
def test_usage_errors_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    code, _, err = run(args, tmp_path)
    assert code == EXIT_USAGE and message in err


def test_a_missing_file_exits_2(tmp_path: Path) -> None:
    err = io.StringIO()
    assert main([str(tmp_path / "nope.yaml")], out=io.StringIO(), err=err) == EXIT_USAGE
    assert "nope.yaml" in err.getvalue()


def test_alias_src_files_are_read_from_the_current_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "aliases.yaml").write_text("tool: mcr.example/tool:1\n")
    monkeypatch.chdir(tmp_path)
    text = "version: v1.1.0\nalias:\n  src: [aliases.yaml]\nsteps:\n  - cmd: $tool run\n"
    code, out, _ = run(["--json"], tmp_path, text)
    assert code == EXIT_VALID and json.loads(out)["steps"][0]["image"] == "mcr.example/tool:1"


def test_python_m_dockyard_plan_routes_to_the_command() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "dockyard", "plan", str(SAMPLES / "when-parallel-dependent.yaml"), "--json"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    data = json.loads(completed.stdout)
    assert [s["id"] for s in data["steps"]][:2] == ["build-hello-world", "build-hello-world-test"]
    assert data["steps"][0]["tags"] == ["registry.example/hello-world:dy1"]
