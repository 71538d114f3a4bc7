"""The Registry reconcile on the real control plane: children with owner references, Ready once
kwok's pods are ready, no writes when nothing changed, rollouts on config changes, repair of a
child deleted by hand, Ready=False with a reason for what only the operator can judge, and
garbage collection on delete."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import yaml
from conftest import running_operator

from dockyard.core.kube import WRITE_VERBS
from realregistry import until

pytestmark = pytest.mark.integration

# kwok plays the nodes but provisions no volumes, so registries that must become Ready use an object
# store (nothing is contacted: kwok does not run containers).
S3 = {"s3": {"bucket": "images", "region": "us-east-1"}}


def _until(check: Callable[[], Any], what: str, deadline_s: float = 60) -> Any:
    try:
        return until(check, what, deadline_s)
    except TimeoutError as timeout:
        pytest.fail(str(timeout))


@pytest.fixture(scope="module")
def operator(cluster: Any) -> Iterator[str]:
    """The operator running against the test cluster; yields its metrics URL."""
    with running_operator(cluster, "-A") as url:
        yield url


def _get(url: str) -> str | None:
    try:
        return httpx.get(url, timeout=2).text
    except httpx.TransportError:
        return None


def _apply_webhook(cluster: Any, namespace: str, name: str, registry: str, uri: str) -> None:
    hook = {
        "apiVersion": "dockyard.dev/v1alpha1",
        "kind": "Webhook",
        "metadata": {"name": name},
        "spec": {"registryRef": {"name": registry}, "serviceUri": uri, "actions": ["push"]},
    }
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(hook))


def _metric_sum(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        match = re.match(rf"^{name}(?:\{{(.*)\}})? (\S+)$", line)
        if not match:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1) or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            total += float(match.group(2))
    return total


def _writes(url: str) -> float:
    text = _get(url) or ""
    return sum(_metric_sum(text, "dockyard_kube_requests_total", verb=verb) for verb in WRITE_VERBS)


def _registry(cluster: Any, namespace: str, name: str) -> dict[str, Any]:
    return json.loads(cluster.kubectl("get", "registry", name, "-n", namespace, "-o", "json").stdout)


def _ready_condition(cluster: Any, namespace: str, name: str) -> dict[str, Any] | None:
    for condition in _registry(cluster, namespace, name).get("status", {}).get("conditions", []):
        if condition["type"] == "Ready":
            return dict(condition)
    return None


def _ready(cluster: Any, namespace: str, name: str) -> dict[str, Any] | None:
    body = _registry(cluster, namespace, name)
    for condition in body.get("status", {}).get("conditions", []):
        if condition["type"] == "Ready" and condition["status"] == "True":
            return body
    return None


def _apply(cluster: Any, namespace: str, name: str, spec: dict[str, Any]) -> None:
    manifest = {"apiVersion": "dockyard.dev/v1alpha1", "kind": "Registry", "metadata": {"name": name}, "spec": spec}
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(manifest))


@pytest.fixture(scope="module")
def crds(cluster: Any) -> None:
    cluster.kubectl("apply", "--server-side", "-f", "crds")
    cluster.kubectl(
        "wait", "--for=condition=Established", "--timeout=60s", "crd", "-l", "app.kubernetes.io/part-of=dockyard"
    )


def test_registry_becomes_ready_with_owned_children(cluster: Any, crds: None, operator: str, namespace: str) -> None:
    _apply(cluster, namespace, "contoso", {"sku": "Standard", "adminUser": {"enabled": True}, "storage": S3})
    body = _until(lambda: _ready(cluster, namespace, "contoso"), "Registry contoso Ready=True", 90)
    status = body["status"]
    assert status["loginServer"] == f"contoso.{namespace}.svc:5000"
    assert status["observedGeneration"] == body["metadata"]["generation"]
    assert status["credentials"] == {
        "adminSecretName": "contoso-admin",
        "pullSecretName": "contoso-pull",
        "caConfigMapName": "contoso-ca",
    }
    cluster.kubectl("wait", "--for=condition=Ready", "--timeout=5s", "registry/contoso", "-n", namespace)
    uid = body["metadata"]["uid"]
    for kind, name in [
        ("deployment", "contoso"),
        ("service", "contoso"),
        ("configmap", "contoso-config"),
        ("configmap", "contoso-ca"),
        ("secret", "contoso-http-secret"),
        ("secret", "contoso-tls"),
        ("secret", "contoso-token-signer"),
        ("secret", "contoso-auth"),
        ("secret", "contoso-admin"),
        ("secret", "contoso-pull"),
    ]:
        child = json.loads(cluster.kubectl("get", kind, name, "-n", namespace, "-o", "json").stdout)
        assert [ref["uid"] for ref in child["metadata"]["ownerReferences"]] == [uid], f"{kind}/{name}"
    pull = json.loads(cluster.kubectl("get", "secret", "contoso-pull", "-n", namespace, "-o", "json").stdout)
    assert pull["type"] == "kubernetes.io/dockerconfigjson"
    config = cluster.kubectl(
        "get", "configmap", "contoso-config", "-n", namespace, "-o", "jsonpath={.data.config\\.yml}"
    ).stdout
    assert "secret" not in yaml.safe_load(config)["http"]
    progressing = [c for c in status["conditions"] if c["type"] == "Progressing"]
    assert progressing and progressing[0]["status"] == "False"

    def ready_event() -> bool:
        out = cluster.kubectl(
            "get", "events", "-n", namespace, "--field-selector", "involvedObject.name=contoso", "-o", "json"
        )
        return any(e["reason"] == "Ready" and "contoso" in e["message"] for e in json.loads(out.stdout)["items"])

    assert _until(ready_event, "an Event with reason Ready", 20)


def test_usage_counts_webhooks_against_the_tier(cluster: Any, crds: None, operator: str, namespace: str) -> None:
    _apply(cluster, namespace, "counted", {"sku": "Basic", "storage": S3})
    _apply_webhook(cluster, namespace, "hook", "counted", "https://hooks.example.com/x")
    usage = _until(
        lambda: (
            (u := _registry(cluster, namespace, "counted").get("status", {}).get("usage", {}))
            .get("webhooks", {})
            .get("used")
            == 1
            and u
        ),
        "usage.webhooks.used == 1",
    )
    assert usage["webhooks"] == {"used": 1, "limit": 2}


def test_moving_down_from_premium_with_replications_is_refused(
    cluster: Any, crds: None, operator: str, namespace: str
) -> None:
    _apply(cluster, namespace, "geo", {"sku": "Premium", "storage": S3})
    _until(lambda: _ready(cluster, namespace, "geo"), "Registry geo Ready=True", 90)
    replication = {
        "apiVersion": "dockyard.dev/v1alpha1",
        "kind": "Replication",
        "metadata": {"name": "geo-west"},
        "spec": {"registryRef": {"name": "geo"}, "location": "westeurope"},
    }
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(replication))
    _apply(cluster, namespace, "geo", {"sku": "Standard", "storage": S3})

    def blocked() -> dict[str, Any] | None:
        for c in _registry(cluster, namespace, "geo").get("status", {}).get("conditions", []):
            if c["type"] == "Ready" and c["reason"] == "TierChangeBlocked":
                return c
        return None

    condition = _until(blocked, "Ready=False TierChangeBlocked")
    assert condition["status"] == "False" and "Replication" in condition["message"]
    replicas = cluster.kubectl("get", "deployment", "geo", "-n", namespace, "-o", "jsonpath={.spec.replicas}").stdout
    assert replicas == "2"  # still the Premium default: nothing was applied


def test_cert_manager_mode_without_cert_manager_says_so(
    cluster: Any, crds: None, operator: str, namespace: str
) -> None:
    _apply(cluster, namespace, "cm", {"tls": {"mode": "CertManager", "issuerRef": {"name": "letsencrypt"}}})
    ready = _until(lambda: _ready_condition(cluster, namespace, "cm"), "a Ready condition")
    assert (ready["status"], ready["reason"]) == ("False", "DependencyNotReady")
    assert "cert-manager" in ready["message"]


def test_spec_change_rolls_the_pods(cluster: Any, crds: None, operator: str, namespace: str) -> None:
    _apply(cluster, namespace, "rolling", {"sku": "Standard", "storage": S3})
    _until(lambda: _ready(cluster, namespace, "rolling"), "Registry rolling Ready=True", 90)
    jsonpath = "jsonpath={.spec.template.metadata.annotations.dockyard\\.dev/config-hash}"
    before = cluster.kubectl("get", "deployment", "rolling", "-n", namespace, "-o", jsonpath).stdout
    _apply(cluster, namespace, "rolling", {"sku": "Standard", "storage": S3, "tls": {"minimumVersion": "tls1.3"}})
    after = _until(
        lambda: (
            (h := cluster.kubectl("get", "deployment", "rolling", "-n", namespace, "-o", jsonpath).stdout) != before
            and h
        ),
        "a new config hash",
    )
    assert after and after != before
    config = cluster.kubectl(
        "get", "configmap", "rolling-config", "-n", namespace, "-o", "jsonpath={.data.config\\.yml}"
    ).stdout
    assert yaml.safe_load(config)["http"]["tls"]["minimumtls"] == "tls1.3"
    body = _until(
        lambda: (
            (b := _ready(cluster, namespace, "rolling"))
            and b["status"]["observedGeneration"] == b["metadata"]["generation"]
            and b
        ),
        "Ready at the new generation",
        90,
    )
    assert body["metadata"]["generation"] == 2


def test_child_deleted_by_hand_is_restored(cluster: Any, crds: None, operator: str, namespace: str) -> None:
    _apply(cluster, namespace, "drift", {"sku": "Basic", "storage": S3})
    _until(lambda: _ready(cluster, namespace, "drift"), "Registry drift Ready=True", 90)
    uid = cluster.kubectl("get", "service", "drift", "-n", namespace, "-o", "jsonpath={.metadata.uid}").stdout
    cluster.kubectl("delete", "service", "drift", "-n", namespace)
    restored = _until(
        lambda: (
            (
                r := cluster.kubectl(
                    "get", "service", "drift", "-n", namespace, "-o", "jsonpath={.metadata.uid}", check=False
                )
            ).returncode
            == 0
            and r.stdout not in ("", uid)
            and r.stdout
        ),
        "the Service to be re-created",
        30,
    )
    assert restored != uid


def test_missing_tls_secret_is_ready_false_with_a_reason(
    cluster: Any, crds: None, operator: str, namespace: str
) -> None:
    _apply(cluster, namespace, "notls", {"tls": {"mode": "Secret", "secretName": "absent"}})
    ready = _until(lambda: _ready_condition(cluster, namespace, "notls"), "a Ready condition")
    assert ready["status"] == "False"
    assert ready["reason"] == "DependencyNotReady"
    assert "absent" in ready["message"]


def test_data_volume_is_kept_or_deleted_as_the_spec_says(
    cluster: Any, crds: None, operator: str, namespace: str
) -> None:
    _apply(cluster, namespace, "keep", {"sku": "Basic"})
    _apply(
        cluster,
        namespace,
        "drop",
        {"sku": "Basic", "storage": {"reclaimPolicy": "Delete", "persistentVolume": {"size": "1Gi"}}},
    )

    def pvc(name: str) -> dict[str, Any] | None:
        result = cluster.kubectl("get", "pvc", f"{name}-data", "-n", namespace, "-o", "json", check=False)
        return json.loads(result.stdout) if result.returncode == 0 else None

    kept = _until(lambda: pvc("keep"), "PVC keep-data")
    dropped = _until(lambda: pvc("drop"), "PVC drop-data")
    assert "ownerReferences" not in kept["metadata"]
    assert kept["spec"]["resources"]["requests"]["storage"] == "10Gi"
    assert dropped["metadata"]["ownerReferences"][0]["name"] == "drop"
    assert dropped["spec"]["resources"]["requests"]["storage"] == "1Gi"
    cluster.kubectl("delete", "registry", "keep", "drop", "-n", namespace, "--timeout=30s")
    _until(lambda: pvc("drop") is None, "PVC drop-data to be garbage-collected")
    assert pvc("keep") is not None


def test_deleting_the_registry_removes_its_children(cluster: Any, crds: None, operator: str, namespace: str) -> None:
    _apply(cluster, namespace, "gone", {"sku": "Basic", "storage": S3})
    _until(lambda: _ready(cluster, namespace, "gone"), "Registry gone Ready=True", 90)
    cluster.kubectl("delete", "registry", "gone", "-n", namespace, "--timeout=30s")

    def children() -> list[str]:
        out = cluster.kubectl(
            "get",
            "deployment,service,configmap,secret,pvc",
            "-n",
            namespace,
            "-l",
            "app.kubernetes.io/instance=gone",
            "-o",
            "name",
        ).stdout
        return out.split()

    _until(lambda: not children(), "garbage collection of the children", 60)
