"""Build pods on the kwok control plane play Kaniko by their BuildRun's name (build-pod-complete.yaml):
success writes the `--image-name-tag-with-digest-file` lines to the termination message, `fail-`
exits 1 with Kaniko's error line, `slow-` keeps running; ordinary Job pods complete as before.
The Jobs are shaped by hand like the operator's build Jobs (label dockyard.dev/build-run, container
`kaniko` with `--destination=` args, init container `fetch-context`)."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from kubernetes import client
from test_control_plane import condition, eventually, job_with_condition

from localcluster import BUILD_RUN_LABEL, EXIT_CODE_ANNOTATION, TERMINATION_MESSAGE_ANNOTATION

pytestmark = pytest.mark.integration

KANIKO_ERROR = (
    "error building image: error building stage: failed to execute command: waiting for process to exit: exit status 1"
)


def build_job(
    name: str,
    destinations: list[str],
    *,
    run: str | None = None,
    labelled: bool = True,
    annotations: dict[str, str] | None = None,
    init: bool = True,
    destination_args: list[str] | None = None,
) -> client.V1Job:
    """A Job like the operator's: pods labelled with their BuildRun, a `kaniko` main container."""
    args = [
        "--context=git://git.example/app.git#refs/heads/main#" + "1" * 40,
        "--dockerfile=Dockerfile",
        *(destination_args or [f"--destination={d}" for d in destinations]),
        "--image-name-tag-with-digest-file=/dev/termination-log",
    ]
    labels = {BUILD_RUN_LABEL: run or name} if labelled else None
    init_containers = (
        [client.V1Container(name="fetch-context", image="dockyard/fetch:1", args=["--to=/workspace"])] if init else None
    )
    return client.V1Job(
        metadata=client.V1ObjectMeta(name=name, labels=labels),
        spec=client.V1JobSpec(
            backoff_limit=0,
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels, annotations=annotations),
                spec=client.V1PodSpec(
                    restart_policy="Never",
                    init_containers=init_containers,
                    containers=[
                        client.V1Container(
                            name="kaniko",
                            image="ghcr.io/osscontainertools/kaniko:v1.28.3",
                            args=args,
                            termination_message_policy="File",
                        ),
                        client.V1Container(name="log-shipper", image="busybox"),
                    ],
                ),
            ),
        ),
    )


def digest_line(destination: str) -> str:
    return f"{destination}@sha256:{hashlib.sha256(destination.encode()).hexdigest()}\n"


def only_pod(core: client.CoreV1Api, namespace: str, job: str) -> Any:
    (pod,) = core.list_namespaced_pod(namespace, label_selector=f"job-name={job}").items
    return pod


def containers(pod: Any) -> dict[str, Any]:
    return {status.name: status.state for status in pod.status.container_statuses}


def test_successful_build_reports_a_digest_per_destination(api: client.ApiClient, namespace: str) -> None:
    batch, core = client.BatchV1Api(api), client.CoreV1Api(api)
    destinations = ["registry.dockyard.svc:5000/team/app:ca1", "registry.dockyard.svc:5000/team/app:latest"]
    batch.create_namespaced_job(namespace, build_job("app-ca1", destinations))
    done = eventually(lambda: job_with_condition(batch, namespace, "app-ca1", "Complete"), "the build Job to complete")
    assert done.status.succeeded == 1

    pod = only_pod(core, namespace, "app-ca1")
    assert pod.status.phase == "Succeeded"
    states = containers(pod)
    assert states["kaniko"].terminated.exit_code == 0
    assert states["kaniko"].terminated.reason == "Completed"
    assert states["kaniko"].terminated.message == "".join(digest_line(d) for d in destinations)
    assert states["log-shipper"].terminated.exit_code == 0
    assert states["log-shipper"].terminated.message is None
    (fetch,) = pod.status.init_container_statuses
    assert fetch.name == "fetch-context"
    assert fetch.state.terminated.exit_code == 0 and fetch.state.terminated.reason == "Completed"


