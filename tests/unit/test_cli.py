"""The `dockyard` command's pure parts: argument parsing and checks, the BuildRun it creates, the
runs table, outcomes and exit codes, choosing the registry address and credentials, and reading a
build pod's container states."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from dockyard.cli.follow import container_state, newest, pod_ended
from dockyard.cli.main import api_error_message, build_parser, format_size, main, validate_build_args
from dockyard.cli.registry_access import AccessError, choose_connect_to, choose_credentials, hostname_of
from dockyard.cli.runs import (
    BuildArgError,
    build_quick_run,
    find_run,
    format_duration,
    format_runs_table,
    outcome,
    parse_build_arg,
    registry_of,
    task_registries,
)
from dockyard.core.apiserver import ApiError
from dockyard.distribution import Basic
from dockyard.models.builds import BuildRunSpec

DIGEST = "sha256:" + "a" * 64


def _run(name: str, **status: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "creationTimestamp": status.pop("created", "2026-12-01T09:00:00Z")},
        "spec": {"build": {"registryRef": {"name": "hub"}}, "trigger": status.pop("trigger", "Manual")},
        "status": status,
    }


def test_build_arguments_parse_like_az_acr_build(tmp_path: Path) -> None:
    args = build_parser().parse_args(
        [
            "build",
            "-r",
            "hub",
            "-t",
            "app:v1",
            "-t",
            "app:latest",
            "-f",
            "docker/Dockerfile",
            "--build-arg",
            "A=1",
            "--build-arg",
            "B=x=y",
            "--target",
            "final",
            "--platform",
            "linux/arm64",
            "--timeout",
            "600",
            "-n",
            "team",
            str(tmp_path),
        ]
    )
    assert args.command == "build" and args.namespace == "team" and args.registry == "hub"
    assert args.images == ["app:v1", "app:latest"]
    assert args.build_args == ["A=1", "B=x=y"]
    assert (args.dockerfile, args.target, args.platform, args.timeout) == (
        "docker/Dockerfile",
        "final",
        "linux/arm64",
        600,
    )
    assert args.directory == tmp_path and not args.no_push and not args.no_wait
    validate_build_args(args)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ([], "at least one -t IMAGE"),
        (["-t", "a", "--timeout", "30"], "between 60 and 28800"),
        (["-t", "a", "--password-stdin"], "needs --username"),
    ],
)
def test_build_usage_errors_exit_2_before_touching_the_cluster(
    tmp_path: Path, extra: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    def no_cluster() -> Any:
        raise AssertionError("the cluster must not be contacted for a usage error")

    assert main(["build", "-r", "hub", *extra, str(tmp_path)], kube_factory=no_cluster) == 2
    assert message in capsys.readouterr().err


def test_a_missing_directory_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["build", "-r", "hub", "-t", "a", str(tmp_path / "nope")], kube_factory=lambda: None) == 2
    assert "not a directory" in capsys.readouterr().err


def test_the_quick_run_body_is_a_valid_buildrun() -> None:
    body = build_quick_run(
        namespace="team",
        registry="hub",
        source_repository="dockyard/sources",
        source_digest=DIGEST,
        images=["app:v1"],
        dockerfile="docker/Dockerfile",
        build_args=["A=1", "B=2", "A=3"],
        target="final",
        platform="linux/arm64",
        timeout_seconds=600,
    )
    assert body["apiVersion"] == "dockyard.dev/v1alpha1" and body["kind"] == "BuildRun"
    assert body["metadata"] == {"generateName": "hub-", "namespace": "team"}
    assert body["spec"] == {
        "trigger": "Manual",
        "build": {
            "registryRef": {"name": "hub"},
            "source": {"oci": {"repository": "dockyard/sources", "digest": DIGEST}},
            "dockerBuild": {
                "dockerfile": "docker/Dockerfile",
                "images": ["app:v1"],
                "buildArgs": [{"name": "A", "value": "3"}, {"name": "B", "value": "2"}],
                "target": "final",
                "platform": "linux/arm64",
            },
            "timeoutSeconds": 600,
        },
    }
    spec = BuildRunSpec.model_validate(body["spec"])  # the operator's own model accepts it
    assert spec.build is not None and spec.build.source.oci is not None and spec.build.source.oci.digest == DIGEST


def test_a_no_push_run_needs_no_image() -> None:
    body = build_quick_run(
        namespace="n",
        registry="hub",
        source_repository="dockyard/sources",
        source_digest=DIGEST,
        images=[],
        no_push=True,
    )
    assert body["spec"]["build"]["dockerBuild"] == {"dockerfile": "Dockerfile", "images": [], "noPush": True}
    assert "timeoutSeconds" not in body["spec"]["build"]


@pytest.mark.parametrize("text", ["NOVALUE", "=x", "1A=x", "A-B=x"])
def test_bad_build_args_are_refused(text: str) -> None:
    with pytest.raises(BuildArgError):
        parse_build_arg(text)


def test_runs_table_newest_first_with_durations() -> None:
    now = datetime(2026, 12, 1, 10, 0, 0, tzinfo=UTC)
    runs = [
        _run(
            "hub-a",
            runId="ca1",
            status="Succeeded",
            startTime="2026-12-01T09:00:00Z",
            finishTime="2026-12-01T09:03:05Z",
        ),
        _run("hub-b", runId="ca2", status="Running", startTime="2026-12-01T09:59:15Z", trigger="Commit"),
        _run("hub-c", created="2026-12-01T09:59:59Z"),
    ]
    assert format_runs_table(runs, now).splitlines() == [
        "NAME    RUN-ID   STATUS      TRIGGER   STARTED               DURATION",
        "hub-c   -        Queued      Manual    -                     -",
        "hub-b   ca2      Running     Commit    2026-12-01 09:59:15   45s",
        "hub-a   ca1      Succeeded   Manual    2026-12-01 09:00:00   3m05s",
    ]


@pytest.mark.parametrize(
    ("seconds", "text"), [(0, "0s"), (59, "59s"), (60, "1m00s"), (3599, "59m59s"), (7260, "2h01m")]
)
def test_durations(seconds: int, text: str) -> None:
    assert format_duration(seconds) == text


def test_finding_a_run_by_name_or_run_id() -> None:
    runs = [_run("hub-a", runId="ca1"), _run("other-b", runId="ca1"), _run("ca1", runId="ca9")]
    assert [r["metadata"]["name"] for r in find_run(runs, "ca1")] == ["ca1"]  # a name wins
    assert [r["metadata"]["name"] for r in find_run(runs[:2], "ca1")] == ["hub-a", "other-b"]
    assert find_run(runs, "zz") == []


def test_the_registry_of_an_inline_run_and_of_a_task_run() -> None:
    tasks = task_registries(
        [
            {"metadata": {"name": "nightly"}, "spec": {"registryRef": {"name": "hub"}}},
            {"metadata": {"name": "x"}, "spec": {}},
        ]
    )
    assert tasks == {"nightly": "hub"}
    assert registry_of(_run("a")) == "hub"
    task_run = {"metadata": {"name": "nightly-1"}, "spec": {"taskRef": {"name": "nightly"}}}
    assert registry_of(task_run, tasks) == "hub"
    assert registry_of(task_run) is None


def test_outcomes_and_exit_codes() -> None:
    succeeded = outcome(
        _run(
            "hub-a",
            runId="ca1",
            status="Succeeded",
            outputImages=[{"registry": "hub.team.svc:5000", "repository": "app", "tag": "v1", "digest": DIGEST}],
        )
    )
    assert succeeded.exit_code == 0
    assert succeeded.out == ("Run ca1 succeeded.", f"hub.team.svc:5000/app:v1@{DIGEST}")
    failed = outcome(_run("hub-a", runId="ca1", status="Failed", message="step build:\n  COPY failed"))
    assert (failed.exit_code, failed.err) == (1, ("Run ca1 failed: step build: COPY failed",))
    for state in ("Canceled", "Timeout", "Error"):
        assert outcome(_run("x", status=state)).exit_code == 1


def test_address_resolving_names_are_dialled_by_name() -> None:
    assert (
        choose_connect_to("hub.team.svc:5000", override=None, cluster_ip="10.96.0.7", resolves=lambda h: True) is None
    )


def test_an_unresolvable_login_server_is_dialled_at_the_cluster_ip() -> None:
    seen: list[str] = []
    chosen = choose_connect_to(
        "hub.team.svc:5000", override=None, cluster_ip="10.96.0.7", resolves=lambda h: seen.append(h) or False
    )
    assert chosen == "10.96.0.7" and seen == ["hub.team.svc"]


def test_an_override_wins_and_no_address_at_all_says_what_to_do() -> None:
    assert (
        choose_connect_to("hub:5000", override="192.0.2.1", cluster_ip="10.0.0.1", resolves=lambda h: True)
        == "192.0.2.1"
    )
    with pytest.raises(AccessError, match="--registry-address"):
        choose_connect_to("hub.team.svc:5000", override=None, cluster_ip="None", resolves=lambda h: False)


@pytest.mark.parametrize(
    ("server", "host"), [("hub.team.svc:5000", "hub.team.svc"), ("[::1]:5000", "::1"), ("hub", "hub")]
)
def test_hostname_of_login_server(server: str, host: str) -> None:
    assert hostname_of(server) == host


def test_credentials_flags_then_environment_then_admin_secret() -> None:
    admin = {"username": "hub", "password": "admin-pw"}
    env = {"DOCKYARD_REGISTRY_USERNAME": "ci", "DOCKYARD_REGISTRY_PASSWORD": "env-pw"}
    pick = choose_credentials
    assert pick(username="me", password="pw", environment=env, admin_secret=admin, registry="hub") == Basic("me", "pw")
    assert pick(username=None, password=None, environment=env, admin_secret=admin, registry="hub") == Basic(
        "ci", "env-pw"
    )
    assert pick(username=None, password=None, environment={}, admin_secret=admin, registry="hub") == Basic(
        "hub", "admin-pw"
    )
    with pytest.raises(AccessError, match=r"--password-stdin"):
        pick(username="me", password=None, environment={}, admin_secret=admin, registry="hub")
    with pytest.raises(AccessError, match=r"adminUser.enabled") as nothing:
        pick(username=None, password=None, environment={}, admin_secret=None, registry="hub")
    assert "DOCKYARD_REGISTRY_PASSWORD" in str(nothing.value)


def test_container_states_of_a_build_pod() -> None:
    pod = {
        "status": {
            "phase": "Running",
            "initContainerStatuses": [{"name": "fetch-context", "state": {"terminated": {"exitCode": 0}}}],
            "containerStatuses": [{"name": "kaniko", "state": {"running": {}, "waiting": None}}],
        }
    }
    assert container_state(pod, "fetch-context") == "terminated"
    assert container_state(pod, "kaniko") == "running"
    assert container_state(pod, "other") == "absent"
    assert not pod_ended(pod) and pod_ended({"status": {"phase": "Failed"}})


def test_the_newest_pod_of_a_job_is_followed() -> None:
    pods = [
        {"metadata": {"name": "first", "creationTimestamp": "2026-12-01T10:00:00Z"}},
        {"metadata": {"name": "retry", "creationTimestamp": "2026-12-01T10:05:00Z"}},
    ]
    assert (newest(pods) or {})["metadata"]["name"] == "retry"
    assert newest([]) is None


def test_sizes_and_api_messages() -> None:
    assert [format_size(n) for n in (512, 3 * 1024 + 400, 12 * 1024**2)] == ["512 B", "3.4 KiB", "12.0 MiB"]
    error = ApiError(422, "Unprocessable Entity")
    error.body = json.dumps({"message": "BuildRun.dockyard.dev is invalid: spec.build.dockerBuild.platform"})
    assert api_error_message(error).startswith("BuildRun.dockyard.dev is invalid")
    assert api_error_message(ApiError(403, "Forbidden")) == "403 Forbidden"


def test_python_m_dockyard_cli_is_the_command() -> None:
    shown = subprocess.run([sys.executable, "-m", "dockyard.cli", "--help"], capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0
    for command in ("build", "runs", "logs", "cancel"):
        assert command in shown.stdout
