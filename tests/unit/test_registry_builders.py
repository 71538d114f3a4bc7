"""Golden-file tests of the Registry builders. `UPDATE_GOLDEN=1 make unit` rewrites the files;
review the diff like code."""

from __future__ import annotations

import base64
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from dockyard.auth.policy import AuthPolicy, password_digest
from dockyard.core.meta import Owner
from dockyard.models import RegistrySpec
from dockyard.registries.manifests.certificate import build_certificate
from dockyard.registries.manifests.config import (
    RegistryContext,
    RegistryNames,
    build_registry_config,
    content_hash,
    render_config,
    tls_secret_name,
)
from dockyard.registries.manifests.secrets import build_admin_secret, build_auth_policy, build_pull_secret
from dockyard.registries.manifests.workload import (
    build_deployment,
    build_ingress,
    build_node_trust_daemonset,
    build_pvc,
    build_service,
)
from dockyard.registries.status import observe

GOLDEN = Path(__file__).parent / "golden"
OWNER = Owner("dockyard.dev/v1alpha1", "Registry", "contoso", "team-a", "8b7c6d5e-0000-4000-8000-000000000001")

SPECS: dict[str, dict[str, Any]] = {
    "default": {},
    "standard-admin-anonymous": {"sku": "Standard", "adminUser": {"enabled": True}, "anonymousPull": True},
    "premium-s3-ingress": {
        "sku": "Premium",
        "replicas": 3,
        "storage": {
            "s3": {
                "bucket": "images",
                "region": "us-east-1",
                "regionEndpoint": "http://minio:9000",
                "forcePathStyle": True,
                "credentialsSecretRef": {"name": "s3-creds"},
            }
        },
        "exposure": {"ingress": {"host": "registry.example.com", "className": "nginx"}},
        "tls": {"mode": "Secret", "secretName": "wildcard-tls", "minimumVersion": "tls1.3"},
    },
    "standard-admin-node-pull": {"sku": "Standard", "adminUser": {"enabled": True}, "exposure": {"nodePull": True}},
    "basic-plain-http-delete-volume": {
        "sku": "Basic",
        "tls": {"mode": "Disabled"},
        "storage": {"persistentVolume": {"size": "5Gi", "storageClassName": "fast"}, "reclaimPolicy": "Delete"},
    },
}


CLUSTER_IP = "10.96.12.34"


def _ctx(name: str, cluster_ip: str | None = CLUSTER_IP) -> RegistryContext:
    spec = RegistrySpec.model_validate(SPECS[name])
    return RegistryContext(
        OWNER,
        spec,
        "registry:3",
        "ghcr.io/dockyard/dockyard:0.1.0",
        tls_secret_name(spec, RegistryNames(OWNER.name)),
        "http://dockyard-events.dockyard-system.svc:8090",
        cluster_ip=cluster_ip,
    )


def _render(ctx: RegistryContext) -> str:
    config = render_config(build_registry_config(ctx))
    documents = [
        build_deployment(ctx, content_hash(config)),
        build_service(ctx),
        build_pvc(ctx) if not ctx.uses_object_storage else None,
        build_ingress(ctx),
        build_node_trust_daemonset(ctx, content_hash("ca")),
    ]
    manifests = yaml.safe_dump_all([d for d in documents if d is not None], sort_keys=False)
    return f"# config.yml\n{config}---\n{manifests}"


@pytest.mark.parametrize("name", sorted(SPECS))
def test_golden(name: str) -> None:
    rendered = _render(_ctx(name))
    path = GOLDEN / f"registry-{name}.yaml"
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(rendered)
    assert path.exists(), f"missing {path.name}: run UPDATE_GOLDEN=1 make unit"
    assert rendered == path.read_text()


