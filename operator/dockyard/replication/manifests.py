"""The children of a replica: the Registry's builders, run on a context that names the replica.

A replica is a registry of its own (Deployment, Service, config, http.secret, serving certificate,
volume: `<registry>-<location>…`) that shares with its home registry exactly what makes it the same
registry to clients: the auth policy and the token signer (one login, one token valid on every
replica: the token `service` is the home's), the CA (one trust anchor) and the events token (its
notifications go to the intake under the home registry's name, with `?location=<location>`).
Every child is owned by the Replication, so deleting it removes the replica; the volume only with
`storage.reclaimPolicy: Delete`. In another namespace (`targetNamespace`) nothing can be owned
across namespaces: the replica holds copies of the shared Secrets (`<registry>-<location>-auth`, …)
and a finalizer removes its children by name.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import yaml

from dockyard.core.meta import Owner, metadata
from dockyard.core.names import RegistryNames, replica_name
from dockyard.models import API_VERSION
from dockyard.models.registry import ExposureSpec, RegistrySpec
from dockyard.registries.manifests.access import build_token_service_account
from dockyard.registries.manifests.config import (
    RegistryContext,
    build_notification_endpoints,
    build_registry_config,
    render_config,
)
from dockyard.registries.manifests.endpoints import HOME_NAMESPACE_LABEL, HOME_REGISTRY_LABEL
from dockyard.registries.manifests.secrets import build_http_secret
from dockyard.registries.manifests.workload import (
    build_config_map,
    build_deployment,
    build_pvc,
    build_service,
)
from dockyard.replication.hostnames import replica_hosts
from dockyard.replication.placement import Placement

NOTIFICATIONS_ENV = "REGISTRY_NOTIFICATIONS_ENDPOINTS"
LOCATION_PARAMETER = "location"
"""The query parameter of the intake URL naming the replica an envelope comes from."""


@dataclass(frozen=True)
class ReplicaNames(RegistryNames):
    """A replica's own children by its name; the shared ones by its home registry's, or, in
    another namespace (`copies`), the replica's copies of them."""

    home: str = ""
    copies: bool = False

    @property
    def _shared(self) -> RegistryNames:
        return RegistryNames(self.registry if self.copies else self.home)

    @property
    def auth(self) -> str:
        return self._shared.auth

    @property
    def token_signer(self) -> str:
        return self._shared.token_signer

    @property
    def events(self) -> str:
        return self._shared.events

    @property
    def ca_secret(self) -> str:
        return self._shared.ca_secret

    @property
    def ca_config_map(self) -> str:
        return self._shared.ca_config_map

    @property
    def token_reader(self) -> str:
        """In the registry's namespace the registry's token-service account (bound to read its
        Tokens); in another namespace the replica's own, bound by `build_replica_token_binding`."""
        return self._shared.token_reader

    @property
    def admin(self) -> str:
        return RegistryNames(self.home).admin

    @property
    def pull(self) -> str:
        return RegistryNames(self.home).pull


@dataclass(frozen=True)
class ReplicaContext(RegistryContext):
    """A RegistryContext whose children are the replica's; see the module docstring."""

    home: str = ""
    home_namespace: str = ""
    location: str = ""
    home_token_service: str = ""
    node_selector: dict[str, str] = dataclasses.field(default_factory=dict)
    home_node_address: str = ""
    """The registry's ClusterIP with exposure.nodePull: kubelets pull at it, and the global login
    server may send them to the replica, whose certificate must name it too."""
    global_token_realm: str = ""
    """The home's realm when the in-cluster names do not reach every client of the global login
    server (nodePull: kubelets pull at the ClusterIP; an Ingress host: clients outside), else ""."""
    routed: bool = False
    """`regionEndpointEnabled`: the global login server lists the replica's pods."""

    @property
    def token_realm(self) -> str:
        """Its own (`https://<replica>.<namespace>.svc:5001/token`): every token service signs
        with the home's key for the home's `service`, so a token from any of them works on every
        replica, and the regional login server never depends on another pod. Except when routed
        and a client of the global login server could not resolve that name (a kubelet with
        nodePull, a client through the Ingress): then the home's realm, which the global name
        serves wherever it lands (this replica's token service among them)."""
        if self.routed and self.global_token_realm:
            return self.global_token_realm
        return super().token_realm

    @property
    def cross_namespace(self) -> bool:
        """The replica runs in another namespace than its registry (`spec.targetNamespace`): its
        children cannot be owned by the Replication (a finalizer removes them) and it holds copies
        of the registry's shared Secrets."""
        return bool(self.home_namespace) and self.home_namespace != self.owner.namespace

    @property
    def names(self) -> ReplicaNames:
        return ReplicaNames(replica_name(self.home, self.location), home=self.home, copies=self.cross_namespace)

    @property
    def tls_hosts(self) -> list[str]:
        """What the replica's certificate names: its own login server and the registry's global
        one (`hostnames.replica_hosts`), and the registry's ClusterIP with nodePull."""
        hosts = replica_hosts(
            self.names.service, self.owner.namespace, self.home, self.home_namespace or self.owner.namespace
        ).all
        return [*hosts, self.home_node_address] if self.home_node_address else hosts

    @property
    def token_service(self) -> str:
        return self.home_token_service

    @property
    def tokens_of(self) -> tuple[str, str]:
        """The home registry's Tokens and ScopeMaps, in its namespace: one token works everywhere."""
        return self.home_namespace or self.owner.namespace, self.home

    @property
    def events_path(self) -> str:
        namespace = self.home_namespace or self.owner.namespace
        return f"/events/{namespace}/{self.home}?{LOCATION_PARAMETER}={self.location}"


