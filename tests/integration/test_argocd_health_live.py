"""Argo CD's view of real Dockyard objects: each kind's health.lua, run by a real Lua 5.1
interpreter, on objects the operator reconciled on the local control plane (kwok plays the build
pods: `fail-*` exits 1, `slow-*` keeps running). With DOCKYARD_CAPTURE_ARGOCD=1 the objects are
written to the checks' testdata/ (the inputs of health_test.yaml, see hack/argocd_health.py)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import yaml
from conftest import running_operator

from argocd_health import CHECKS, GROUP, evaluate, scrubbed
from realregistry import until

pytestmark = pytest.mark.integration

API = "dockyard.dev/v1alpha1"
OCI = {"oci": {"repository": "dockyard/sources", "digest": "sha256:" + "a" * 64}}
BUILD = {"registryRef": {"name": "hub"}, "source": OCI, "dockerBuild": {"images": ["app:{{.Run.ID}}"]}}


def _until(check: Callable[[], Any], what: str, deadline_s: float = 90) -> Any:
    try:
        return until(check, what, deadline_s)
    except TimeoutError as timeout:
        pytest.fail(str(timeout))


@pytest.fixture(scope="module")
def reconciled(cluster: Any) -> Iterator[tuple[Any, str]]:
    """One namespace with an object per interesting state, reconciled by a running operator."""
    cluster.kubectl("apply", "--server-side", "-f", "crds")
    cluster.kubectl(
        "wait", "--for=condition=Established", "--timeout=60s", "crd", "-l", "app.kubernetes.io/part-of=dockyard"
    )
    namespace = f"t-argocd-health-{os.getpid()}"
    cluster.kubectl("create", "namespace", namespace)
    objects = [
        ("Registry", "hub", {"storage": {"s3": {"bucket": "images", "region": "us-east-1"}}}),
        ("Registry", "notls", {"tls": {"mode": "Secret", "secretName": "absent"}}),
        ("Webhook", "ci", {"registryRef": {"name": "hub"}, "serviceUri": "http://127.0.0.1:9/", "actions": ["push"]}),
        (
            "Webhook",
            "paused",
            {
                "registryRef": {"name": "hub"},
                "serviceUri": "http://127.0.0.1:9/",
                "actions": ["push"],
                "enabled": False,
            },
        ),
        ("BuildTask", "app", BUILD),
        ("BuildTask", "off", {**BUILD, "enabled": False}),
        ("BuildRun", "quick", {"build": BUILD}),
        ("BuildRun", "fail-quick", {"build": BUILD}),
        ("BuildRun", "slow-quick", {"build": BUILD}),
    ]
    try:
        with running_operator(cluster, "-n", namespace):
            for kind, name, spec in objects:
                manifest = {"apiVersion": API, "kind": kind, "metadata": {"name": name}, "spec": spec}
                cluster.kubectl("apply", "--server-side", "-n", namespace, "-f", "-", input=yaml.safe_dump(manifest))
            yield cluster, namespace
    finally:
        cluster.kubectl("delete", "namespace", namespace, "--wait=false", "--ignore-not-found", check=False)


def _health(cluster: Any, namespace: str, kind: str, name: str) -> tuple[dict[str, Any], dict[str, str]]:
    obj = json.loads(cluster.kubectl("get", f"{kind.lower()}.dockyard.dev", name, "-n", namespace, "-o", "json").stdout)
    script = (CHECKS / GROUP / kind / "health.lua").read_text()
    return obj, evaluate(script, obj)


def _settles(reconciled: tuple[Any, str], kind: str, name: str, status: str) -> dict[str, str]:
    cluster, namespace = reconciled
    obj, health = _until(
        lambda: (pair := _health(cluster, namespace, kind, name)) and pair[1]["status"] == status and pair,
        f"{kind} {name} {status} in Argo CD's eyes",
    )
    if os.environ.get("DOCKYARD_CAPTURE_ARGOCD") == "1":
        target = CHECKS / GROUP / kind / "testdata" / f"live-{name}.yaml"
        target.write_text(yaml.safe_dump(scrubbed(obj), sort_keys=False))
    return dict(health)


@pytest.mark.parametrize(
    ("kind", "name", "status", "reason"),
    [
        ("Registry", "hub", "Healthy", "Reconciled"),
        ("Registry", "notls", "Progressing", "DependencyNotReady"),
        ("Webhook", "ci", "Healthy", "Reconciled"),
        ("Webhook", "paused", "Suspended", "Delivery disabled"),
        ("BuildTask", "app", "Healthy", "Reconciled"),
        ("BuildTask", "off", "Suspended", "Triggers disabled"),
        ("BuildRun", "quick", "Healthy", "Succeeded"),
        ("BuildRun", "fail-quick", "Degraded", "BuildFailed"),
        ("BuildRun", "slow-quick", "Progressing", "Running"),
    ],
)
def test_health_of_reconciled_objects(
    reconciled: tuple[Any, str], kind: str, name: str, status: str, reason: str
) -> None:
    health = _settles(reconciled, kind, name, status)
    assert health["message"].startswith(reason), health
