"""Replications on the control plane with the operator running: an accepted one deploys its replica
(owned children, placed by its nodeSelector, one token service for all), the refused ones say why,
and deleting one removes its replica."""

from __future__ import annotations

import json
from typing import Any

import httpx
import yaml
from test_registry import S3, _apply, _ready, _until, crds, operator  # noqa: F401  (fixtures)

KWOK_NODES = {"type": "kwok"}


def _replication(cluster: Any, namespace: str, name: str, spec: dict[str, Any]) -> None:
    body = {"apiVersion": "dockyard.dev/v1alpha1", "kind": "Replication", "metadata": {"name": name}, "spec": spec}
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(body))


def _status(cluster: Any, namespace: str, name: str) -> dict[str, Any]:
    body = json.loads(cluster.kubectl("get", "replication", name, "-n", namespace, "-o", "json").stdout)
    return dict(body.get("status") or {})


def _ready_reason(cluster: Any, namespace: str, name: str) -> tuple[str, str] | None:
    for condition in _status(cluster, namespace, name).get("conditions", []):
        if condition["type"] == "Ready":
            return condition["status"], condition["reason"]
    return None


def _get(cluster: Any, namespace: str, kind: str, name: str) -> dict[str, Any] | None:
    result = cluster.kubectl("get", kind, name, "-n", namespace, "-o", "json", check=False)
    return json.loads(result.stdout) if result.returncode == 0 else None


def test_replicas_deploy_refuse_and_go(cluster: Any, crds: None, operator: str, namespace: str) -> None:
    _apply(cluster, namespace, "hub", {"sku": "Premium", "storage": S3})
    _apply(cluster, namespace, "small", {"sku": "Standard", "storage": S3})
    _until(lambda: _ready(cluster, namespace, "hub"), "Registry hub Ready=True", 90)
    own_bucket = {"s3": {"bucket": "images-west", "region": "eu-west-1"}}
    _replication(
        cluster,
        namespace,
        "hub-west",
        {"registryRef": {"name": "hub"}, "location": "west", "nodeSelector": KWOK_NODES, "storage": own_bucket},
    )
    _replication(
        cluster,
        namespace,
        "hub-north",
        {
            "registryRef": {"name": "hub"},
            "location": "north",
            "nodeSelector": KWOK_NODES,
            "storage": {"s3": {"bucket": "images-north", "region": "eu-north-1"}},
        },
    )
    refused = {
        "hub-shared": (
            {"registryRef": {"name": "hub"}, "location": "east", "nodeSelector": KWOK_NODES},
            "StorageShared",
        ),
        "hub-mars": (
            {
                "registryRef": {"name": "hub"},
                "location": "mars",
                "storage": {"s3": {"bucket": "mars", "region": "us-east-2"}},
            },
            "UnknownLocation",
        ),
        "small-west": (
            {"registryRef": {"name": "small"}, "location": "west", "nodeSelector": KWOK_NODES},
            "PremiumRequired",
        ),
    }
    for name, (spec, _) in refused.items():
        _replication(cluster, namespace, name, spec)

    _until(lambda: _ready_reason(cluster, namespace, "hub-west") == ("True", "Reconciled"), "hub-west Ready", 90)
    status = _status(cluster, namespace, "hub-west")
    assert status["displayStatus"] in ("Ready", "Syncing")
    assert status["loginServer"] == f"hub-west.{namespace}.svc:5000"
    assert status["pendingChanges"] == 0, "the copier's figures reach the status"
    assert {c["type"] for c in status["conditions"]} >= {"Ready", "Synced", "GlobalEndpointRouting"}
    metrics = httpx.get(operator, timeout=5).text
    assert "# TYPE dockyard_replication_copies_total counter" in metrics
    deployment = _get(cluster, namespace, "deployment", "hub-west")
    assert deployment is not None
    assert deployment["metadata"]["ownerReferences"][0]["kind"] == "Replication"
    pod = deployment["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == KWOK_NODES
    assert {v["name"]: v for v in pod["volumes"]}["auth"]["secret"]["secretName"] == "hub-auth"
    config = yaml.safe_load(_get(cluster, namespace, "configmap", "hub-west-config")["data"]["config.yml"])  # type: ignore[index]
    assert config["auth"]["token"]["service"] == f"hub.{namespace}.svc:5000"
    assert config["storage"]["s3"]["bucket"] == "images-west"
    registry = json.loads(cluster.kubectl("get", "registry", "hub", "-n", namespace, "-o", "json").stdout)
    assert registry["status"]["usage"]["replications"]["used"] == 4  # hub-west, -north, -shared, -mars

    for name, (_, reason) in refused.items():
        _until(lambda n=name, r=reason: _ready_reason(cluster, namespace, n) == ("False", r), f"{name}: {reason}", 60)
        assert _status(cluster, namespace, name)["displayStatus"] == "Failed"
        assert _get(cluster, namespace, "deployment", name) is None

    cluster.kubectl("delete", "replication", "hub-west", "-n", namespace, "--timeout=30s")
    _until(lambda: _get(cluster, namespace, "deployment", "hub-west") is None, "the replica to be removed", 60)
    _until(lambda: _get(cluster, namespace, "service", "hub-west") is None, "the replica's Service to be removed", 60)
    assert _get(cluster, namespace, "secret", "hub-auth") is not None, "the home's shared Secrets stay"

    # A replica in another namespace: copies of the shared Secrets there, nothing owned, and
    # removed by the finalizer when its Replication is deleted.
    far = f"{namespace}-far"
    cluster.kubectl("create", "namespace", far)
    try:
        _replication(
            cluster,
            namespace,
            "hub-far",
            {
                "registryRef": {"name": "hub"},
                "location": "far",
                "targetNamespace": far,
                "nodeSelector": KWOK_NODES,
                "storage": {"s3": {"bucket": "images-far", "region": "ap-south-1"}},
            },
        )
        _until(lambda: _ready_reason(cluster, namespace, "hub-far") == ("True", "Reconciled"), "hub-far Ready", 90)
        assert _status(cluster, namespace, "hub-far")["loginServer"] == f"hub-far.{far}.svc:5000"
        deployment = _get(cluster, far, "deployment", "hub-far")
        assert deployment is not None and "ownerReferences" not in deployment["metadata"]
        copy = _get(cluster, far, "secret", "hub-far-token-signer")
        home_signer = _get(cluster, namespace, "secret", "hub-token-signer")
        assert copy is not None and home_signer is not None and copy["data"] == home_signer["data"]
        cluster.kubectl("delete", "replication", "hub-far", "-n", namespace, "--timeout=60s")
        assert _get(cluster, far, "deployment", "hub-far") is None
        assert _get(cluster, far, "secret", "hub-far-token-signer") is None
    finally:
        cluster.kubectl("delete", "namespace", far, "--wait=false", "--ignore-not-found", check=False)

    # The registry deleted: its remaining replica stops and says why.
    _until(lambda: _ready_reason(cluster, namespace, "hub-north") == ("True", "Reconciled"), "hub-north Ready", 60)
    cluster.kubectl("delete", "registry", "hub", "-n", namespace, "--timeout=30s")
    _until(
        lambda: _ready_reason(cluster, namespace, "hub-north") == ("False", "DependencyNotReady"),
        "hub-north: DependencyNotReady",
        60,
    )
    _until(lambda: _get(cluster, namespace, "deployment", "hub-north") is None, "hub-north's replica to stop", 60)
