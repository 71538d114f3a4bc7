"""The pure decisions of a run: image names from run variables, what the Job and pod say about the
run, the failing line of a Kaniko log, and a task's history."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from dockyard.builds import definition as defs
from dockyard.builds.history import prune, task_status
from dockyard.builds.ids import format_run_id, run_number
from dockyard.builds.observe import clean, failure_message, judge, parse_digests, tail
from dockyard.builds.template import RunVariables, TemplateError, render, run_date

HOST = "hub.team.svc:5000"
RUN = RunVariables(ID="ca12", Registry=HOST, Date="20261201-060405z", Commit="c" * 40, Branch="main")
DIGEST = "sha256:" + "d" * 64


def test_run_variables_render_as_acr_does() -> None:
    assert render("app:{{.Run.ID}}", RUN, {}) == "app:ca12"
    assert render("{{ .Run.Registry }}/app:{{.Run.Date}}", RUN, {}) == f"{HOST}/app:20261201-060405z"
    assert render("app:{{.Run.RegistryName}}-{{.Build.ID}}", RUN, {}) == "app:hub-ca12"
    assert render("app:{{.Values.tag}}", RUN, {"tag": "v2"}) == "app:v2"
    assert render("app:{{.Values.missing}}x{{.Run.Nope}}", RUN, {}) == "app:x"  # missingkey=zero
    assert run_date(datetime(2026, 12, 1, 6, 4, 5, tzinfo=UTC)) == "20261201-060405z"
    with pytest.raises(TemplateError, match="upper"):
        render("app:{{ .Run.ID | upper }}", RUN, {})


def test_image_names_are_qualified_tagged_and_deduplicated() -> None:
    images = ["app:{{.Run.ID}}", "app", "ghcr.io/org/app:v1", "app:ca12", "localhost/x/y"]
    assert defs.destinations(images, RUN, {}) == (
        f"{HOST}/app:ca12",
        f"{HOST}/app:latest",
        "ghcr.io/org/app:v1",
        "localhost/x/y:latest",
    )
    assert defs.own_repositories(defs.destinations(images, RUN, {}), HOST) == ("app",)
    with pytest.raises(defs.NotBuildable, match="images"):
        defs.destinations(["app:{{.Values.tag}}"], RUN, {})  # renders to "app:", not a name
    assert defs.split_reference(f"{HOST}/team/app:v1") == (HOST, "team/app", "v1")


def _pod(kaniko: dict[str, Any] | None = None, fetch: dict[str, Any] | None = None) -> dict[str, Any]:
    status: dict[str, Any] = {"phase": "Running"}
    if kaniko is not None:
        status["containerStatuses"] = [{"name": "kaniko", "state": kaniko}]
    if fetch is not None:
        status["initContainerStatuses"] = [{"name": "fetch-context", "state": fetch}]
    return {"metadata": {"name": "app-7-build-x"}, "status": status}


def _job(*conditions: tuple[str, str]) -> dict[str, Any]:
    return {"status": {"conditions": [{"type": t, "status": "True", "reason": r} for t, r in conditions]}}


def test_the_pod_decides_and_the_job_is_the_fallback() -> None:
    message = f"{HOST}/app:ca12@{DIGEST}\n{HOST}/app:latest@{DIGEST}\n"
    done = judge(_job(), _pod({"terminated": {"exitCode": 0, "message": message}}))
    assert done.status == "Succeeded" and [o.tag for o in done.outputs] == ["ca12", "latest"]
    assert done.outputs[0].repository == "app" and done.outputs[0].digest == DIGEST
    failed = judge(_job(), _pod({"terminated": {"exitCode": 1, "message": message}}))
    assert failed.status == "Failed" and failed.outputs == ()  # a digest without exit 0 is not trusted
    assert failed.message == "the build exited with code 1"
    tail_message = (
        "INFO[0001] RUN false\nerror building image: error building stage: failed to execute command: exit status 1"
    )
    said = judge(_job(), _pod({"terminated": {"exitCode": 1, "message": tail_message}}))
    assert said.message == "RUN false: error building stage: failed to execute command: exit status 1"
    assert judge(_job(), _pod({"running": {}})).status == "Running"
    assert judge(_job(), _pod({"waiting": {"reason": "PodInitializing"}}, {"running": {}})).status == "Running"
    assert judge(None, None).status == "Queued"
    assert judge(_job(), _pod({"waiting": {"reason": "ContainerCreating"}})).status == "Queued"
    pulling = judge(_job(), _pod({"waiting": {"reason": "ImagePullBackOff", "message": "not found"}}))
    assert pulling.status == "Queued" and "builder image" in pulling.message
    assert (
        judge(_job(), _pod({"waiting": {"reason": "CreateContainerConfigError", "message": "no key"}})).status
        == "Error"
    )
    fetch = judge(_job(), _pod({"waiting": {}}, {"terminated": {"exitCode": 1, "message": "no such manifest"}}))
    assert fetch.status == "Error" and "no such manifest" in fetch.message
    assert judge(_job(("Failed", "DeadlineExceeded")), None).status == "Timeout"
    assert judge(_job(("Failed", "PodFailurePolicy")), None).status == "Error"
    assert judge(_job(("Complete", "")), None).status == "Error"  # done, but the outcome is gone


def test_digests_parse_kaniko_lines_only() -> None:
    outputs = parse_digests(f"{HOST}/team/app:v1@{DIGEST}\ngarbage\n{HOST}/team/app@{DIGEST}\n")
    assert [(o.registry, o.repository, o.tag) for o in outputs] == [(HOST, "team/app", "v1"), (HOST, "team/app", None)]


KANIKO_LOG = """\x1b[36mINFO\x1b[0m[0000] Retrieving image manifest hub.team.svc:5000/base/busybox:1
\x1b[36mINFO\x1b[0m[0001] Unpacking rootfs as cmd RUN make test requires it.
\x1b[36mINFO\x1b[0m[0002] COPY . /src
\x1b[36mINFO\x1b[0m[0002] RUN make test
\x1b[36mINFO\x1b[0m[0002] Running: [/bin/sh -c make test]
make: *** [test] Error 2
error building image: error building stage: failed to execute command: waiting for process to exit: exit status 2
"""


def test_the_failing_line_of_a_kaniko_log() -> None:
    assert failure_message(KANIKO_LOG) == (
        "RUN make test: error building stage: failed to execute command: waiting for process to exit: exit status 2"
    )
    parse_error = (
        "error building image: parsing dockerfile: dockerfile parse error on line 3: unknown instruction: RUUN\n"
    )
    assert (
        failure_message(parse_error)
        == "parsing dockerfile: dockerfile parse error on line 3: unknown instruction: RUUN"
    )
    text_format = 'time="2026-12-01T06:00:00Z" level=info msg="RUN false"\nerror building image: error building stage: failed to execute command: waiting for process to exit: exit status 1\n'
    assert failure_message(text_format) is not None and failure_message(text_format).startswith("RUN false: ")  # type: ignore[union-attr]
    assert failure_message("all good\n") is None
    assert "\x1b" not in clean(KANIKO_LOG)
    assert tail(KANIKO_LOG, lines=2).splitlines()[0] == "make: *** [test] Error 2"
    assert len(tail("x" * 10_000, limit=100).encode()) <= 100


def _run(name: str, run_id: str | None, status: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {"metadata": {"name": name, "creationTimestamp": "2026-12-01T00:00:00Z"}, "spec": {}}
    body["status"] = {"runId": run_id, "status": status} if run_id else {}
    return body


def test_history_by_run_number_and_pruning_by_limits() -> None:
    assert format_run_id(10) == "ca10" and run_number("ca10") == 10 and run_number("x1") is None
    runs = [
        _run("r9", "ca9", "Succeeded"),
        _run("r10", "ca10", "Failed"),
        _run("r11", "ca11", "Succeeded"),
        _run("r12", "ca12", "Running"),
        _run("r2", "ca2", "Timeout"),
        _run("new", None, None),
    ]
    status = task_status(runs)
    assert status["lastRun"]["name"] == "r12" and status["lastSuccessfulRun"]["runId"] == "ca11"
    # one success and one failure kept: ca9 (older success) and ca2 (older failure) go; ca12 runs
    assert prune(runs, 1, 1) == ["r2", "r9"]
    assert prune(runs, 0, 0) == ["r2", "r9", "r10", "r11"]
    assert task_status([_run("new", None, None)]) == {}


def test_log_retention_follows_the_task_and_defaults_to_30_days() -> None:
    from dockyard.builds.retention import expired, registry_of, retention_days

    task = {"spec": {"registryRef": {"name": "hub"}, "logRetentionDays": 7}}
    tasks = {("team", "web"): task}
    run = {
        "metadata": {"namespace": "team", "name": "web-1"},
        "spec": {"taskRef": {"name": "web"}},
        "status": {"finishTime": "2026-11-01T00:00:00Z", "logReference": "hub/dockyard/logs:ca1@sha256:x"},
    }
    quick = {
        "metadata": {"namespace": "team", "name": "q"},
        "spec": {"build": {"registryRef": {"name": "other"}}},
        "status": dict(run["status"]),
    }
    assert retention_days(run, tasks) == 7 and retention_days(quick, tasks) == 30
    assert registry_of(run, tasks) == "hub" and registry_of(quick, tasks) == "other"
    assert not expired(run, 7, datetime(2026, 11, 7, 23, 59, tzinfo=UTC))
    assert expired(run, 7, datetime(2026, 11, 8, tzinfo=UTC))
    gone = {**run, "status": {"finishTime": "2026-11-01T00:00:00Z"}}  # already swept
    assert not expired(gone, 7, datetime(2026, 12, 1, tzinfo=UTC))


def test_durations_read_like_kubectl() -> None:
    from dockyard.builds.reconcile import format_duration

    assert [format_duration(s) for s in (0.4, 45, 187, 3725)] == ["0s", "45s", "3m7s", "1h2m5s"]
