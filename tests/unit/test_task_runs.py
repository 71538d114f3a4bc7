"""Task-file runs on the single-pod path: the pod a chain plan becomes (golden file; UPDATE_GOLDEN=1
make unit rewrites it), what the pod's init containers say about each step, the plans refused
before any pod exists, and the push step's own arguments and layout reading."""

from __future__ import annotations

import hashlib
import json
import os
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from dockyard.builds.manifests.job import OciContext
from dockyard.builds.manifests.steps import TaskPod, build_task_job, step_container_names
from dockyard.builds.observe import Verdict
from dockyard.builds.push import PushError, parse_arguments, read_layout, split_destination
from dockyard.builds.runplan import task_file_refusal
from dockyard.builds.taskfile.plan import plan
from dockyard.builds.taskrun import (
    NotRunnable,
    declared_steps,
    final_steps,
    judge_task,
    pod_steps,
    view_steps,
)
from dockyard.builds.template import RunVariables
from dockyard.core.meta import Owner

GOLDEN = Path(__file__).parent / "golden"
HOST = "hub.team.svc:5000"
OWNER = Owner("dockyard.dev/v1alpha1", "BuildRun", "web-3", "team", "uid-3")
RUN = RunVariables(ID="ca3", Registry=HOST, Date="20260101-120000z")
RESOURCES = {"requests": {"cpu": "250m", "memory": "512Mi"}, "limits": {"cpu": "2", "memory": "4Gi"}}

CHAIN = """\
version: v1.1.0
env: ["MODE=test"]
steps:
  - id: build-web
    build: -t {{.Run.Registry}}/web:{{.Run.ID}} -f web/Dockerfile --build-arg VERSION=1.2 --target runtime web
  - id: unit_tests
    cmd: busybox:1.36 sh -c 'ls /workspace && echo $(date)'
    workingDirectory: web
    entryPoint: /bin/sh
  - id: push
    push: ["{{.Run.Registry}}/web:{{.Run.ID}}"]
"""


def _steps(text: str) -> Any:
    return pod_steps(plan(text, RUN), HOST)


def _pod(text: str = CHAIN) -> TaskPod:
    return TaskPod(
        owner=OWNER,
        registry_host=HOST,
        kaniko_image="ghcr.io/osscontainertools/kaniko:v1.28.3",
        operator_image="ghcr.io/dockyard-dev/dockyard:0.1.0",
        fetch=OciContext("dockyard/sources", "sha256:" + "a" * 64),
        steps=_steps(text),
        timeout_seconds=3600,
        resources=RESOURCES,
        ca_config_map="hub-ca",
    )


def test_golden_build_cmd_push_chain() -> None:
    rendered = yaml.safe_dump(build_task_job(_pod()), sort_keys=False)
    path = GOLDEN / "taskjob-build-cmd-push.yaml"
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(rendered)
    assert path.exists(), f"missing {path.name}: run UPDATE_GOLDEN=1 make unit"
    assert rendered == path.read_text()


def test_the_chain_is_init_containers_in_plan_order_sharing_the_workspace() -> None:
    pod = build_task_job(_pod())["spec"]["template"]["spec"]
    names = [c["name"] for c in pod["initContainers"]]
    assert names == ["fetch-context", "step-build-web", "step-unit-tests", "step-push"]
    assert [c["name"] for c in pod["containers"]] == ["steps-done"]
    assert pod["restartPolicy"] == "Never" and pod["automountServiceAccountToken"] is False
    build, cmd, push = pod["initContainers"][1:]
    assert "--no-push" in build["args"] and "--oci-layout-path=/dockyard/oci/step-build-web" in build["args"]
    assert (
        "--context=dir:///workspace/web" in build["args"] and "--dockerfile=/workspace/web/Dockerfile" in build["args"]
    )
    assert f"--destination={HOST}/web:ca3" in build["args"] and "--target=runtime" in build["args"]
    assert f"--registry-certificate={HOST}=/dockyard/ca/ca.crt" in build["args"]
    # the cmd step runs the user's image: the workspace, never the run's credential
    assert cmd["image"] == "busybox:1.36" and cmd["command"] == ["/bin/sh"]
    assert cmd["args"] == ["sh", "-c", "ls /workspace && echo $$(date)"]  # literal for the kubelet
    assert cmd["workingDir"] == "/workspace/web"
    assert {"name": "MODE", "value": "test"} in cmd["env"] and {"name": "HOME", "value": "/acb/home"} in cmd["env"]
    assert [m["name"] for m in cmd["volumeMounts"]] == ["workspace", "registry-ca"]
    assert push["command"] == ["python", "-m", "dockyard.builds.push"]
    assert push["args"][-2:] == ["--layout=/dockyard/oci/step-build-web", f"--destination={HOST}/web:ca3"]
    assert push["terminationMessagePath"] == "/dev/termination-log"


