"""The distribution `config.yml` of a Registry, and the names and addresses it is built around.

The rendered config holds no secret: `http.secret` and object-store keys reach the container as
environment variables from Secrets (`REGISTRY_HTTP_SECRET`, `REGISTRY_STORAGE_S3_ACCESSKEY`, …), so
the config can live in a ConfigMap and be shown by `kubectl get -o yaml` safely.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import yaml

from dockyard.core.meta import Owner
from dockyard.core.names import RegistryNames
from dockyard.core.tiers import TIERS, Tier
from dockyard.models.registry import RegistrySpec

CONFIG_DIR = "/etc/distribution"
CONFIG_PATH = f"{CONFIG_DIR}/config.yml"
DATA_DIR = "/var/lib/registry"
TLS_DIR = "/etc/distribution/tls"
TOKEN_CERT_DIR = "/etc/distribution/token"
GCS_KEY_DIR = "/etc/distribution/gcs"
REGISTRY_PORT = 5000
TOKEN_PORT = 5001
DEBUG_PORT = 5002
ISSUER = "dockyard"


def tls_secret_name(spec: RegistrySpec, names: RegistryNames) -> str | None:
    """The Secret that serves HTTPS: the user's, or the one cert-manager or the operator fills."""
    if spec.tls.mode == "Disabled":
        return None
    if spec.tls.mode == "Secret":
        return spec.tls.secret_name
    return names.tls


@dataclass(frozen=True)
class RegistryContext:
    """Everything the builders need about one Registry, resolved by the caller."""

    owner: Owner
    spec: RegistrySpec
    registry_image: str
    token_image: str
    tls_secret_name: str | None
    """The kubernetes.io/tls Secret serving HTTPS (user's, cert-manager's or ours); None = plain HTTP."""
    events_url: str
    """Base URL of the operator's event intake, as registry pods reach it."""
    cluster_ip: str | None = None
    """The Service's ClusterIP once assigned; nodes pull there with exposure.nodePull."""
    node_registry_config_dir: str = "/etc/containerd/certs.d"
    """containerd's registry `config_path` on the nodes (exposure.nodePull writes there)."""

    @property
    def names(self) -> RegistryNames:
        return RegistryNames(self.owner.name)

    @property
    def tier(self) -> Tier:
        return TIERS[self.spec.sku]

    @property
    def tls_enabled(self) -> bool:
        return self.tls_secret_name is not None

    @property
    def service_host(self) -> str:
        return f"{self.names.service}.{self.owner.namespace}.svc"

    @property
    def service_hosts(self) -> list[str]:
        base = self.names.service
        ns = self.owner.namespace
        return [f"{base}.{ns}.svc", base, f"{base}.{ns}", f"{base}.{ns}.svc.cluster.local"]

    @property
    def external_host(self) -> str | None:
        """The Ingress host; none when publicNetworkAccess is Disabled (the Ingress is removed)."""
        ingress = self.spec.exposure.ingress
        return ingress.host if ingress and self.spec.public_network_access == "Enabled" else None

    @property
    def node_pull(self) -> bool:
        """Nodes pull at the ClusterIP (exposure.nodePull, once the Service has its address)."""
        return self.spec.exposure.node_pull and self.cluster_ip is not None

    @property
    def node_login_server(self) -> str | None:
        return f"{self.cluster_ip}:{REGISTRY_PORT}" if self.node_pull else None

    @property
    def tls_hosts(self) -> list[str]:
        node = [self.cluster_ip] if self.node_pull and self.cluster_ip else []
        return self.service_hosts + node + ([self.external_host] if self.external_host else [])

    @property
    def login_server(self) -> str:
        return f"{self.service_host}:{REGISTRY_PORT}"

    @property
    def token_service(self) -> str:
        """The `service` of the token protocol: what clients name and tokens are issued for."""
        return self.external_host or self.login_server

    @property
    def tokens_of(self) -> tuple[str, str]:
        """(namespace, registry) whose Tokens and ScopeMaps the token service reads: its own."""
        return self.owner.namespace, self.owner.name

    @property
    def token_realm(self) -> str:
        if self.external_host:
            return f"https://{self.external_host}/token"
        scheme = "https" if self.tls_enabled else "http"
        # Kubelets (the node's runtime) fetch tokens too and cannot resolve `*.svc`: with nodePull the
        # realm names the ClusterIP, which pods and nodes both reach.
        host = self.cluster_ip if self.node_pull else self.service_host
        return f"{scheme}://{host}:{TOKEN_PORT}/token"

    @property
    def replicas(self) -> int:
        if self.spec.replicas is not None:
            return self.spec.replicas
        return self.tier.default_replicas if self.uses_object_storage else 1

    @property
    def uses_object_storage(self) -> bool:
        storage = self.spec.storage
        return bool(storage.s3 or storage.azure or storage.gcs)


