"""Replications on the control plane with the operator running: an accepted one deploys its replica
(owned children, placed by its nodeSelector, one token service for all), the refused ones say why,
and deleting one removes its replica. Replicas of registries whose certificate is the user's
(`tls.mode: Secret`) or cert-manager's (`CertManager`: its Certificate kind installed here, and
filled as cert-manager would) serve the certificate chosen for them, or say why not."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import yaml
from test_registry import S3, _apply, _ready, _until, crds, operator  # noqa: F401  (fixtures)

from dockyard.core.pki import KeyPair, issue_ca, issue_serving_cert

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


CERTIFICATE_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "certificates.cert-manager.io"},
    "spec": {
        "group": "cert-manager.io",
        "names": {"kind": "Certificate", "listKind": "CertificateList", "plural": "certificates"},
        "scope": "Namespaced",
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
            }
        ],
    },
}


@pytest.fixture
def cert_manager_kind(cluster: Any) -> Iterator[None]:
    """cert-manager's Certificate kind served (its CRD only: the test fills Secrets as cert-manager
    would); removed afterwards, since other modules expect it absent."""
    yield
    cluster.kubectl("delete", "crd", CERTIFICATE_CRD["metadata"]["name"], "--ignore-not-found", check=False)


def _tls_secret(
    cluster: Any, namespace: str, name: str, pair: KeyPair, ca: KeyPair, annotations: dict[str, str] | None = None
) -> None:
    data = {"tls.crt": pair.cert_pem, "tls.key": pair.key_pem, "ca.crt": ca.cert_pem}
    body = {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/tls",
        "metadata": {"name": name, "annotations": annotations or {}},
        "data": {key: base64.b64encode(value).decode() for key, value in data.items()},
    }
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(body))


def _ready_message(cluster: Any, namespace: str, name: str) -> tuple[str, str, str] | None:
    for condition in _status(cluster, namespace, name).get("conditions", []):
        if condition["type"] == "Ready":
            return condition["status"], condition["reason"], condition["message"]
    return None


def _served_secret(cluster: Any, namespace: str, deployment: str) -> tuple[str, str]:
    body = _get(cluster, namespace, "deployment", deployment)
    assert body is not None
    template = body["spec"]["template"]
    volumes = {v["name"]: v for v in template["spec"]["volumes"]}
    return volumes["tls"]["secret"]["secretName"], template["metadata"]["annotations"]["dockyard.dev/config-hash"]


def test_replicas_of_secret_and_cert_manager_registries(
    cluster: Any, crds: None, operator: str, namespace: str, cert_manager_kind: None
) -> None:
    ca = issue_ca("test CA")
    ns = namespace
    # tls.mode Secret: the registry's certificate names the registry only; east brings its own.
    _tls_secret(cluster, ns, "sec-cert", issue_serving_cert(ca, [f"sec.{ns}.svc"]), ca)
    _tls_secret(cluster, ns, "east-cert", issue_serving_cert(ca, [f"sec-east.{ns}.svc"]), ca)
    _apply(cluster, ns, "sec", {"sku": "Premium", "storage": S3, "tls": {"mode": "Secret", "secretName": "sec-cert"}})
    issuer = {"name": "corp", "kind": "ClusterIssuer"}
    _apply(cluster, ns, "cm", {"sku": "Premium", "storage": S3, "tls": {"mode": "CertManager", "issuerRef": issuer}})
    for name, registry, extra in (
        ("sec-west", "sec", {}),
        ("sec-east", "sec", {"tls": {"secretName": "east-cert"}}),
        ("cm-west", "cm", {}),
    ):
        location = name.split("-")[1]
        bucket = {"s3": {"bucket": f"images-{name}", "region": "eu-west-1"}}
        spec = {"registryRef": {"name": registry}, "location": location, "nodeSelector": KWOK_NODES, "storage": bucket}
        _replication(cluster, ns, name, {**spec, **extra})

    _until(lambda: _ready_reason(cluster, ns, "sec-east") == ("True", "Reconciled"), "sec-east Ready", 90)
    assert _served_secret(cluster, ns, "sec-east")[0] == "east-cert"
    mismatch = _until(
        lambda: (m := _ready_message(cluster, ns, "sec-west")) and m[1] == "CertificateNameMismatch" and m,
        "sec-west: CertificateNameMismatch",
        60,
    )
    assert mismatch[0] == "False" and f"missing sec-west.{ns}.svc" in mismatch[2]
    assert "BEGIN" not in json.dumps(_status(cluster, ns, "sec-west")), "no certificate in status"
    waiting = _until(
        lambda: (m := _ready_message(cluster, ns, "cm-west")) and "cert-manager" in m[2] and m,
        "cm-west: waits for cert-manager",
        60,
    )
    assert waiting[:2] == ("False", "DependencyNotReady")

    # The registry's certificate replaced by one naming the namespace's Services: west serves it,
    # and a renewal of it rolls west's pods.
    wildcard = [f"sec.{ns}.svc", f"*.{ns}.svc"]
    _tls_secret(cluster, ns, "sec-cert", issue_serving_cert(ca, wildcard), ca)
    _until(lambda: _ready_reason(cluster, ns, "sec-west") == ("True", "Reconciled"), "sec-west Ready", 90)
    served, config_hash = _served_secret(cluster, ns, "sec-west")
    assert served == "sec-cert"
    _tls_secret(cluster, ns, "sec-cert", issue_serving_cert(ca, wildcard), ca)
    _until(lambda: _served_secret(cluster, ns, "sec-west")[1] != config_hash, "sec-west's pods to roll", 60)

    # cert-manager's Certificate kind served: the registry's and the replica's Certificates are
    # filled as cert-manager would; the replica waits for its own, then serves it.
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(CERTIFICATE_CRD))
    cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd/certificates.cert-manager.io")

    def fill(name: str) -> dict[str, Any]:
        certificate = _until(lambda: _get(cluster, ns, "certificate", name), f"Certificate {name}", 60)
        pair = issue_serving_cert(ca, certificate["spec"]["dnsNames"])
        secret = certificate["spec"]["secretName"]
        _tls_secret(cluster, ns, secret, pair, ca, {"cert-manager.io/certificate-name": name})
        return dict(certificate)

    fill("cm")
    replica_certificate = _until(lambda: _get(cluster, ns, "certificate", "cm-west"), "Certificate cm-west", 90)
    assert replica_certificate["metadata"]["ownerReferences"][0]["name"] == "cm-west"
    assert replica_certificate["spec"]["issuerRef"] == {**issuer, "group": "cert-manager.io"}
    names = replica_certificate["spec"]["dnsNames"]
    assert names[0] == f"cm-west.{ns}.svc" and f"cm.{ns}.svc" in names, "regional and global login servers"
    _until(
        lambda: (m := _ready_message(cluster, ns, "cm-west")) and "cm-west-tls" in m[2],
        "cm-west: waits for its Secret",
        60,
    )
    fill("cm-west")
    _until(lambda: _ready_reason(cluster, ns, "cm-west") == ("True", "Reconciled"), "cm-west Ready", 90)
    assert _served_secret(cluster, ns, "cm-west")[0] == "cm-west-tls"

    # The registry leaves cert-manager: the Certificates made for it and its replica go, with the
    # Secrets cert-manager filled, so cert-manager renews nothing into `<name>-tls` again; the
    # registry's own CA serves both, from Secrets of the operator's.
    _apply(cluster, ns, "cm", {"sku": "Premium", "storage": S3, "tls": {"mode": "SelfSigned"}})
    for certificate in ("cm", "cm-west"):
        _until(lambda c=certificate: _get(cluster, ns, "certificate", c) is None, f"Certificate {certificate} gone", 60)

    def operators_own(name: str) -> bool:
        meta = (_get(cluster, ns, "secret", name) or {}).get("metadata") or {}
        return (meta.get("labels") or {}).get("app.kubernetes.io/managed-by") == "dockyard" and (
            "cert-manager.io/certificate-name" not in (meta.get("annotations") or {})
        )

    for name in ("cm-tls", "cm-west-tls"):
        _until(lambda n=name: operators_own(n), f"{name}: the operator's own", 60)
    _until(lambda: _ready(cluster, ns, "cm"), "cm Ready on its own CA", 90)
    _until(lambda: _ready_reason(cluster, ns, "cm-west") == ("True", "Reconciled"), "cm-west Ready again", 90)


def _slice_pods(cluster: Any, namespace: str, name: str) -> set[tuple[str, str, bool]] | None:
    """(namespace, pod, ready) of each endpoint of the operator's EndpointSlice; None without it."""
    body = _get(cluster, namespace, "endpointslice", name)
    if body is None:
        return None
    return {
        (e["targetRef"]["namespace"], e["targetRef"]["name"], bool(e["conditions"].get("ready")))
        for e in body.get("endpoints") or []
    }


