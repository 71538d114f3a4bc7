"""Reconciling one Registry: its children made to match the spec, its status made to match them.

Idempotent: generated values (http.secret, passwords, keys) are created once and read back
afterwards, builders are pure, and `Kube.ensure` skips unchanged objects, so a reconcile over
unchanged inputs issues no write, and, with the watch-fed cache, no read either. The data PVC is
owned by the Registry only with `storage.reclaimPolicy: Delete`; every other child is owned and
garbage-collected with it.
"""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Final, ParamSpec, TypeVar

from dockyard.auth.policy import generate_password
from dockyard.core.cache import (
    REPLICATIONS_BY_REGISTRY_INDEX,
    TOKENS_BY_REGISTRY_INDEX,
    WEBHOOKS_BY_REGISTRY_INDEX,
)
from dockyard.core.kube import Kube, contains
from dockyard.core.kube import Outcome as Ensured
from dockyard.core.meta import Owner
from dockyard.core.names import RegistryNames, replica_name
from dockyard.core.pki import issue_signing_key
from dockyard.models import API_VERSION
from dockyard.models.base import referenced_registry
from dockyard.models.registry import RegistrySpec
from dockyard.registries import admin
from dockyard.registries.global_endpoint import ensure_global_endpoint, find_replica_routes, replications_of
from dockyard.registries.manifests.access import (
    build_token_reader_binding,
    build_token_reader_role,
    build_token_service_account,
)
from dockyard.registries.manifests.config import (
    RegistryContext,
    build_registry_config,
    content_hash,
    render_config,
    tls_secret_name,
)
from dockyard.registries.manifests.network import (
    NetworkVerdict,
    build_network_policy,
    network_verdict,
    rules_in_force,
)
from dockyard.registries.manifests.secrets import (
    build_admin_secret,
    build_auth_policy,
    build_auth_secret,
    build_events_secret,
    build_http_secret,
    build_pull_secret,
    build_tls_secret,
)
from dockyard.registries.manifests.workload import (
    build_config_map,
    build_deployment,
    build_ingress,
    build_node_trust_daemonset,
    build_pvc,
    build_service,
)
from dockyard.registries.status import observe
from dockyard.registries.tier_guard import check_tier_change
from dockyard.registries.tls import TlsPlan, plan_tls, retire_certificate

NODE_INTERNAL_IP: Final = "InternalIP"
"""A Node's address type (Kubernetes' own, not a condition)."""
_REQUESTS: Final = ThreadPoolExecutor(max_workers=32, thread_name_prefix="dockyard-reconcile")
"""Where reconciles' independent steps run at once (a step never waits for another step); as
many as the handler threads, so that a burst of creations keeps every handler's steps moving."""

T = TypeVar("T")
P = ParamSpec("P")