def test_failing_build_exits_1_with_kanikos_error(api: client.ApiClient, namespace: str) -> None:
    batch, core = client.BatchV1Api(api), client.CoreV1Api(api)
    batch.create_namespaced_job(namespace, build_job("fail-app-ca2", ["registry.example/app:ca2"]))
    failed = eventually(lambda: job_with_condition(batch, namespace, "fail-app-ca2", "Failed"), "the build Job to fail")
    assert failed.status.failed == 1 and not failed.status.succeeded

    pod = only_pod(core, namespace, "fail-app-ca2")
    assert pod.status.phase == "Failed"
    states = containers(pod)
    assert states["kaniko"].terminated.exit_code == 1
    assert states["kaniko"].terminated.reason == "Error"
    assert states["kaniko"].terminated.message == KANIKO_ERROR
    assert states["log-shipper"].terminated.exit_code == 0
    assert pod.status.init_container_statuses[0].state.terminated.exit_code == 0


def test_slow_build_keeps_running(api: client.ApiClient, namespace: str) -> None:
    """A slow- build started first is still running once a build started after it has finished."""
    batch, core = client.BatchV1Api(api), client.CoreV1Api(api)
    batch.create_namespaced_job(namespace, build_job("slow-app-ca3", ["registry.example/app:ca3"]))
    eventually(lambda: only_pod_running(core, namespace, "slow-app-ca3"), "the slow build pod to run")
    batch.create_namespaced_job(namespace, build_job("app-ca4", ["registry.example/app:ca4"], init=False))
    eventually(lambda: job_with_condition(batch, namespace, "app-ca4", "Complete"), "the later build to complete")

    pod = only_pod(core, namespace, "slow-app-ca3")
    assert pod.status.phase == "Running"
    assert all(state.running for state in containers(pod).values())
    assert not condition(batch.read_namespaced_job("slow-app-ca3", namespace), "Complete")


def test_annotations_still_override_a_build(api: client.ApiClient, namespace: str) -> None:
    """A build pod can still be told its exit code and message, e.g. an out-of-memory kill."""
    batch, core = client.BatchV1Api(api), client.CoreV1Api(api)
    annotations = {EXIT_CODE_ANNOTATION: "137", TERMINATION_MESSAGE_ANNOTATION: "OOMKilled"}
    batch.create_namespaced_job(namespace, build_job("app-ca5", ["registry.example/app:ca5"], annotations=annotations))
    eventually(lambda: job_with_condition(batch, namespace, "app-ca5", "Failed"), "the build Job to fail")
    states = containers(only_pod(core, namespace, "app-ca5"))
    assert states["kaniko"].terminated.exit_code == 137
    assert states["kaniko"].terminated.message == "OOMKilled"
    assert states["log-shipper"].terminated.exit_code == 0


def test_a_job_pod_without_the_label_completes_as_before(api: client.ApiClient, namespace: str) -> None:
    """Even a Kaniko-shaped pod named fail-… is an ordinary Job pod without the build-run label."""
    batch, core = client.BatchV1Api(api), client.CoreV1Api(api)
    batch.create_namespaced_job(namespace, build_job("fail-plain", ["registry.example/app:x"], labelled=False))
    done = eventually(
        lambda: job_with_condition(batch, namespace, "fail-plain", "Complete"), "the plain Job to complete"
    )
    assert done.status.succeeded == 1
    pod = only_pod(core, namespace, "fail-plain")
    assert pod.status.phase == "Succeeded"
    for state in containers(pod).values():
        assert state.terminated.exit_code == 0
        assert state.terminated.message is None


def only_pod_running(core: client.CoreV1Api, namespace: str, job: str) -> bool:
    pods = core.list_namespaced_pod(namespace, label_selector=f"job-name={job}").items
    return len(pods) == 1 and pods[0].status.phase == "Running"


def test_every_destination_flag_form_is_reported_in_order(api: client.ApiClient, namespace: str) -> None:
    """Kaniko also takes `--destination X`, `-d=X` and `-d X`; each gets its line, in argument order."""
    batch, core = client.BatchV1Api(api), client.CoreV1Api(api)
    forms = ["--destination", "r.example/a:1", "-d=r.example/b:2", "-d", "r.example/c:3", "--destination=r.example/d:4"]
    batch.create_namespaced_job(namespace, build_job("app-ca6", [], destination_args=forms, init=False))
    eventually(lambda: job_with_condition(batch, namespace, "app-ca6", "Complete"), "the build Job to complete")
    pod = only_pod(core, namespace, "app-ca6")
    assert not pod.status.init_container_statuses
    expected = "".join(digest_line(d) for d in ["r.example/a:1", "r.example/b:2", "r.example/c:3", "r.example/d:4"])
    assert containers(pod)["kaniko"].terminated.message == expected
