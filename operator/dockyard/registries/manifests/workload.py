"""The Deployment, Service, PersistentVolumeClaim, Ingress and ConfigMap that run a Registry."""

from __future__ import annotations

from typing import Any

from dockyard.core.meta import metadata
from dockyard.core.names import labels, selector_labels
from dockyard.registries.manifests.access import (
    SERVICE_ACCOUNT_TOKEN_DIR,
    service_account_token_volume,
    token_reader_name,
)
from dockyard.registries.manifests.config import (
    CONFIG_DIR,
    CONFIG_PATH,
    DATA_DIR,
    DEBUG_PORT,
    EVENTS_TOKEN_ENV,
    GCS_KEY_DIR,
    REGISTRY_PORT,
    TLS_DIR,
    TOKEN_CERT_DIR,
    TOKEN_PORT,
    RegistryContext,
    build_notification_endpoints,
    render_config,
)
from dockyard.registries.manifests.endpoints import AFFINITY_SECONDS, GLOBAL_ENDPOINT_ANNOTATION
from dockyard.registries.manifests.network import (
    effective_service_type,
    ingress_allow_list,
    public_exposure,
    service_allow_list,
)

COMPONENT = "registry"
CONFIG_HASH_ANNOTATION = "dockyard.dev/config-hash"
AUTH_DIR = "/etc/dockyard/auth"
SIGNER_DIR = "/etc/dockyard/signer"
TOKEN_TLS_DIR = "/etc/dockyard/tls"
SNAPSHOT_DIR = "/var/lib/dockyard-token"

TIER_RESOURCES: dict[str, dict[str, dict[str, str]]] = {
    "Basic": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}},
    "Standard": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}},
    "Premium": {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}},
}
# The token service holds the registry's Tokens and ScopeMaps: 50,000 of each (Premium's limit)
# take ~190 MiB resident (hack/bench_tokens.py), a relist briefly more.
TOKEN_RESOURCES = {"requests": {"cpu": "10m", "memory": "64Mi"}, "limits": {"memory": "512Mi"}}
RESTRICTED = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "runAsNonRoot": True,
    "capabilities": {"drop": ["ALL"]},
}


def build_config_map(ctx: RegistryContext, config_text: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(ctx.owner, ctx.names.config, COMPONENT),
        "data": {"config.yml": config_text},
    }


def build_pvc(ctx: RegistryContext, current_size: str | None = None) -> dict[str, Any]:
    """The data claim. Its size is `storage.persistentVolume.size` when set (a larger one asks for
    expansion); otherwise the tier's included storage at creation, and whatever the claim already
    requests afterwards: a tier change must not resize a volume (an unbound claim cannot be
    resized at all, and many storage classes cannot expand)."""
    pv = ctx.spec.storage.persistent_volume
    size = (pv.size if pv and pv.size else None) or current_size or ctx.tier.included_storage
    spec: dict[str, Any] = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}}
    if pv and pv.storage_class_name:
        spec["storageClassName"] = pv.storage_class_name
    owned = ctx.spec.storage.reclaim_policy == "Delete"
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": metadata(ctx.owner, ctx.names.data, "data", owned=owned),
        "spec": spec,
    }