def test_step_container_names_are_dns_labels_and_distinct() -> None:
    assert step_container_names(["acb_step_0", "Build.Web", "build-web", "_"]) == (
        "step-acb-step-0",
        "step-build-web",
        "step-build-web-2",
        "step-3",
    )
    assert all(len(n) <= 63 for n in step_container_names(["x" * 300]))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "steps:\n  - build: -t a .\n  - build: -t b .\n    when: ['-']\n",
            "step acb_step_1 runs in parallel with other steps (when): it runs on the Job-per-step path",
        ),
        ("steps:\n  - id: db\n    cmd: postgres\n    detach: true\n", "step db is a detached service"),
        ("steps:\n  - id: t\n    cmd: busybox false\n    retries: 2\n", "step t has retries"),
        (
            "steps:\n  - id: b\n    build: -t {{.Run.Registry}}/app:1 .\n  - id: t\n    cmd: {{.Run.Registry}}/app:1 make test\n",
            "step t runs an image built earlier in the run",
        ),
        (
            "steps:\n  - id: p\n    push: [hub.team.svc:5000/app:1]\n",
            "step p: image hub.team.svc:5000/app:1 is not built by",
        ),
        ("steps:\n  - id: d\n    cmd: docker ps\n", "step d: docker ps: Docker CLI steps need a Docker daemon"),
        (
            "steps:\n  - id: s\n    cmd: busybox echo hi > out.txt\n",
            "step s: the host-shell operator '> out.txt' is not translated",
        ),
        ("steps:\n  - id: u\n    cmd: busybox id\n    user: root\n", "step u: user 'root': only a numeric uid[:gid]"),
        ("steps:\n  - id: r\n    build: -t a https://github.com/x/y.git\n", "step r: build context"),
    ],
)
def test_plans_the_single_pod_path_cannot_run_are_refused_naming_the_step(text: str, expected: str) -> None:
    with pytest.raises(NotRunnable) as refused:
        _steps(text)
    assert expected in str(refused.value)


def test_push_takes_the_latest_earlier_build_of_the_image() -> None:
    text = "steps:\n  - id: one\n    build: -t app .\n  - id: two\n    build: -t app -f Other .\n  - id: p\n    push: [app]\n"
    push = _steps(text)[-1]
    assert push.images == (("/dockyard/oci/step-two", f"{HOST}/app:latest"),)


# -- step statuses ------------------------------------------------------------------------------

DECLARED = declared_steps(_steps(CHAIN))
T0, T1 = "2026-01-01T12:00:00Z", "2026-01-01T12:01:00Z"


def _terminated(name: str, code: int, message: str = "") -> dict[str, Any]:
    state: dict[str, Any] = {"exitCode": code, "startedAt": T0, "finishedAt": T1}
    if message:
        state["message"] = message
    return {"name": name, "state": {"terminated": state}}


def _pod_status(init: list[dict[str, Any]], main: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"status": {"initContainerStatuses": init, "containerStatuses": main or []}}


def test_a_chain_that_ran_succeeds_with_its_pushed_images() -> None:
    digest = "sha256:" + hashlib.sha256(b"x").hexdigest()
    pod = _pod_status(
        [
            _terminated("fetch-context", 0),
            _terminated("step-build-web", 0, f"{HOST}/web:ca3@sha256:{'1' * 64}\n"),
            _terminated("step-unit-tests", 0),
            _terminated("step-push", 0, f"{HOST}/web:ca3@{digest}\n"),
        ],
        [_terminated("steps-done", 0)],
    )
    verdict, steps = judge_task(DECLARED, None, pod)
    assert verdict.status == "Succeeded"
    assert [o.as_status() for o in verdict.outputs] == [
        {"registry": HOST, "repository": "web", "tag": "ca3", "digest": digest}
    ]  # the build step's names are not images pushed
    assert steps[0].as_status() == {
        "id": "build-web",
        "type": "build",
        "status": "Succeeded",
        "startTime": T0,
        "finishTime": T1,
        "exitCode": 0,
    }