def _pods(cluster: Any, namespace: str, selector: str) -> set[tuple[str, str, bool]]:
    """(namespace, pod, ready) of the running pods a selector finds."""
    items = json.loads(cluster.kubectl("get", "pods", "-n", namespace, "-l", selector, "-o", "json").stdout)["items"]
    return {
        (
            namespace,
            p["metadata"]["name"],
            any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions") or []),
        )
        for p in items
        if not p["metadata"].get("deletionTimestamp")
    }


def _routing(cluster: Any, namespace: str, name: str) -> tuple[str, str] | None:
    for condition in _status(cluster, namespace, name).get("conditions", []):
        if condition["type"] == "GlobalEndpointRouting":
            return condition["status"], condition["reason"]
    return None


def test_the_global_login_server_follows_replicas_and_their_pods(
    cluster: Any, crds: None, operator: str, namespace: str
) -> None:
    """The registry's Service lists the home's and the routed replicas' pods (one in another
    namespace) through the operator's EndpointSlice, follows `regionEndpointEnabled` and pod churn,
    and gets its selector back with the last Replication."""
    _apply(cluster, namespace, "glob", {"sku": "Premium", "storage": S3})
    _until(lambda: _ready(cluster, namespace, "glob"), "Registry glob Ready=True", 90)
    service = _get(cluster, namespace, "service", "glob")
    assert service is not None and service["spec"]["selector"], "no Replication: the ordinary Service"
    assert _get(cluster, namespace, "endpointslice", "glob-global") is None
    far = f"{namespace}-glob"
    cluster.kubectl("create", "namespace", far)
    home = _pods(cluster, namespace, "app.kubernetes.io/name=registry,app.kubernetes.io/instance=glob")
    try:
        _replication(
            cluster,
            namespace,
            "glob-west",
            {
                "registryRef": {"name": "glob"},
                "location": "west",
                "targetNamespace": far,
                "nodeSelector": KWOK_NODES,
                "storage": {"s3": {"bucket": "glob-west", "region": "eu-west-1"}},
            },
        )
        _replication(
            cluster,
            namespace,
            "glob-east",
            {
                "registryRef": {"name": "glob"},
                "location": "east",
                "nodeSelector": KWOK_NODES,
                "regionEndpointEnabled": False,
                "storage": {"s3": {"bucket": "glob-east", "region": "eu-east-1"}},
            },
        )
        west_selector = "app.kubernetes.io/name=replication,app.kubernetes.io/instance=glob-west"
        east_selector = "app.kubernetes.io/name=replication,app.kubernetes.io/instance=glob-east"
        _until(lambda: _routing(cluster, namespace, "glob-west") == ("True", "Routed"), "glob-west routed", 120)
        assert _routing(cluster, namespace, "glob-east") == ("False", "RoutingDisabled")
        assert _status(cluster, namespace, "glob-east")["globalEndpointRouting"] == "Disabled"
        west = _pods(cluster, far, west_selector)
        assert west and all(ready for _, _, ready in west)
        _until(
            lambda: _slice_pods(cluster, namespace, "glob-global") == home | west,
            "the EndpointSlice to list the home's and glob-west's pods, not glob-east's",
            60,
        )
        service = _get(cluster, namespace, "service", "glob")
        assert service is not None and "selector" not in service["spec"]
        assert service["spec"]["sessionAffinity"] == "ClientIP"
        # The EndpointSlice controller leaves a selector-less Service alone: ours is its only slice.
        _until(
            lambda: (
                {
                    s["metadata"]["name"]
                    for s in json.loads(
                        cluster.kubectl(
                            "get",
                            "endpointslices",
                            "-n",
                            namespace,
                            "-l",
                            "kubernetes.io/service-name=glob",
                            "-o",
                            "json",
                        ).stdout
                    )["items"]
                }
                == {"glob-global"}
            ),
            "the controller's own slice of glob to go",
            60,
        )

        # regionEndpointEnabled toggled both ways: only endpoints move.
        cluster.kubectl(
            "patch",
            "replication",
            "glob-west",
            "-n",
            namespace,
            "--type=merge",
            "-p",
            json.dumps({"spec": {"regionEndpointEnabled": False}}),
        )
        cluster.kubectl(
            "patch",
            "replication",
            "glob-east",
            "-n",
            namespace,
            "--type=merge",
            "-p",
            json.dumps({"spec": {"regionEndpointEnabled": True}}),
        )
        _until(lambda: _routing(cluster, namespace, "glob-east") == ("True", "Routed"), "glob-east routed", 120)
        _until(
            lambda: _slice_pods(cluster, namespace, "glob-global") == home | _pods(cluster, namespace, east_selector),
            "the EndpointSlice to list glob-east's pods instead of glob-west's",
            60,
        )
        _until(lambda: _routing(cluster, namespace, "glob-west") == ("False", "RoutingDisabled"), "glob-west out", 60)
        assert _get(cluster, far, "deployment", "glob-west") is not None, "a replica out of routing keeps running"

        # Pod churn: a home pod replaced, the slice follows.
        (_, gone, _) = sorted(home)[0]
        cluster.kubectl("delete", "pod", gone, "-n", namespace, "--wait=false")
        east = _pods(cluster, namespace, east_selector)

        def follows() -> bool:
            now = _pods(cluster, namespace, "app.kubernetes.io/name=registry,app.kubernetes.io/instance=glob")
            listed = _slice_pods(cluster, namespace, "glob-global") or set()
            return gone not in {name for _, name, _ in listed} and listed == now | east and len(now) == len(home)

        _until(follows, "the EndpointSlice to follow the replaced pod", 90)

        # The last Replication gone: the ordinary Service again, no operator slice.
        cluster.kubectl("delete", "replication", "glob-east", "glob-west", "-n", namespace, "--timeout=60s")
        _until(
            lambda: (_get(cluster, namespace, "service", "glob") or {}).get("spec", {}).get("selector"),
            "glob's Service to get its selector back",
            60,
        )
        _until(lambda: _get(cluster, namespace, "endpointslice", "glob-global") is None, "our slice to go", 60)
        service = _get(cluster, namespace, "service", "glob")
        assert service is not None and service["spec"].get("sessionAffinity", "None") == "None"
        assert "dockyard.dev/global-endpoint" not in (service["metadata"].get("annotations") or {})
    finally:
        cluster.kubectl("delete", "namespace", far, "--wait=false", "--ignore-not-found", check=False)
