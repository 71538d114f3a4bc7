"""Golden-file tests of a replica's children (`replication/manifests.py`). `UPDATE_GOLDEN=1 make unit`
rewrites the files; review the diff like code."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from dockyard.core.meta import Owner
from dockyard.models import RegistrySpec
from dockyard.models.replication import ReplicationSpec
from dockyard.registries.manifests.config import RegistryContext, RegistryNames, build_registry_config, tls_secret_name
from dockyard.replication.manifests import (
    build_replica_config_map,
    build_replica_config_text,
    build_replica_deployment,
    build_replica_http_secret,
    build_replica_pvc,
    build_replica_service,
    build_replica_token_account,
    build_replica_token_binding,
    build_shared_copy,
    replica_context,
)
from dockyard.replication.placement import Placement, plan_replica

GOLDEN = Path(__file__).parent / "golden"
HOME = Owner("dockyard.dev/v1alpha1", "Registry", "hub", "team-a", "8b7c6d5e-0000-4000-8000-000000000001")
ELSEWHERE = Owner("dockyard.dev/v1alpha1", "Replication", "hub-west", "team-b", "8b7c6d5e-0000-4000-8000-0000000000aa")
REPLICATION = Owner(
    "dockyard.dev/v1alpha1", "Replication", "hub-west", "team-a", "8b7c6d5e-0000-4000-8000-0000000000aa"
)
CASES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "premium-volume-zone": ({"sku": "Premium", "storage": {"reclaimPolicy": "Delete"}}, {"location": "zone-b"}),
    "premium-s3-own-bucket": (
        {"sku": "Premium", "storage": {"s3": {"bucket": "home", "region": "eu-west-1"}}, "tls": {"mode": "Disabled"}},
        {
            "location": "west",
            "nodeSelector": {"pool": "west"},
            "storage": {"s3": {"bucket": "west", "region": "eu-west-2", "credentialsSecretRef": {"name": "west-s3"}}},
            "resources": {"requests": {"cpu": "1"}},
        },
    ),
}


def _home(spec: dict[str, Any]) -> RegistryContext:
    parsed = RegistrySpec.model_validate(spec)
    return RegistryContext(
        HOME,
        parsed,
        "registry:3",
        "ghcr.io/dockyard/dockyard:0.1.0",
        tls_secret_name(parsed, RegistryNames(HOME.name)),
        "http://dockyard-events.dockyard-system.svc:8090",
    )


def _replica(case: str) -> Any:
    registry, replication = CASES[case]
    home = _home(registry)
    spec = ReplicationSpec.model_validate({"registryRef": {"name": "hub"}, **replication})
    placement = plan_replica(
        "team-a", "hub", home.spec, REPLICATION.name, "t", spec, [], [{"topology.kubernetes.io/zone": "zone-b"}]
    )
    assert isinstance(placement, Placement), placement
    return home, replica_context(home, REPLICATION, spec.location, placement, spec.resources)


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden(case: str) -> None:
    _, ctx = _replica(case)
    config = build_replica_config_text(ctx)
    documents = [
        build_replica_config_map(ctx, config),
        build_replica_http_secret(ctx, "generated"),
        build_replica_service(ctx),
        build_replica_pvc(ctx),
        build_replica_deployment(ctx, "hash"),
    ]
    rendered = yaml.safe_dump_all([d for d in documents if d is not None], sort_keys=False)
    path = GOLDEN / f"replica-{case}.yaml"
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(rendered)
    assert path.exists(), f"missing {path.name}: run UPDATE_GOLDEN=1 make unit"
    assert rendered == path.read_text()


def test_one_token_works_on_home_and_replica() -> None:
    home, replica = _replica("premium-volume-zone")
    home_auth = build_registry_config(home)["auth"]["token"]
    replica_auth = build_registry_config(replica)["auth"]["token"]
    assert replica_auth["service"] == home_auth["service"] == "hub.team-a.svc:5000"
    assert replica_auth["issuer"] == home_auth["issuer"]
    assert replica_auth["realm"] == "https://hub-zone-b.team-a.svc:5001/token"
    pod = build_replica_deployment(replica, "h")["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["auth"]["secret"]["secretName"] == "hub-auth"
    assert volumes["token-signer"]["secret"]["secretName"] == "hub-token-signer"
    assert volumes["tls"]["secret"]["secretName"] == "hub-zone-b-tls"
    assert volumes["data"]["persistentVolumeClaim"]["claimName"] == "hub-zone-b-data"
    assert pod["nodeSelector"] == {"topology.kubernetes.io/zone": "zone-b"}


def test_replica_posts_events_under_the_home_name_with_its_location() -> None:
    _, replica = _replica("premium-volume-zone")
    container = build_replica_deployment(replica, "h")["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e for e in container["env"]}
    endpoints = yaml.safe_load(env["REGISTRY_NOTIFICATIONS_ENDPOINTS"]["value"])
    assert endpoints[0]["url"].endswith("/events/team-a/hub?location=zone-b")
    assert env["DOCKYARD_EVENTS_TOKEN"]["valueFrom"]["secretKeyRef"]["name"] == "hub-events"
    assert env["REGISTRY_HTTP_SECRET"]["valueFrom"]["secretKeyRef"]["name"] == "hub-zone-b-http-secret"


def test_every_child_is_owned_by_the_replication_and_the_volume_per_reclaim_policy() -> None:
    _, replica = _replica("premium-volume-zone")
    for child in (build_replica_service(replica), build_replica_deployment(replica, "h"), build_replica_pvc(replica)):
        assert child is not None
        assert child["metadata"]["ownerReferences"][0]["uid"] == REPLICATION.uid
    retained = RegistrySpec.model_validate({"sku": "Premium"})
    spec = ReplicationSpec.model_validate({"registryRef": {"name": "hub"}, "location": "zone-b"})
    placement = plan_replica("team-a", "hub", retained, "r", "t", spec, [], [{"topology.kubernetes.io/zone": "zone-b"}])
    assert isinstance(placement, Placement)
    pvc = build_replica_pvc(replica_context(_home({"sku": "Premium"}), REPLICATION, "zone-b", placement))
    assert pvc is not None and "ownerReferences" not in pvc["metadata"]


def test_in_another_namespace_nothing_is_owned_and_shared_secrets_are_copies() -> None:
    home = _home({"sku": "Premium"})
    spec = ReplicationSpec.model_validate(
        {"registryRef": {"name": "hub"}, "location": "zone-b", "targetNamespace": "team-b"}
    )
    placement = plan_replica(
        "team-a", "hub", home.spec, "r", "t", spec, [], [{"topology.kubernetes.io/zone": "zone-b"}]
    )
    assert isinstance(placement, Placement)
    ctx = replica_context(home, ELSEWHERE, "zone-b", placement)
    assert ctx.cross_namespace
    deployment = build_replica_deployment(ctx, "h")
    assert deployment["metadata"]["namespace"] == "team-b" and "ownerReferences" not in deployment["metadata"]
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    assert volumes["auth"]["secret"]["secretName"] == "hub-zone-b-auth"
    assert volumes["token-signer"]["secret"]["secretName"] == "hub-zone-b-token-signer"
    env = {e["name"]: e for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["DOCKYARD_EVENTS_TOKEN"]["valueFrom"]["secretKeyRef"]["name"] == "hub-zone-b-events"
    endpoints = yaml.safe_load(env["REGISTRY_NOTIFICATIONS_ENDPOINTS"]["value"])
    assert endpoints[0]["url"].endswith("/events/team-a/hub?location=zone-b"), "posted under the registry's namespace"
    assert build_registry_config(ctx)["auth"]["token"]["service"] == "hub.team-a.svc:5000"
    assert ctx.login_server == "hub-zone-b.team-b.svc:5000"
    source = {
        "type": "Opaque",
        "data": {"policy.json": "e30="},
        "metadata": {"name": "hub-auth", "namespace": "team-a"},
    }
    copy = build_shared_copy(ctx, ctx.names.auth, source)
    assert copy["metadata"]["namespace"] == "team-b" and copy["metadata"]["name"] == "hub-zone-b-auth"
    assert copy["data"] == source["data"] and "ownerReferences" not in copy["metadata"]


def _token_args(deployment: dict[str, Any]) -> dict[str, str]:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    token = next(c for c in containers if "--registry" in (c.get("args") or []))
    args = token["args"]
    return {args[i]: args[i + 1] for i in range(len(args) - 1) if args[i] in ("--registry", "--namespace")}


def test_a_replicas_token_service_reads_the_registrys_tokens_as_the_registrys_account() -> None:
    """Tokens work on every replica: the replica's token service selects the home registry's Tokens
    and ScopeMaps in its namespace, signs with its key, and runs as the account the registry's
    token-reader Role is bound to."""
    _, replica = _replica("premium-volume-zone")
    deployment = build_replica_deployment(replica, "h")
    assert _token_args(deployment) == {"--registry": "hub", "--namespace": "team-a"}
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == "hub-token-service"


def test_in_another_namespace_the_replica_has_its_own_account_bound_to_the_registrys_role() -> None:
    home = _home({"sku": "Premium"})
    spec = ReplicationSpec.model_validate(
        {"registryRef": {"name": "hub"}, "location": "zone-b", "targetNamespace": "team-b"}
    )
    placement = plan_replica(
        "team-a", "hub", home.spec, "r", "t", spec, [], [{"topology.kubernetes.io/zone": "zone-b"}]
    )
    assert isinstance(placement, Placement)
    ctx = replica_context(home, ELSEWHERE, "zone-b", placement)
    deployment = build_replica_deployment(ctx, "h")
    assert _token_args(deployment) == {"--registry": "hub", "--namespace": "team-a"}
    account = build_replica_token_account(ctx)
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == account["metadata"]["name"]
    assert account["metadata"]["namespace"] == "team-b" and "ownerReferences" not in account["metadata"]
    binding = build_replica_token_binding(ctx)
    assert binding["metadata"]["namespace"] == "team-a"
    assert binding["metadata"]["ownerReferences"][0]["uid"] == ELSEWHERE.uid
    assert binding["roleRef"]["name"] == "hub-token-service"
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": account["metadata"]["name"], "namespace": "team-b"}
    ]