def _secret_env(name: str, secret: str, key: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def _storage_env_and_volumes(
    ctx: RegistryContext,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    storage = ctx.spec.storage
    env: list[dict[str, Any]] = []
    volumes: list[dict[str, Any]] = []
    mounts: list[dict[str, Any]] = []
    if storage.s3 and storage.s3.credentials_secret_ref:
        ref = storage.s3.credentials_secret_ref.name
        env += [
            _secret_env("REGISTRY_STORAGE_S3_ACCESSKEY", ref, "accesskey"),
            _secret_env("REGISTRY_STORAGE_S3_SECRETKEY", ref, "secretkey"),
        ]
    elif storage.azure:
        env.append(
            _secret_env("REGISTRY_STORAGE_AZURE_ACCOUNTKEY", storage.azure.credentials_secret_ref.name, "accountkey")
        )
    elif storage.gcs and storage.gcs.credentials_secret_ref:
        volumes.append({"name": "gcs", "secret": {"secretName": storage.gcs.credentials_secret_ref.name}})
        mounts.append({"name": "gcs", "mountPath": GCS_KEY_DIR, "readOnly": True})
    elif not ctx.uses_object_storage:
        volumes.append({"name": "data", "persistentVolumeClaim": {"claimName": ctx.names.data}})
        mounts.append({"name": "data", "mountPath": DATA_DIR})
    return env, volumes, mounts


def _registry_container(ctx: RegistryContext) -> dict[str, Any]:
    env, _, storage_mounts = _storage_env_and_volumes(ctx)
    mounts = [
        {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
        {"name": "token-signer", "mountPath": TOKEN_CERT_DIR, "readOnly": True},
        {"name": "tmp", "mountPath": "/tmp"},
        *storage_mounts,
    ]
    if ctx.tls_enabled:
        mounts.append({"name": "tls", "mountPath": TLS_DIR, "readOnly": True})
    health = {"httpGet": {"path": "/debug/health", "port": "debug"}}
    resources = ctx.spec.resources.model_dump(exclude_none=True) if ctx.spec.resources else TIER_RESOURCES[ctx.spec.sku]
    return {
        "name": "registry",
        "image": ctx.registry_image,
        "command": ["registry"],
        "args": ["serve", CONFIG_PATH],
        "ports": [
            {"name": "registry", "containerPort": REGISTRY_PORT, "protocol": "TCP"},
            {"name": "debug", "containerPort": DEBUG_PORT, "protocol": "TCP"},
        ],
        "env": [
            _secret_env("REGISTRY_HTTP_SECRET", ctx.names.http_secret, "secret"),
            *env,
            _secret_env(EVENTS_TOKEN_ENV, ctx.names.events, "token"),
            # distribution 3.x exports traces through OTel's autoexport, to an OTLP collector at
            # localhost:4318 unless told otherwise; there is none, so it would retry forever.
            {"name": "OTEL_TRACES_EXPORTER", "value": "none"},
            # distribution reads a whole config section from a REGISTRY_<SECTION>_<KEY> variable as YAML.
            {
                "name": "REGISTRY_NOTIFICATIONS_ENDPOINTS",
                "value": render_config(build_notification_endpoints(ctx)),
            },
        ],
        "volumeMounts": mounts,
        "readinessProbe": {**health, "periodSeconds": 5, "failureThreshold": 3},
        "livenessProbe": {**health, "periodSeconds": 10, "failureThreshold": 6},
        "resources": resources,
        "securityContext": RESTRICTED,
    }


def _token_container(ctx: RegistryContext) -> dict[str, Any]:
    args = [
        "--policy",
        f"{AUTH_DIR}/policy.json",
        "--signing-key",
        f"{SIGNER_DIR}/tls.key",
        "--signing-cert",
        f"{SIGNER_DIR}/tls.crt",
        "--port",
        str(TOKEN_PORT),
        # Tokens and ScopeMaps are read from the API by the home registry's name (a replica passes
        # its home registry), with a local snapshot for logins while the API is unreachable.
        "--registry",
        ctx.tokens_of[1],
        "--namespace",
        ctx.tokens_of[0],
        "--snapshot",
        f"{SNAPSHOT_DIR}/snapshot.json",
    ]
    mounts = [
        {"name": "auth", "mountPath": AUTH_DIR, "readOnly": True},
        {"name": "token-signer", "mountPath": SIGNER_DIR, "readOnly": True},
        {"name": "token-service-account", "mountPath": SERVICE_ACCOUNT_TOKEN_DIR, "readOnly": True},
        {"name": "token-snapshot", "mountPath": SNAPSHOT_DIR},
    ]
    scheme = "HTTP"
    if ctx.tls_enabled:
        args += [
            "--tls-cert",
            f"{TOKEN_TLS_DIR}/tls.crt",
            "--tls-key",
            f"{TOKEN_TLS_DIR}/tls.key",
            "--tls-min-version",
            ctx.spec.tls.minimum_version,
        ]
        mounts.append({"name": "tls", "mountPath": TOKEN_TLS_DIR, "readOnly": True})
        scheme = "HTTPS"
    probe = {"httpGet": {"path": "/healthz", "port": "token", "scheme": scheme}}
    return {
        "name": "token",
        "image": ctx.token_image,
        "command": ["python", "-m", "dockyard.auth"],
        "args": args,
        "ports": [{"name": "token", "containerPort": TOKEN_PORT, "protocol": "TCP"}],
        "volumeMounts": mounts,
        "readinessProbe": {**probe, "periodSeconds": 5},
        "livenessProbe": {**probe, "periodSeconds": 10, "failureThreshold": 6},
        "resources": TOKEN_RESOURCES,
        "securityContext": RESTRICTED,
    }


def build_deployment(ctx: RegistryContext, config_hash: str) -> dict[str, Any]:
    _, storage_volumes, _ = _storage_env_and_volumes(ctx)
    volumes = [
        {"name": "config", "configMap": {"name": ctx.names.config}},
        {"name": "auth", "secret": {"secretName": ctx.names.auth}},
        {"name": "token-signer", "secret": {"secretName": ctx.names.token_signer}},
        {"name": "tmp", "emptyDir": {}},
        service_account_token_volume(),
        {"name": "token-snapshot", "emptyDir": {"sizeLimit": "256Mi"}},
        *storage_volumes,
    ]
    if ctx.tls_secret_name:
        volumes.append({"name": "tls", "secret": {"secretName": ctx.tls_secret_name}})
    # A ReadWriteOnce volume cannot be attached to an old and a new pod at once.
    strategy = {"type": "RollingUpdate"} if ctx.uses_object_storage else {"type": "Recreate"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(ctx.owner, ctx.names.deployment, COMPONENT),
        "spec": {
            "replicas": ctx.replicas,
            "strategy": strategy,
            "selector": {"matchLabels": selector_labels(ctx.owner.kind, ctx.owner.name, COMPONENT)},
            "template": {
                "metadata": {
                    "labels": labels(ctx.owner.kind, ctx.owner.name, COMPONENT),
                    "annotations": {CONFIG_HASH_ANNOTATION: config_hash},
                },
                "spec": {
                    # Only the token container gets the account's token (a projected volume).
                    "serviceAccountName": token_reader_name(ctx),
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": 1000,
                        "runAsGroup": 1000,
                        "fsGroup": 1000,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [_registry_container(ctx), _token_container(ctx)],
                    "volumes": volumes,
                },
            },
        },
    }


def build_service(ctx: RegistryContext, *, global_routing: bool = False) -> dict[str, Any]:
    """The registry's Service: its login server. With `global_routing` (the registry has a
    Replication) it is the global login server over the home and the routed replicas:
    no selector (the operator writes its EndpointSlices, `manifests/endpoints.py`) and ClientIP
    affinity, so one client's layers and manifest land on one replica."""
    spec: dict[str, Any] = {
        "type": effective_service_type(ctx),
        "selector": selector_labels(ctx.owner.kind, ctx.owner.name, COMPONENT),
        "ports": [
            {"name": "registry", "port": REGISTRY_PORT, "targetPort": "registry", "protocol": "TCP"},
            {"name": "token", "port": TOKEN_PORT, "targetPort": "token", "protocol": "TCP"},
        ],
        **service_allow_list(ctx),
    }
    annotations = None
    if global_routing:
        del spec["selector"]
        # Without a selector the Service's targetPort is unused: the EndpointSlices name the ports.
        spec["sessionAffinity"] = "ClientIP"
        spec["sessionAffinityConfig"] = {"clientIP": {"timeoutSeconds": AFFINITY_SECONDS}}
        # Also what tells the two shapes apart on a read-back: a dropped selector alone would look
        # "contained" in the stored Service, and the switch would never be applied.
        annotations = {GLOBAL_ENDPOINT_ANNOTATION: "replicas"}
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(ctx.owner, ctx.names.service, COMPONENT, annotations=annotations),
        "spec": spec,
    }


def build_ingress(ctx: RegistryContext) -> dict[str, Any] | None:
    ingress = ctx.spec.exposure.ingress
    if ingress is None or not public_exposure(ctx):
        return None

    def path(prefix: str, port: str) -> dict[str, Any]:
        backend = {"service": {"name": ctx.names.service, "port": {"name": port}}}
        return {"path": prefix, "pathType": "Prefix", "backend": backend}

    # The allow-list after the user's annotations: ipRules win over a hand-written list.
    annotations = {**(ingress.annotations or {}), **ingress_allow_list(ctx)}
    if ctx.tls_enabled:
        annotations.setdefault("nginx.ingress.kubernetes.io/backend-protocol", "HTTPS")
    spec: dict[str, Any] = {
        "rules": [{"host": ingress.host, "http": {"paths": [path("/token", "token"), path("/", "registry")]}}],
    }
    if ingress.class_name:
        spec["ingressClassName"] = ingress.class_name
    if ctx.tls_secret_name:
        spec["tls"] = [{"hosts": [ingress.host], "secretName": ctx.tls_secret_name}]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": metadata(ctx.owner, ctx.names.ingress, COMPONENT, annotations=annotations or None),
        "spec": spec,
    }


NODE_TRUST_COMPONENT = "node-trust"
NODE_CONFIG_MOUNT = "/host/certs.d"
# Writes the CA and hosts.toml into containerd's config_path directory of the node (containerd reads
# it at every pull: no restart), checks them every minute (a runtime that regenerates its directory,
# as k3s does from registries.yaml, or a hand edit is repaired) and removes them when the pod is
# stopped (the Registry deleted or nodePull turned off). Files are replaced by rename, never
# half-written.
NODE_TRUST_SCRIPT = """set -eu
dir="$NODE_CONFIG_DIR/$NODE_LOGIN_SERVER"
put() {  # put NAME CONTENT
  if [ "$(cat "$dir/$1" 2>/dev/null)" != "$2" ]; then
    mkdir -p "$dir"
    printf '%s\\n' "$2" > "$dir/.$1.new" && mv -f "$dir/.$1.new" "$dir/$1"
    echo "wrote $dir/$1"
  fi
}
trap 'rm -rf "$dir"; echo "removed $dir"; exit 0' TERM INT
while true; do
  put ca.crt "$(cat /etc/dockyard/ca/ca.crt)"
  put hosts.toml "$(printf '%s' "$HOSTS_TOML")"
  sleep 60 & wait $! || true
done
"""


def node_hosts_toml(ctx: RegistryContext) -> str:
    """containerd's hosts.toml for the node login server: HTTPS, the registry's CA (beside it)."""
    server = f"https://{ctx.node_login_server}"
    return f'server = "{server}"\n\n[host."{server}"]\n  capabilities = ["pull", "resolve"]\n  ca = "ca.crt"\n'


def build_node_trust_daemonset(ctx: RegistryContext, ca_hash: str) -> dict[str, Any] | None:
    """The DaemonSet that lets every node's containerd pull from the registry (exposure.nodePull):
    root (to write the node's root-owned config directory) but with no capability, a read-only root
    filesystem and only that directory mounted. `ca_hash` rolls it when the CA changes."""
    if not ctx.node_pull or ctx.node_login_server is None:
        return None
    selector = selector_labels(ctx.owner.kind, ctx.owner.name, NODE_TRUST_COMPONENT)
    container = {
        "name": "node-trust",
        "image": ctx.token_image,
        "command": ["sh", "-c", NODE_TRUST_SCRIPT],
        "env": [
            {"name": "NODE_CONFIG_DIR", "value": NODE_CONFIG_MOUNT},
            {"name": "NODE_LOGIN_SERVER", "value": ctx.node_login_server},
            {"name": "HOSTS_TOML", "value": node_hosts_toml(ctx)},
        ],
        "volumeMounts": [
            {"name": "ca", "mountPath": "/etc/dockyard/ca", "readOnly": True},
            {"name": "node-config", "mountPath": NODE_CONFIG_MOUNT},
        ],
        "resources": {"requests": {"cpu": "1m", "memory": "8Mi"}, "limits": {"memory": "32Mi"}},
        "securityContext": {**RESTRICTED, "runAsNonRoot": False, "runAsUser": 0},
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": metadata(ctx.owner, ctx.names.node_trust, NODE_TRUST_COMPONENT),
        "spec": {
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {
                    "labels": labels(ctx.owner.kind, ctx.owner.name, NODE_TRUST_COMPONENT),
                    "annotations": {CONFIG_HASH_ANNOTATION: ca_hash},
                },
                "spec": {
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "terminationGracePeriodSeconds": 10,
                    "tolerations": [{"operator": "Exists"}],
                    "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
                    "containers": [container],
                    "volumes": [
                        {"name": "ca", "configMap": {"name": ctx.names.ca_config_map}},
                        {
                            "name": "node-config",
                            "hostPath": {"path": ctx.node_registry_config_dir, "type": "DirectoryOrCreate"},
                        },
                    ],
                },
            },
        },
    }