def test_the_first_failing_step_fails_the_run_and_the_rest_are_skipped() -> None:
    pod = _pod_status(
        [
            _terminated("fetch-context", 0),
            _terminated("step-build-web", 0),
            _terminated("step-unit-tests", 2, "FAIL: TestLogin\nexit status 2"),
            {"name": "step-push", "state": {"waiting": {"reason": "PodInitializing"}}},
        ],
        [{"name": "steps-done", "state": {"waiting": {"reason": "PodInitializing"}}}],
    )
    verdict, steps = judge_task(DECLARED, None, pod)
    assert verdict.status == "Failed" and verdict.message == "step unit_tests failed: exit status 2"
    assert verdict.failed_container == "step-unit-tests"
    final = final_steps(steps, verdict.status)
    assert [(s["id"], s["status"], s.get("exitCode")) for s in final] == [
        ("build-web", "Succeeded", 0),
        ("unit_tests", "Failed", 2),
        ("push", "Skipped", None),
    ]


def test_a_running_chain_shows_its_running_step_and_a_cancel_ends_it() -> None:
    pod = _pod_status(
        [
            _terminated("fetch-context", 0),
            {"name": "step-build-web", "state": {"running": {"startedAt": T0}}},
            {"name": "step-unit-tests", "state": {"waiting": {"reason": "PodInitializing"}}},
        ]
    )
    verdict, steps = judge_task(DECLARED, None, pod)
    assert verdict.status == "Running"
    assert [s.status for s in steps] == ["Running", "Queued", "Queued"]
    assert [s["status"] for s in final_steps(view_steps(DECLARED, pod), "Canceled")] == [
        "Canceled",
        "Skipped",
        "Skipped",
    ]


def test_a_step_running_past_acr_builders_step_timeout_ends_the_run_as_timeout() -> None:
    pod = _pod_status(
        [
            _terminated("fetch-context", 0),
            {"name": "step-build-web", "state": {"running": {"startedAt": T0}}},
            {"name": "step-unit-tests", "state": {"waiting": {"reason": "PodInitializing"}}},
        ]
    )
    started = datetime.fromisoformat(T0.replace("Z", "+00:00"))
    within, _ = judge_task(DECLARED, None, pod, started + timedelta(seconds=599))
    assert within.status == "Running"
    verdict, steps = judge_task(DECLARED, None, pod, started + timedelta(seconds=600))
    assert verdict.status == "Timeout" and verdict.message == "step build-web exceeded its timeout of 600s"
    assert verdict.failed_container == "step-build-web"
    assert [s["status"] for s in final_steps(steps, verdict.status)] == ["Timeout", "Skipped", "Skipped"]


def test_the_job_decides_when_the_pod_says_nothing_final() -> None:
    verdict, _ = judge_task(DECLARED, Verdict("Timeout", "deadline"), None)
    assert verdict.status == "Timeout"
    assert judge_task(DECLARED, None, None)[0].status == "Queued"
    fetch_failed = _pod_status([_terminated("fetch-context", 1, "fetching the build context failed: 404")])
    assert judge_task(DECLARED, None, fetch_failed)[0].status == "Error"
    bad_image = _pod_status(
        [
            _terminated("fetch-context", 0),
            {"name": "step-build-web", "state": {"waiting": {"reason": "InvalidImageName"}}},
        ]
    )
    assert judge_task(DECLARED, None, bad_image)[0].status == "Error"
    pulling = _pod_status(
        [
            _terminated("fetch-context", 0),
            _terminated("step-build-web", 0),
            {"name": "step-unit-tests", "state": {"waiting": {"reason": "ImagePullBackOff", "message": "busybox"}}},
        ]
    )
    verdict, _ = judge_task(DECLARED, None, pulling)
    assert (verdict.status, verdict.message) == (
        "Running",
        "container step-unit-tests waits for its image: ImagePullBackOff: busybox",
    )


# -- the push step's own side -----------------------------------------------------------------