def _storage(ctx: RegistryContext) -> dict[str, Any]:
    storage = ctx.spec.storage
    section: dict[str, Any]
    if storage.s3:
        s3 = storage.s3
        driver: dict[str, Any] = {"bucket": s3.bucket, "region": s3.region, "forcepathstyle": s3.force_path_style}
        if s3.region_endpoint:
            driver["regionendpoint"] = s3.region_endpoint
        if s3.root_directory:
            driver["rootdirectory"] = s3.root_directory
        section = {"s3": driver}
    elif storage.azure:
        section = {"azure": {"accountname": storage.azure.account_name, "container": storage.azure.container}}
    elif storage.gcs:
        gcs: dict[str, Any] = {"bucket": storage.gcs.bucket}
        if storage.gcs.root_directory:
            gcs["rootdirectory"] = storage.gcs.root_directory
        if storage.gcs.credentials_secret_ref:
            gcs["keyfile"] = f"{GCS_KEY_DIR}/keyfile"
        section = {"gcs": gcs}
    else:
        section = {"filesystem": {"rootdirectory": DATA_DIR}}
    section["delete"] = {"enabled": storage.delete_enabled}
    section["maintenance"] = {"uploadpurging": {"enabled": True, "age": "168h", "interval": "24h", "dryrun": False}}
    if ctx.uses_object_storage:
        section["redirect"] = {"disable": True}
    return section


# Manifest validation stays on (distribution turns it on unless `disabled: true`) but allows the
# `urls` of non-distributable (foreign) layers, as in Windows base images: with no allow or deny list
# distribution 2.8 and 3.0 allow no URL at all and refuse such a manifest with a 500. Only http(s)
# URLs without a fragment pass either way; the registry never fetches them.
FOREIGN_LAYER_URLS_ALLOWED = ("^https?://",)


def build_registry_config(ctx: RegistryContext) -> dict[str, Any]:
    http: dict[str, Any] = {
        "addr": f":{REGISTRY_PORT}",
        "headers": {"X-Content-Type-Options": ["nosniff"]},
        "debug": {"addr": f":{DEBUG_PORT}", "prometheus": {"enabled": True, "path": "/metrics"}},
    }
    if ctx.external_host:
        http["host"] = f"https://{ctx.external_host}"
    if ctx.tls_enabled:
        http["tls"] = {
            "certificate": f"{TLS_DIR}/tls.crt",
            "key": f"{TLS_DIR}/tls.key",
            "minimumtls": ctx.spec.tls.minimum_version,
        }
    return {
        "version": 0.1,
        "log": {"level": "info", "formatter": "json", "fields": {"service": "registry", "registry": ctx.owner.name}},
        "storage": _storage(ctx),
        "http": http,
        "auth": {
            "token": {
                "realm": ctx.token_realm,
                "service": ctx.token_service,
                "issuer": ISSUER,
                "rootcertbundle": f"{TOKEN_CERT_DIR}/tls.crt",
            }
        },
        "health": {"storagedriver": {"enabled": True, "interval": "10s", "threshold": 3}},
        "validation": {"manifests": {"urls": {"allow": list(FOREIGN_LAYER_URLS_ALLOWED)}}},
    }


EVENTS_TOKEN_ENV = "DOCKYARD_EVENTS_TOKEN"
BLOB_MEDIA_TYPE = "application/octet-stream"


def build_notification_endpoints(ctx: RegistryContext) -> list[dict[str, Any]]:
    """distribution's `notifications.endpoints`: every event to the operator's intake, which keeps
    them durably and fans them out to the Webhooks. The token is left as `$(DOCKYARD_EVENTS_TOKEN)`
    for Kubernetes to expand from the events Secret, so no secret is in the pod spec or ConfigMap.
    Blob events (`application/octet-stream`) are dropped at the source; 3.x also drops pulls."""
    return [
        {
            "name": "dockyard",
            "url": f"{ctx.events_url.rstrip('/')}/events/{ctx.owner.namespace}/{ctx.owner.name}",
            "headers": {"Authorization": [f"Bearer $({EVENTS_TOKEN_ENV})"]},
            "timeout": "5s",
            "threshold": 3,
            "backoff": "2s",
            "ignoredmediatypes": [BLOB_MEDIA_TYPE],
            "ignore": {"actions": ["pull", "mount"]},
        }
    ]


_DUMPER: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
"""libyaml's emitter when PyYAML has it: the same YAML, several times faster (rendered on every
reconcile)."""


def render_config(config: dict[str, Any] | list[Any]) -> str:
    return str(yaml.dump(config, Dumper=_DUMPER, sort_keys=True))


def content_hash(*parts: Any) -> str:
    """A short stable hash of JSON-able inputs, for pod-template annotations."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