def start(steps: list[Future[Any]], step: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> Future[T]:
    """Start a step that depends on no other step of `steps`."""
    future = _REQUESTS.submit(step, *args, **kwargs)
    steps.append(future)
    return future


def finish(steps: list[Future[Any]]) -> None:
    """Wait for every step; then raise the first failure, in the order they were started (no
    step is left running behind an error)."""
    wait(steps)
    for step in steps:
        step.result()


def build_signer_secret(ctx: RegistryContext) -> Callable[[], dict[str, Any]]:
    names = ctx.names
    return lambda: build_tls_secret(ctx, names.token_signer, issue_signing_key(f"{ctx.owner.name} token signer"))


@dataclass
class Outcome:
    """What a reconcile found, for status and events."""

    status: dict[str, Any] = field(default_factory=dict)
    ready: bool = False
    changed: list[str] = field(default_factory=list)
    network: NetworkVerdict | None = None


def owner_of(body: Mapping[str, Any]) -> Owner:
    meta = body["metadata"]
    return Owner(API_VERSION, "Registry", meta["name"], meta["namespace"], meta["uid"])


def count_referrers(kube: Kube, kind: str, namespace: str, registry: str) -> int:
    """Webhooks, Replications or Tokens that reference the registry: from the cache, else one LIST."""
    indices = {
        "Webhook": WEBHOOKS_BY_REGISTRY_INDEX,
        "Replication": REPLICATIONS_BY_REGISTRY_INDEX,
        "Token": TOKENS_BY_REGISTRY_INDEX,
    }
    cached = kube.cache.count(indices[kind], (namespace, registry))
    if isinstance(cached, int):  # else unknown (no cache bound)
        return cached
    return sum(1 for item in kube.list(API_VERSION, kind, namespace) if referenced_registry(item) == registry)


class RegistryReconciler:
    def __init__(
        self,
        kube: Kube,
        registry_image: str,
        token_image: str,
        events_url: str,
        node_registry_config_dir: str = "/etc/containerd/certs.d",
    ) -> None:
        self.kube = kube
        self.registry_image = registry_image
        self.token_image = token_image
        self.events_url = events_url
        self.node_registry_config_dir = node_registry_config_dir

    def context(self, body: Mapping[str, Any], spec: RegistrySpec) -> RegistryContext:
        owner = owner_of(body)
        ctx = RegistryContext(
            owner=owner,
            spec=spec,
            registry_image=spec.image or self.registry_image,
            token_image=self.token_image,
            tls_secret_name=tls_secret_name(spec, RegistryNames(owner.name)),
            events_url=self.events_url,
            node_registry_config_dir=self.node_registry_config_dir,
        )
        return dataclasses.replace(ctx, cluster_ip=self._cluster_ip(ctx)) if spec.exposure.node_pull else ctx

    def _cluster_ip(self, ctx: RegistryContext) -> str | None:
        """The Service's ClusterIP (cached, else read once: a Service just created is not cached yet)."""
        ns, name = ctx.owner.namespace, ctx.names.service
        service = self.kube.read_child("v1", "Service", ns, name) or {}
        address = (service.get("spec") or {}).get("clusterIP")
        if not address:
            address = ((self.kube.get("v1", "Service", ns, name) or {}).get("spec") or {}).get("clusterIP")
        return str(address) if address and address != "None" else None

    def reconcile(self, body: Mapping[str, Any], spec: RegistrySpec, *, left_cert_manager: bool = False) -> Outcome:
        """The children in steps, each step's writes at once.

        A new registry's Deployment (never reconciled: no status) is among the first writes (the
        reaction time users see): its config hash is made of values generated without a request
        (the CA and the events token, created in the same step), and its pods need only the
        ServiceAccount and claim written with it to be created and scheduled. The Secrets and ConfigMaps they mount
        follow at once; a pod reaches a node's volume setup well after them, and a volume not
        there yet is retried. An existing Deployment is written last instead: the pods it rolls
        must mount the new content, never the old.

        `left_cert_manager`: the spec just left `tls.mode: CertManager` (kopf's previous spec
        says so); the Certificates made for it go first (`retire_certificates`)."""
        ctx = self.context(body, spec)
        owner, names, kube = ctx.owner, ctx.names, self.kube
        outcome = Outcome()
        check_tier_change(spec, count_referrers(kube, "Replication", owner.namespace, owner.name))
        if left_cert_manager and spec.tls.mode != "CertManager":
            outcome.changed += self.retire_certificates(ctx)
        routed = find_replica_routes(kube, ctx)
        service_result: Ensured | None = None
        if spec.exposure.node_pull:
            # The Service comes first: its ClusterIP goes into the certificate and the realm.
            service_result = kube.ensure(build_service(ctx, global_routing=bool(routed)))
            self._note(outcome, "service", service_result)
            if ctx.cluster_ip is None:
                ctx = dataclasses.replace(ctx, cluster_ip=self._cluster_ip(ctx))

        # 1. No request: the CA (the serving certificate is issued from it) and the events token
        #    generated here if they do not exist yet; with the config, they make the config hash.
        tls = plan_tls(kube, ctx, defer_ca=True)
        stored_events = kube.read_child("v1", "Secret", owner.namespace, names.events)
        new_events = None if stored_events is not None else build_events_secret(ctx, secrets.token_urlsafe(32))
        events_secret = stored_events or new_events
        config_text = render_config(build_registry_config(ctx))
        config_hash = self._config_hash(config_text, tls, events_secret)
        deployment = build_deployment(ctx, config_hash)
        # Early only for a registry never reconciled (no status yet): the cache cannot be behind
        # writes that were never made. A registry reconciled before whose cache lags (a quick
        # second reconcile) may find its generated Secrets created already; its Deployment, early,
        # would carry the hash of values about to lose, and roll its pods twice.
        never_reconciled = not (body.get("status") or {}).get("observedGeneration")
        rolls_pods = (
            not never_reconciled
            or kube.read_child("apps/v1", "Deployment", owner.namespace, names.deployment) is not None
        )

        # 2. A new Deployment, with only what its pods need to be created and scheduled (the
        #    ServiceAccount they run as, their claim), and the generated Secrets created.
        #    The Deployment is sent first: the API server takes longest over it.
        first: list[tuple[str, dict[str, Any]]] = [] if rolls_pods else [("deployment", deployment)]
        first.append(("token service account", build_token_service_account(ctx)))
        if not ctx.uses_object_storage:
            claim = kube.read_child("v1", "PersistentVolumeClaim", owner.namespace, names.data)
            current_size = (((claim or {}).get("spec") or {}).get("resources") or {}).get("requests", {}).get("storage")
            first.append(("data", build_pvc(ctx, current_size)))
        steps: list[Future[Any]] = []
        ensured = [start(steps, kube.ensure, manifest) for _, manifest in first]
        new_ca = tls.new_ca
        ca = None if new_ca is None else start(steps, self._secret_once, ctx, names.ca_secret, lambda: new_ca)
        events = None if new_events is None else start(steps, self._secret_once, ctx, names.events, lambda: new_events)
        finish(steps)
        self._note_all(outcome, first, ensured)
        if ca is not None and new_ca is not None and ca.result().get("data") != new_ca["data"]:
            tls = plan_tls(kube, ctx)  # another writer's CA was there first: issue from it
        if events is not None:
            events_secret = events.result()
        stored_hash = self._config_hash(config_text, tls, events_secret)
        if stored_hash != config_hash:
            # Written with values that lost to another writer's: written again, last.
            deployment = build_deployment(ctx, stored_hash)
            rolls_pods = True

        # 3. Everything else that depends on no other step; the admin passwords for step 4.
        admin_changed: list[str] = []
        rest: list[tuple[str, dict[str, Any]]] = [
            *([] if spec.exposure.node_pull else [("service", build_service(ctx, global_routing=bool(routed)))]),
            *tls.children,
            ("config", build_config_map(ctx, config_text)),
            ("token reader role", build_token_reader_role(ctx)),
            ("token reader binding", build_token_reader_binding(ctx)),
        ]
        steps = []
        start(steps, self._secret_once, ctx, names.token_signer, build_signer_secret(ctx))
        start(
            steps, self._secret_once, ctx, names.http_secret, lambda: build_http_secret(ctx, secrets.token_urlsafe(32))
        )
        admin = start(steps, self._ensure_admin, ctx, body, admin_changed)
        ensured = [start(steps, kube.ensure, manifest) for _, manifest in rest]
        finish(steps)
        self._note_all(outcome, rest, ensured)
        if not spec.exposure.node_pull:
            service_result = ensured[0].result()
        outcome.changed += admin_changed
        passwords = admin.result()

        # 4. What is made of the admin passwords.
        last = [("auth", build_auth_secret(ctx, build_auth_policy(ctx, passwords)))]
        if passwords is not None:
            last.append(("pull secret", build_pull_secret(ctx, passwords[0])))
        steps = []
        ensured = [start(steps, kube.ensure, manifest) for _, manifest in last]
        finish(steps)
        self._note_all(outcome, last, ensured)
        if rolls_pods:
            self._note(outcome, "deployment", kube.ensure(deployment))
        assert service_result is not None
        # The Service is ensured above already: not applied twice before the watch shows it.
        outcome.changed += ensure_global_endpoint(kube, ctx, routed, service_result)
        self._ensure_node_trust(ctx, outcome)
        self._ensure_network_policy(ctx, outcome)
        ingress = build_ingress(ctx)
        if ingress is not None:
            self._note(outcome, "ingress", kube.ensure(ingress))
        elif kube.read_child("networking.k8s.io/v1", "Ingress", owner.namespace, names.ingress) is not None:
            kube.delete("networking.k8s.io/v1", "Ingress", owner.namespace, names.ingress)
            outcome.changed.append("ingress")
        outcome.status, outcome.ready = self.observe(ctx, passwords is not None)
        return outcome

    def retire_certificates(self, ctx: RegistryContext) -> list[str]:
        """The registry left `tls.mode: CertManager`: the Certificates made for it and for its
        replicas are deleted, with the Secrets cert-manager filled. Left, cert-manager would go on
        renewing into the Secret the new mode serves from (in SelfSigned the operator's own
        `<name>-tls`): the two would overwrite each other, and every overwrite roll the pods."""
        ns, name, kube = ctx.owner.namespace, ctx.owner.name, self.kube
        served = ctx.spec.tls.secret_name if ctx.spec.tls.mode == "Secret" else None
        removed = retire_certificate(kube, ns, name, ctx.owner.uid, keep_secret=served)
        for replication in replications_of(kube, ns, name):
            spec = replication.get("spec") or {}
            location = spec.get("location")
            if not location:
                continue
            # In another namespace nothing is owned by the Replication: by name, as on its removal.
            where = spec.get("targetNamespace") or ns
            owner = (replication.get("metadata") or {}).get("uid") if where == ns else None
            removed += retire_certificate(kube, where, replica_name(name, str(location)), owner)
        return removed

    def refresh_global_endpoint(self, body: Mapping[str, Any], spec: RegistrySpec) -> list[str]:
        """Only the global login server's Service shape and EndpointSlices (a pod or a Replication
        changed); what changed."""
        return ensure_global_endpoint(self.kube, self.context(body, spec))

    def _ensure_node_trust(self, ctx: RegistryContext, outcome: Outcome) -> None:
        ns, name = ctx.owner.namespace, ctx.names.node_trust
        ca = self.kube.read_child("v1", "ConfigMap", ns, ctx.names.ca_config_map) or {}
        daemonset = build_node_trust_daemonset(ctx, content_hash((ca.get("data") or {}).get("ca.crt")))
        if daemonset is not None:
            self._note(outcome, "node trust", self.kube.ensure(daemonset))
        elif self.kube.read_child("apps/v1", "DaemonSet", ns, name) is not None:
            self.kube.delete("apps/v1", "DaemonSet", ns, name)
            outcome.changed.append("node trust")

    def _ensure_network_policy(self, ctx: RegistryContext, outcome: Outcome) -> None:
        rules = ctx.spec.network_rule_set
        wants_nodes = rules_in_force(ctx) and (rules.allow_nodes if rules else True)
        nodes = self.node_addresses() if wants_nodes else []
        policy = build_network_policy(ctx, nodes)
        ns, name = ctx.owner.namespace, ctx.names.network_policy
        if policy is not None:
            self._note(outcome, "network policy", self.kube.ensure(policy))
        elif self.kube.read_child("networking.k8s.io/v1", "NetworkPolicy", ns, name) is not None:
            self.kube.delete("networking.k8s.io/v1", "NetworkPolicy", ns, name)
            outcome.changed.append("network policy")
        outcome.network = network_verdict(ctx, nodes)

    def node_addresses(self) -> list[str]:
        """Every node's InternalIP addresses (IPv4 and IPv6)."""
        return sorted(
            {
                address["address"]
                for node in self.kube.list("v1", "Node", None)
                for address in (node.get("status") or {}).get("addresses") or []
                if address.get("type") == NODE_INTERNAL_IP and address.get("address")
            }
        )

    def observe(
        self, ctx: RegistryContext, admin_enabled: bool, deployment: Mapping[str, Any] | None = None
    ) -> tuple[dict[str, Any], bool]:
        """Status fields and readiness from the Deployment (as given, else cached) and referrer counts."""
        ns, name = ctx.owner.namespace, ctx.owner.name
        if deployment is None:
            deployment = self.kube.read_child("apps/v1", "Deployment", ns, ctx.names.deployment)
        node_trust = (
            self.kube.read_child("apps/v1", "DaemonSet", ns, ctx.names.node_trust) if ctx.node_login_server else None
        )
        return observe(
            ctx,
            deployment,
            admin_enabled,
            count_referrers(self.kube, "Webhook", ns, name),
            count_referrers(self.kube, "Replication", ns, name),
            node_trust,
            count_referrers(self.kube, "Token", ns, name),
        )

    @staticmethod
    def _config_hash(config_text: str, tls: TlsPlan, events: Mapping[str, Any] | None) -> str:
        # The events token reaches the pod as an env var: a new one (Secret deleted) must roll the pods.
        return content_hash(config_text, tls.fingerprint, ((events or {}).get("data") or {}).get("token"))

    def _secret_once(self, ctx: RegistryContext, name: str, build: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """A Secret of generated values: generated and created once, read back afterwards (what
        is stored: another writer's, a concurrent reconcile's or one a lagging cache hid, if it
        was there first)."""
        return self.kube.create_if_missing("v1", "Secret", ctx.owner.namespace, name, build)

    @staticmethod
    def _note(outcome: Outcome, what: str, result: str) -> None:
        if result != "unchanged":
            outcome.changed.append(what)

    @classmethod
    def _note_all(
        cls, outcome: Outcome, children: list[tuple[str, dict[str, Any]]], ensured: list[Future[Ensured]]
    ) -> None:
        for (what, _), result in zip(children, ensured, strict=True):
            cls._note(outcome, what, result.result())

    def _ensure_admin(
        self, ctx: RegistryContext, body: Mapping[str, Any], changed: list[str]
    ) -> tuple[str, str] | None:
        ns, names, kube = ctx.owner.namespace, ctx.names, self.kube
        if not ctx.spec.admin_user.enabled:
            for name in (names.admin, names.pull):
                if kube.read_child("v1", "Secret", ns, name) is not None:
                    kube.delete("v1", "Secret", ns, name)
                    changed.append(name)
            return None
        stored = self._secret_once(
            ctx, names.admin, lambda: build_admin_secret(ctx, generate_password(), generate_password())
        )
        if admin.pending_request(body, stored) is not None:
            # The cache may not show our own last regeneration yet: never regenerate twice.
            stored = kube.get("v1", "Secret", ns, names.admin) or stored
        passwords = admin.plan_passwords(body, stored, generate_password)
        desired = build_admin_secret(ctx, *passwords.pair)
        if passwords.handled:
            desired["metadata"]["annotations"] = {admin.HANDLED_REGENERATION_ANNOTATION: passwords.handled}
        if passwords.regenerated:
            changed.append(f"admin {passwords.regenerated} regenerated")
        if not contains(stored, desired):  # just created as desired: no second write
            kube.ensure(desired)
        return passwords.pair