def test_config_holds_no_secret_and_secrets_come_from_env() -> None:
    ctx = _ctx("premium-s3-ingress")
    config = build_registry_config(ctx)
    assert "secret" not in config["http"]
    assert "accesskey" not in config["storage"]["s3"] and "secretkey" not in config["storage"]["s3"]
    env = {e["name"]: e for e in build_deployment(ctx, "h")["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["REGISTRY_HTTP_SECRET"]["valueFrom"]["secretKeyRef"] == {"name": "contoso-http-secret", "key": "secret"}
    assert env["REGISTRY_STORAGE_S3_SECRETKEY"]["valueFrom"]["secretKeyRef"] == {"name": "s3-creds", "key": "secretkey"}


def test_token_auth_points_at_the_sidecar() -> None:
    auth = build_registry_config(_ctx("default"))["auth"]["token"]
    assert auth == {
        "realm": "https://contoso.team-a.svc:5001/token",
        "service": "contoso.team-a.svc:5000",
        "issuer": "dockyard",
        "rootcertbundle": "/etc/distribution/token/tls.crt",
    }
    external = build_registry_config(_ctx("premium-s3-ingress"))
    assert external["auth"]["token"]["realm"] == "https://registry.example.com/token"
    assert external["http"]["host"] == "https://registry.example.com"


def test_tls_minimum_version_and_plain_http() -> None:
    assert build_registry_config(_ctx("premium-s3-ingress"))["http"]["tls"]["minimumtls"] == "tls1.3"
    assert build_registry_config(_ctx("default"))["http"]["tls"]["minimumtls"] == "tls1.2"
    plain = build_registry_config(_ctx("basic-plain-http-delete-volume"))
    assert "tls" not in plain["http"]
    assert plain["auth"]["token"]["realm"].startswith("http://")


def test_pod_is_hardened() -> None:
    pod = build_deployment(_ctx("default"), "h")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    for container in pod["containers"]:
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        assert container["readinessProbe"] and container["livenessProbe"] and container["resources"]


def test_config_hash_changes_roll_the_pods() -> None:
    ctx = _ctx("default")
    first = build_deployment(ctx, content_hash("a"))["spec"]["template"]["metadata"]["annotations"]
    second = build_deployment(ctx, content_hash("b"))["spec"]["template"]["metadata"]["annotations"]
    assert first != second


def test_volume_is_owned_only_when_reclaim_policy_is_delete() -> None:
    assert "ownerReferences" not in build_pvc(_ctx("default"))["metadata"]
    assert build_pvc(_ctx("default"))["spec"]["resources"]["requests"]["storage"] == "100Gi"
    deleting = build_pvc(_ctx("basic-plain-http-delete-volume"))
    assert deleting["metadata"]["ownerReferences"][0]["uid"] == OWNER.uid
    assert deleting["spec"]["storageClassName"] == "fast"


def test_object_storage_rolls_pods_one_by_one_pvc_recreates() -> None:
    assert build_deployment(_ctx("premium-s3-ingress"), "h")["spec"]["strategy"]["type"] == "RollingUpdate"
    assert build_deployment(_ctx("premium-s3-ingress"), "h")["spec"]["replicas"] == 3
    assert build_deployment(_ctx("default"), "h")["spec"]["strategy"]["type"] == "Recreate"


def test_auth_policy_admin_and_anonymous() -> None:
    ctx = _ctx("standard-admin-anonymous")
    policy = build_auth_policy(ctx, ("p1", "p2"))
    assert policy.users[0].username == "contoso"
    assert policy.users[0].password_digests == (password_digest("p1"), password_digest("p2"))
    assert [g.actions for g in policy.anonymous] == [("pull",)]
    assert AuthPolicy.model_validate_json(policy.model_dump_json()) == policy
    assert build_auth_policy(ctx, None).users == ()
    assert build_auth_policy(_ctx("default"), ("p1", "p2")).anonymous == ()


def test_admin_and_pull_secrets() -> None:
    ctx = _ctx("standard-admin-anonymous")
    admin = build_admin_secret(ctx, "one", "two")
    decoded = {k: base64.b64decode(v).decode() for k, v in admin["data"].items()}
    assert decoded == {"username": "contoso", "password": "one", "password2": "two"}
    pull = build_pull_secret(ctx, "one")
    assert pull["type"] == "kubernetes.io/dockerconfigjson"
    config = json.loads(base64.b64decode(pull["data"][".dockerconfigjson"]))
    entry = config["auths"]["contoso.team-a.svc:5000"]
    assert base64.b64decode(entry["auth"]).decode() == "contoso:one"


def test_node_pull_names_the_cluster_ip_in_certificate_realm_pull_secret_and_node_config() -> None:
    ctx = _ctx("standard-admin-node-pull")
    assert ctx.node_login_server == "10.96.12.34:5000"
    assert CLUSTER_IP in ctx.tls_hosts and "contoso.team-a.svc" in ctx.tls_hosts
    token = build_registry_config(ctx)["auth"]["token"]
    assert token["realm"] == "https://10.96.12.34:5001/token"
    assert token["service"] == "contoso.team-a.svc:5000"  # what tokens are issued for stays the same
    config = json.loads(base64.b64decode(build_pull_secret(ctx, "one")["data"][".dockerconfigjson"]))
    assert sorted(config["auths"]) == ["10.96.12.34:5000", "contoso.team-a.svc:5000"]
    daemonset = build_node_trust_daemonset(ctx, "h")
    assert daemonset is not None and daemonset["metadata"]["name"] == "contoso-node-trust"
    pod = daemonset["spec"]["template"]["spec"]
    assert pod["volumes"][1]["hostPath"] == {"path": "/etc/containerd/certs.d", "type": "DirectoryOrCreate"}
    env = {e["name"]: e["value"] for e in pod["containers"][0]["env"]}
    assert env["NODE_LOGIN_SERVER"] == "10.96.12.34:5000"
    assert '[host."https://10.96.12.34:5000"]' in env["HOSTS_TOML"] and 'ca = "ca.crt"' in env["HOSTS_TOML"]
    assert pod["containers"][0]["securityContext"]["capabilities"] == {"drop": ["ALL"]}


def test_a_cert_manager_certificate_names_the_node_login_address_as_an_ip_address() -> None:
    """A client connecting to an address checks IP SANs only: the ClusterIP kubelets pull from
    is an `ipAddresses` entry, never a DNS name."""
    tls = {"mode": "CertManager", "issuerRef": {"name": "corp", "kind": "ClusterIssuer"}}

    def certificate(spec: dict[str, Any]) -> dict[str, Any]:
        registry = RegistrySpec.model_validate({"tls": tls, **spec})
        ctx = RegistryContext(
            OWNER, registry, "registry:3", "dockyard:test", "contoso-tls", "http://events", cluster_ip=CLUSTER_IP
        )
        return dict(build_certificate(ctx, "contoso")["spec"])

    node_pull = certificate({"exposure": {"nodePull": True}})
    assert node_pull["ipAddresses"] == [CLUSTER_IP]
    assert CLUSTER_IP not in node_pull["dnsNames"] and "contoso.team-a.svc" in node_pull["dnsNames"]
    plain = certificate({})
    assert "ipAddresses" not in plain and "contoso.team-a.svc" in plain["dnsNames"]


def test_node_pull_waits_for_the_cluster_ip_and_is_off_by_default() -> None:
    waiting = _ctx("standard-admin-node-pull", cluster_ip=None)
    assert waiting.node_login_server is None and build_node_trust_daemonset(waiting, "h") is None
    assert build_registry_config(waiting)["auth"]["token"]["realm"] == "https://contoso.team-a.svc:5001/token"
    default = _ctx("default")
    assert default.node_login_server is None and CLUSTER_IP not in default.tls_hosts
    assert build_node_trust_daemonset(default, "h") is None


def test_status_shows_the_node_login_server_and_drops_it_when_off() -> None:
    daemonset = {"status": {"desiredNumberScheduled": 3, "numberReady": 2}}
    on, _ = observe(_ctx("standard-admin-node-pull"), None, True, 0, 0, daemonset)
    assert on["nodeLoginServer"] == "10.96.12.34:5000"
    assert on["nodePull"] == {"nodes": 3, "ready": 2}
    assert observe(_ctx("standard-admin-node-pull"), None, True, 0, 0)[0]["nodePull"] == {"nodes": 0, "ready": 0}
    off, _ = observe(_ctx("standard-admin-anonymous"), None, True, 0, 0, daemonset)
    assert off["nodeLoginServer"] is None and off["nodePull"] is None  # a merge patch deletes them


def test_a_tier_change_does_not_resize_an_existing_volume() -> None:
    size = lambda pvc: pvc["spec"]["resources"]["requests"]["storage"]
    assert size(build_pvc(_ctx("default"))) == "100Gi"
    assert size(build_pvc(_ctx("default"), current_size="10Gi")) == "10Gi", "kept from the Basic tier it was created at"
    explicit = _ctx("basic-plain-http-delete-volume")
    wanted = explicit.spec.storage.persistent_volume.size  # type: ignore[union-attr]
    assert wanted and size(build_pvc(explicit, current_size="1Gi")) == wanted, "an explicit size asks for expansion"


@pytest.mark.parametrize("name", sorted(SPECS))
def test_foreign_layer_urls_are_allowed_with_validation_on(name: str) -> None:
    """distribution refuses (500) a manifest whose non-distributable layers carry `urls` unless
    `validation.manifests.urls.allow` matches them; `disabled`/`enabled` are left out, which keeps
    validation on in 2.8 and 3.x."""
    validation = build_registry_config(_ctx(name))["validation"]
    assert validation == {"manifests": {"urls": {"allow": ["^https?://"]}}}
    allow = re.compile("|".join(f"(?:{p})" for p in validation["manifests"]["urls"]["allow"]))
    assert allow.match("https://mcr.microsoft.com/v2/windows/servercore/blobs/sha256:abc")
    assert allow.match("http://example.com/layer.tar.gz")
    assert not allow.match("ftp://example.com/layer") and not allow.match("file:///etc/passwd")


@pytest.mark.parametrize("name", sorted(SPECS))
def test_registry_exports_no_traces(name: str) -> None:
    """distribution 3.x would export OTel traces to localhost:4318, where nothing listens."""
    container = build_deployment(_ctx(name), "h")["spec"]["template"]["spec"]["containers"][0]
    assert container["name"] == "registry"
    assert {"name": "OTEL_TRACES_EXPORTER", "value": "none"} in container["env"]