def owned(ctx: ReplicaContext, manifest: dict[str, Any]) -> dict[str, Any]:
    """`manifest` as the replica keeps it: owned by the Replication in its namespace; in another
    namespace without owner (an owner reference cannot cross namespaces: the garbage collector
    would delete the child at once)."""
    if ctx.cross_namespace:
        manifest = {**manifest, "metadata": {k: v for k, v in manifest["metadata"].items() if k != "ownerReferences"}}
    return manifest


def build_shared_copy(ctx: ReplicaContext, name: str, source: dict[str, Any]) -> dict[str, Any]:
    """A copy of one of the registry's shared Secrets (auth policy, token signer, events token,
    CA) in the replica's namespace, kept equal to it by every reconcile."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata(ctx.owner, name, "registry", owned=False),
        "type": source.get("type") or "Opaque",
        "data": dict(source.get("data") or {}),
    }


def build_replica_token_account(ctx: ReplicaContext) -> dict[str, Any]:
    """The replica's token-service account, in another namespace only (`ReplicaNames.token_reader`)."""
    return owned(ctx, build_token_service_account(ctx))


def build_replica_token_binding(ctx: ReplicaContext) -> dict[str, Any]:
    """In the registry's namespace, owned by the Replication (which lives there): the registry's
    token-reader Role bound to the replica's account in its own namespace, so the replica's token
    service reads the registry's Tokens and ScopeMaps as the registry's does."""
    home = Owner(ctx.owner.api_version, ctx.owner.kind, ctx.owner.name, ctx.home_namespace, ctx.owner.uid)
    role = RegistryNames(ctx.home).token_reader
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": metadata(home, ctx.names.token_reader, "registry"),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role},
        "subjects": [{"kind": "ServiceAccount", "name": ctx.names.token_reader, "namespace": ctx.owner.namespace}],
    }


def replica_context(
    home: RegistryContext,
    replication: Owner,
    location: str,
    placement: Placement,
    spec_resources: Any = None,
    *,
    routed: bool = False,
) -> ReplicaContext:
    """The replica of `home` at `location` in `replication.namespace`: the home's spec with the
    replica's storage and resources, reached in-cluster only (its Service is its regional login
    server)."""
    spec: RegistrySpec = home.spec.model_copy(
        update={
            "storage": placement.storage,
            "exposure": ExposureSpec(),
            "replicas": None,
            "resources": spec_resources or home.spec.resources,
        }
    )
    copies = replication.namespace != home.owner.namespace
    names = ReplicaNames(replica_name(home.owner.name, location), home=home.owner.name, copies=copies)
    return ReplicaContext(
        owner=replication,
        spec=spec,
        registry_image=home.registry_image,
        token_image=home.token_image,
        tls_secret_name=names.tls if home.tls_enabled else None,
        events_url=home.events_url,
        home=home.owner.name,
        home_namespace=home.owner.namespace,
        location=location,
        home_token_service=home.token_service,
        node_selector=placement.node_selector,
        home_node_address=home.cluster_ip if home.node_pull and home.cluster_ip else "",
        global_token_realm=home.token_realm if home.node_pull or home.external_host else "",
        routed=routed,
    )


def replication_owner(body: dict[str, Any], namespace: str | None = None) -> Owner:
    """The Replication as the owner of children in `namespace` (default: its own)."""
    meta = body["metadata"]
    return Owner(API_VERSION, "Replication", meta["name"], namespace or meta["namespace"], meta["uid"])


def build_replica_config_text(ctx: ReplicaContext) -> str:
    return render_config(build_registry_config(ctx))


def build_replica_config_map(ctx: ReplicaContext, config_text: str) -> dict[str, Any]:
    return owned(ctx, build_config_map(ctx, config_text))


def build_replica_http_secret(ctx: ReplicaContext, secret: str) -> dict[str, Any]:
    return owned(ctx, build_http_secret(ctx, secret))


def build_replica_pvc(ctx: ReplicaContext, current_size: str | None = None) -> dict[str, Any] | None:
    return None if ctx.uses_object_storage else owned(ctx, build_pvc(ctx, current_size))


def build_replica_service(ctx: ReplicaContext) -> dict[str, Any]:
    return owned(ctx, build_service(ctx))


def replica_notification_endpoints(ctx: ReplicaContext) -> list[dict[str, Any]]:
    """The home's endpoint, posting under the home registry's name with the replica's location."""
    endpoints = build_notification_endpoints(ctx)
    base = ctx.events_url.rstrip("/")
    return [{**endpoint, "url": f"{base}{ctx.events_path}"} for endpoint in endpoints]


def build_replica_deployment(ctx: ReplicaContext, config_hash: str) -> dict[str, Any]:
    deployment = owned(ctx, build_deployment(ctx, config_hash))
    template = deployment["spec"]["template"]
    # Which registry's global login server may list these pods: a pod's change finds it at once.
    template["metadata"]["labels"] = {
        **template["metadata"]["labels"],
        HOME_REGISTRY_LABEL: ctx.home,
        HOME_NAMESPACE_LABEL: ctx.home_namespace or ctx.owner.namespace,
    }
    pod = template["spec"]
    pod["nodeSelector"] = dict(ctx.node_selector)
    endpoints = yaml.safe_dump(replica_notification_endpoints(ctx), sort_keys=True)
    for container in pod["containers"]:
        for variable in container.get("env", []):
            if variable["name"] == NOTIFICATIONS_ENV:
                variable["value"] = endpoints
    return deployment