def test_push_arguments_pair_each_destination_with_the_layout_before_it() -> None:
    arguments = parse_arguments(
        [
            "--docker-config=/d/config.json",
            "--registry-certificate=h:5000=/ca.crt",
            "--layout=/w/a",
            "--destination=h:5000/a:1",
            "--destination",
            "h:5000/a:latest",
            "--layout=/w/b",
            "--destination=h:5000/b:1",
        ]
    )
    assert [(str(p), d) for p, d in arguments.images] == [
        ("/w/a", "h:5000/a:1"),
        ("/w/a", "h:5000/a:latest"),
        ("/w/b", "h:5000/b:1"),
    ]
    assert str(arguments.certificates["h:5000"]) == "/ca.crt"
    with pytest.raises(PushError, match="no --layout before it"):
        parse_arguments(["--docker-config=/d", "--destination=h/a:1"])
    assert split_destination("h:5000/team/app") == ("h:5000", "team/app", "latest")


def test_a_layout_gives_its_last_manifest_and_every_blob(tmp_path: Path) -> None:
    blobs = tmp_path / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    def put(data: bytes) -> str:
        hex_ = hashlib.sha256(data).hexdigest()
        (blobs / hex_).write_bytes(data)
        return f"sha256:{hex_}"

    config, layer = put(b"{}"), put(b"layer")
    media = "application/vnd.docker.distribution.manifest.v2+json"
    manifest = json.dumps({"mediaType": media, "config": {"digest": config}, "layers": [{"digest": layer}]}).encode()
    digest = put(manifest)
    (tmp_path / "index.json").write_text(json.dumps({"manifests": [{"mediaType": media, "digest": digest}]}))
    assert read_layout(tmp_path) == (manifest, media, [config, layer])
    with pytest.raises(PushError, match="did the build step run"):
        read_layout(tmp_path / "missing")


# -- the kept log ------------------------------------------------------------------------------


class _Logs:
    """The one API call reading a run's log makes: each container's log (None: never started)."""

    def __init__(self, logs: dict[str, str | None]) -> None:
        self.logs = logs

    def pod_log(self, namespace: str, pod: str, container: str, *, limit_bytes: int | None = None) -> str | None:
        return self.logs.get(container)


def test_the_kept_log_has_every_started_step_in_order_under_a_header() -> None:
    from dockyard.builds.reconcile import RunReconciler
    from dockyard.settings import OperatorSettings

    kube = _Logs(
        {
            "fetch-context": "fetched 3 entries\n",
            "step-build-web": "\x1b[36mINFO\x1b[0m Built image\n",
            "step-unit-tests": "FAIL: TestLogin",
            "step-push": None,
        }
    )
    reconciler = RunReconciler(kube, OperatorSettings(), logs=None, resolve_git=None)  # type: ignore[arg-type]
    body = {
        "metadata": {"name": "web-3", "namespace": "team", "uid": "uid-3"},
        "spec": {
            "build": {
                "registryRef": {"name": "hub"},
                "source": {"archive": {"url": "https://x/a.tgz"}},
                "taskFile": CHAIN,
            }
        },
        "status": {"steps": DECLARED},
    }
    text = reconciler._read_log(body, {"metadata": {"name": "web-3-build-abcde"}})
    assert text == (
        "fetched 3 entries\n"
        "\n----- Executing step ID: build-web -----\nINFO Built image\n"
        "\n----- Executing step ID: unit_tests -----\nFAIL: TestLogin\n"
    )


def test_a_task_says_up_front_when_its_file_cannot_run_here() -> None:
    assert task_file_refusal(CHAIN, {}, HOST) is None
    # a parallel plan runs on the Job-per-step path: nothing to refuse
    parallel = CHAIN.replace("  - id: unit_tests\n", "  - id: unit_tests\n    when: ['-']\n")
    # the push no longer runs after the build: its image has no producer it waits for
    assert task_file_refusal(parallel, {}, HOST) == (
        "taskFile: step push: image hub.team.svc:5000/web:ca0 is not built by any step it runs after"
    )
    parallel = parallel.replace("  - id: push\n", "  - id: push\n    when: [build-web, unit_tests]\n")
    assert task_file_refusal(parallel, {}, HOST) is None
    # what neither path runs is refused on either
    docker = parallel.replace("busybox:1.36 sh -c", "docker run busybox sh -c")
    assert task_file_refusal(docker, {}, HOST) == (
        "taskFile: step unit_tests: docker run: Docker CLI steps need a Docker daemon, which Kubernetes does not "
        "give (only `docker pull` and `docker stop <detached step>` are translated)"
    )
    # a file acr-builder refuses is said on each run (its errors may depend on the run's values)
    assert task_file_refusal("version: v9\nsteps:\n  - cmd: busybox\n", {}, HOST) is None
