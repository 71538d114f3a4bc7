"""The registry's global login server over replicas (`registries/manifests/endpoints.py`, the pod
cache, the replica's names and realm): which pods it lists, its Service's two shapes, and the golden
EndpointSlices. `UPDATE_GOLDEN=1 make unit` rewrites the golden file; review the diff like code."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from dockyard.core.cache import CHILD_INDEX, ClusterCache, known, pod_status, summarize
from dockyard.core.meta import Owner
from dockyard.core.pki import certificate_covers, issue_ca, issue_serving_cert
from dockyard.handlers.registry import ChildChange, child_change
from dockyard.models import RegistrySpec
from dockyard.models.replication import ReplicationSpec
from dockyard.registries.global_endpoint import home_pod_address
from dockyard.registries.manifests.config import RegistryContext, RegistryNames, build_registry_config, tls_secret_name
from dockyard.registries.manifests.endpoints import (
    HOME_NAMESPACE_LABEL,
    HOME_REGISTRY_LABEL,
    SERVICE_NAME_LABEL,
    SLICE_MANAGER,
    SLICE_MANAGER_LABEL,
    Member,
    ReplicaRoute,
    build_global_endpoint_slices,
    home_pod_selector,
    member_of,
    replica_routes,
)
from dockyard.registries.manifests.workload import build_service
from dockyard.replication.manifests import build_replica_deployment, replica_context
from dockyard.replication.placement import Placement, plan_replica

GOLDEN = Path(__file__).parent / "golden"
HOME = Owner("dockyard.dev/v1alpha1", "Registry", "hub", "team-a", "8b7c6d5e-0000-4000-8000-000000000001")
REPLICATION = Owner(
    "dockyard.dev/v1alpha1", "Replication", "hub-west", "team-b", "8b7c6d5e-0000-4000-8000-0000000000aa"
)


def _home(spec: dict[str, Any] | None = None) -> RegistryContext:
    parsed = RegistrySpec.model_validate(spec or {"sku": "Premium"})
    return RegistryContext(
        HOME,
        parsed,
        "registry:3",
        "ghcr.io/dockyard/dockyard:0.1.0",
        tls_secret_name(parsed, RegistryNames(HOME.name)),
        "http://dockyard-events.dockyard-system.svc:8090",
    )


def _pod(namespace: str, name: str, labels: dict[str, str], **status: Any) -> dict[str, Any]:
    ready = status.pop("ready", True)
    deleting = status.pop("deleting", False)
    return {
        "metadata": {
            "namespace": namespace,
            "name": name,
            "uid": f"uid-{name}",
            "labels": labels,
            **({"deletionTimestamp": "2026-12-01T00:00:00Z"} if deleting else {}),
        },
        "spec": {"nodeName": "node-1"},
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
            **status,
        },
    }


def _replication(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "team-a"},
        "spec": {"registryRef": {"name": "hub"}, "location": name.rsplit("-", maxsplit=1)[-1], **spec},
    }


def test_replica_routes_every_valid_replication_and_which_are_routed() -> None:
    bodies = [
        _replication("hub-west", targetNamespace="team-b"),
        _replication("hub-east", regionEndpointEnabled=False),
        {**_replication("hub-gone"), "metadata": {"name": "hub-gone", "deletionTimestamp": "x"}},
        {"metadata": {"name": "hub-bad"}, "spec": {"location": "NOT A LABEL"}},
    ]
    assert replica_routes("team-a", bodies) == [
        ReplicaRoute("hub-east", "team-a", routed=False),
        ReplicaRoute("hub-west", "team-b", routed=True),
    ]
    assert replica_routes("team-a", []) == []


def test_a_pod_becomes_a_member_once_it_has_an_address() -> None:
    labels = home_pod_selector(_home())
    assert member_of("team-a", "p", pod_status(_pod("team-a", "p", labels))) is None, "no address yet"
    finished = pod_status(_pod("team-a", "p", labels, podIP="10.0.0.1", phase="Succeeded"))
    assert member_of("team-a", "p", finished) is None
    unready = member_of("team-a", "p", pod_status(_pod("team-a", "p", labels, podIP="10.0.0.1", ready=False)))
    assert unready is not None and not unready.ready and not unready.serving
    leaving = member_of("team-a", "p", pod_status(_pod("team-a", "p", labels, podIP="10.0.0.1", deleting=True)))
    assert leaving is not None and (leaving.ready, leaving.serving, leaving.terminating) == (False, True, True)
    dual = pod_status(_pod("team-a", "p", labels, podIPs=[{"ip": "10.0.0.1"}, {"ip": "fd00::1"}]))
    assert dual["podIPs"] == ["10.0.0.1", "fd00::1"] and dual["uid"] == "uid-p" and dual["nodeName"] == "node-1"


def test_the_service_keeps_its_selector_without_replicas_and_drops_it_over_them() -> None:
    ctx = _home()
    plain = build_service(ctx)
    assert plain == build_service(ctx, global_routing=False)
    assert plain["spec"]["selector"] == home_pod_selector(ctx)
    assert "sessionAffinity" not in plain["spec"] and "annotations" not in plain["metadata"]
    routed = build_service(ctx, global_routing=True)
    assert "selector" not in routed["spec"]
    assert routed["spec"]["sessionAffinity"] == "ClientIP"
    assert routed["spec"]["ports"] == plain["spec"]["ports"]
    assert routed["metadata"]["name"] == plain["metadata"]["name"] == "hub"


def test_golden_global_endpoint() -> None:
    ctx = _home()
    members = [
        Member("team-b", "hub-west-7d9-x2", "uid-w", ("10.0.1.7",), ready=True, serving=True, node_name="west-1"),
        Member("team-a", "hub-5c4-a1", "uid-a", ("10.0.0.5", "fd00::5"), ready=True, serving=True, node_name="n1"),
        Member("team-a", "hub-5c4-b2", "uid-b", ("10.0.0.6",), ready=False, node_name="n2"),
    ]
    slices = build_global_endpoint_slices(ctx, members)
    rendered = yaml.safe_dump_all([build_service(ctx, global_routing=True), *slices], sort_keys=False)
    path = GOLDEN / "global-endpoint.yaml"
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(rendered)
    assert path.exists(), f"missing {path.name}: run UPDATE_GOLDEN=1 make unit"
    assert rendered == path.read_text()
    v4, v6 = slices
    assert v4["metadata"]["labels"][SERVICE_NAME_LABEL] == "hub"
    assert v4["metadata"]["labels"][SLICE_MANAGER_LABEL] == SLICE_MANAGER != "endpointslice-controller.k8s.io"
    assert [e["targetRef"]["name"] for e in v4["endpoints"]] == ["hub-5c4-a1", "hub-5c4-b2", "hub-west-7d9-x2"]
    assert [e["addresses"] for e in v6["endpoints"]] == [["fd00::5"]]
    assert {p["name"] for p in v4["ports"]} == {p["name"] for p in build_service(ctx)["spec"]["ports"]}


def test_no_pod_yet_still_gives_an_empty_ipv4_slice() -> None:
    (only,) = build_global_endpoint_slices(_home(), [])
    assert only["addressType"] == "IPv4" and only["endpoints"] == []


def test_the_cache_finds_pods_by_label_in_one_namespace() -> None:
    cache = ClusterCache()
    assert not known(cache.pods("team-a", {}))
    labels = home_pod_selector(_home())
    index: dict[tuple[str, str], Any] = {}
    for pod in (
        _pod("team-a", "hub-b", {**labels, "pod-template-hash": "x"}, podIP="10.0.0.2"),
        _pod("team-a", "hub-a", labels, podIP="10.0.0.1"),
        _pod("team-b", "hub-c", labels, podIP="10.0.0.3"),
        _pod("team-a", "other", {"app": "x"}, podIP="10.0.0.4"),
    ):
        index[(pod["metadata"]["namespace"], pod["metadata"]["name"])] = (summarize("Pod", pod),)
    cache.bind({CHILD_INDEX[("v1", "Pod")]: index})
    found = cache.pods("team-a", labels)
    assert [pod.name for pod in found] == ["hub-a", "hub-b"]  # type: ignore[union-attr]
    assert found[0].status["podIPs"] == ["10.0.0.1"]  # type: ignore[index]
    assert summarize("Secret", {"metadata": {"labels": {"a": "b"}}}).labels is None, "labels kept for pods only"


def _replica(routed: bool, home: RegistryContext | None = None) -> Any:
    home = home or _home()
    spec = ReplicationSpec.model_validate(
        {"registryRef": {"name": "hub"}, "location": "west", "nodeSelector": {"a": "b"}}
    )
    placement = plan_replica("team-a", "hub", home.spec, REPLICATION.name, "t", spec, [], [])
    assert isinstance(placement, Placement), placement
    return replica_context(home, REPLICATION, "west", placement, routed=routed)


def test_a_pod_event_reaches_the_registry_whose_global_login_server_lists_it() -> None:
    home_pod = _pod("team-a", "hub-5c4-a1", {**home_pod_selector(_home()), "pod-template-hash": "5c4"})
    assert child_change("Pod", "MODIFIED", home_pod) == (("team-a", "hub"), ChildChange("", False, endpoints=True))
    template = build_replica_deployment(_replica(True), "h")["spec"]["template"]
    labels = template["metadata"]["labels"]
    assert (labels[HOME_REGISTRY_LABEL], labels[HOME_NAMESPACE_LABEL]) == ("hub", "team-a")
    replica_pod = _pod("team-b", "hub-west-1", labels)
    assert child_change("Pod", "DELETED", replica_pod) == (("team-a", "hub"), ChildChange("", False, endpoints=True))
    assert child_change("Pod", "ADDED", _pod("team-a", "build-1", {"app": "kaniko"})) is None
    merged = ChildChange("u", False).merge(ChildChange("", False, endpoints=True))
    assert merged == ChildChange("u", False, endpoints=True)


def test_a_replicas_certificate_covers_the_global_names_and_its_realm_follows_routing() -> None:
    home = _home({"sku": "Premium", "exposure": {"nodePull": True}})
    home = RegistryContext(**{**home.__dict__, "cluster_ip": "10.96.0.10"})
    routed, alone = _replica(True, home), _replica(False, home)
    for replica in (routed, alone):
        assert set(replica.tls_hosts) >= {"hub-west.team-b.svc", "hub.team-a.svc", "hub", "10.96.0.10"}
        assert len(replica.tls_hosts) == len(set(replica.tls_hosts))
    home_auth = build_registry_config(home)["auth"]["token"]
    assert (
        build_registry_config(routed)["auth"]["token"]["realm"] == home_auth["realm"] == "https://10.96.0.10:5001/token"
    )
    assert build_registry_config(alone)["auth"]["token"]["realm"] == "https://hub-west.team-b.svc:5001/token"
    for replica in (routed, alone):
        token = build_registry_config(replica)["auth"]["token"]
        assert (token["service"], token["issuer"]) == (home_auth["service"], home_auth["issuer"])
    # In-cluster only: every pod's realm is its own name (the regional login server stands alone).
    in_cluster = build_registry_config(_replica(True))["auth"]["token"]
    assert in_cluster["realm"] == "https://hub-west.team-b.svc:5001/token"


@pytest.mark.parametrize("routed", [True, False])
def test_the_replica_deployment_selector_is_unchanged_by_the_labels(routed: bool) -> None:
    deployment = build_replica_deployment(_replica(routed), "h")
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert HOME_REGISTRY_LABEL not in selector
    assert ReplicaRoute("hub-west", "team-b").pod_selector == selector


def test_a_serving_certificate_for_names_in_a_long_namespace() -> None:
    """`<replica>.<namespace>.svc` may pass X.509's 64-character common name; the certificate is
    still issued and covers every name (in its SANs)."""
    namespace = "t-" + "n" * 58
    hosts = [f"glob-west.{namespace}.svc", "glob-west", f"glob.{namespace}.svc"]
    serving = issue_serving_cert(issue_ca("test CA"), hosts)
    assert certificate_covers(serving.cert_pem, hosts)


def test_the_copier_reaches_the_home_at_a_ready_pod_of_its_own() -> None:
    """Once the registry's Service routes over replicas, the home is dialled at one of its own ready
    pods (the first by name), never at a replica's, and not at all while none is ready."""
    labels = home_pod_selector(_home())
    replica_labels = ReplicaRoute("hub-west", "team-a").pod_selector
    pods = [
        _pod("team-a", "hub-b", labels, podIP="10.0.0.2"),
        _pod("team-a", "hub-a", labels, podIP="10.0.0.1", ready=False),
        _pod("team-a", "hub-west-a", replica_labels, podIP="10.0.0.9"),
    ]
    cache = ClusterCache()
    index = {(p["metadata"]["namespace"], p["metadata"]["name"]): (summarize("Pod", p),) for p in pods}
    cache.bind({CHILD_INDEX[("v1", "Pod")]: index})
    kube: Any = SimpleNamespace(cache=cache)
    assert home_pod_address(kube, _home()) == "10.0.0.2"
    index.pop(("team-a", "hub-b"))
    assert home_pod_address(kube, _home()) is None
