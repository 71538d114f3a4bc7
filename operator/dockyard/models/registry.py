"""The Registry kind: one CNCF distribution registry with its storage, access and TLS."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, model_validator

from dockyard.models.base import (
    CONDITIONS_FIELD,
    OBSERVED_GENERATION_FIELD,
    ApiModel,
    Condition,
    KindInfo,
    LocalObjectReference,
    Name,
    NameFormat,
    PrinterColumn,
    ResourceRequirements,
    age_column,
    cel,
    immutable,
    ready_column,
    section,
)
from dockyard.models.formats import (
    ANNOTATION_KEY_RULE,
    AWS_REGION,
    DNS_SUBDOMAIN,
    DNS_SUBDOMAIN_MESSAGE,
    AzureAccount,
    AzureContainer,
    DnsLabel,
    DnsSubdomain,
    GcsBucket,
    HostName,
    HttpUrl,
    ImageReference,
    IpOrCidr,
    Region,
    Rule,
    S3Bucket,
    StorageSize,
    annotations_problem,
    checked,
    pattern_check,
)

StorageClassName = Annotated[
    str,
    Field(max_length=253),
    Rule(f"self == '' || self.matches(r'{DNS_SUBDOMAIN}')", f"storageClassName {DNS_SUBDOMAIN_MESSAGE}, or empty"),
    checked(lambda v: None if v == "" else pattern_check(DNS_SUBDOMAIN, DNS_SUBDOMAIN_MESSAGE)(v)),
]
IngressAnnotations = Annotated[dict[str, str], ANNOTATION_KEY_RULE, checked(annotations_problem)]

Sku = Literal["Basic", "Standard", "Premium"]


class PersistentVolumeStorage(ApiModel):
    """A PersistentVolumeClaim created for the registry."""

    size: StorageSize | None = Field(
        None,
        description="Requested size, e.g. 100Gi. Defaults to the tier's included storage "
        "(Basic 10Gi, Standard 100Gi, Premium 500Gi). Can grow (if the StorageClass allows volume "
        "expansion), never shrink.",
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "quantity(self).compareTo(quantity(oldSelf)) >= 0",
                    "persistentVolume.size cannot shrink: a PersistentVolumeClaim only grows",
                    reason="FieldValueForbidden",
                )
            ]
        },
    )
    storage_class_name: StorageClassName | None = Field(
        None,
        description="StorageClass of the claim; empty uses the cluster's default class. Immutable.",
        json_schema_extra={"x-kubernetes-validations": [immutable("storageClassName")]},
    )


S3_REGION_MESSAGE = (
    "s3.region must be an AWS region such as us-east-1 or eu-central-1 (the registry's S3 driver refuses any "
    "other without s3.regionEndpoint); for an S3-compatible service set regionEndpoint"
)


class S3Storage(ApiModel):
    """An S3 or S3-compatible bucket (distribution's `s3` driver)."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    f"has(self.regionEndpoint) || self.region.matches(r'{AWS_REGION}')",
                    S3_REGION_MESSAGE,
                    field_path=".region",
                )
            ]
        }
    )

    bucket: S3Bucket = Field(description="Bucket name.")
    region: Region = Field(description="Region of the bucket, e.g. us-east-1.")
    region_endpoint: HttpUrl | None = Field(
        None,
        description="Endpoint of an S3-compatible service (MinIO, Ceph RGW…), e.g. https://minio.storage:9000.",
    )
    force_path_style: bool = Field(False, description="Address the bucket by path instead of by virtual host.")
    root_directory: str | None = Field(None, description="Prefix inside the bucket.", max_length=1024)
    credentials_secret_ref: LocalObjectReference | None = Field(
        None,
        description="Secret with keys `accesskey` and `secretkey`; without it the pod's own identity is used.",
    )

    @model_validator(mode="after")
    def _aws_region_without_endpoint(self) -> S3Storage:
        if self.region_endpoint is None and not re.fullmatch(AWS_REGION, self.region):
            raise ValueError(S3_REGION_MESSAGE)
        return self


class AzureStorage(ApiModel):
    """An Azure Blob Storage container (distribution's `azure` driver)."""

    account_name: AzureAccount = Field(description="Storage account name.")
    container: AzureContainer = Field(description="Blob container name.")
    credentials_secret_ref: LocalObjectReference = Field(description="Secret with the key `accountkey`.")


class GcsStorage(ApiModel):
    """A Google Cloud Storage bucket (distribution's `gcs` driver)."""

    bucket: GcsBucket = Field(description="Bucket name.")
    root_directory: str | None = Field(None, description="Prefix inside the bucket.", max_length=1024)
    credentials_secret_ref: LocalObjectReference | None = Field(
        None, description="Secret with the service-account JSON under the key `keyfile`."
    )


class StorageSpec(ApiModel):
    """Where image data lives. Set at most one backend; none means a PersistentVolumeClaim."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "[has(self.persistentVolume), has(self.s3), has(self.azure), has(self.gcs)]"
                    ".filter(x, x).size() <= 1",
                    "set only one storage backend: persistentVolume, s3, azure or gcs",
                ),
                cel(
                    "has(self.s3) == has(oldSelf.s3) && has(self.azure) == has(oldSelf.azure)"
                    " && has(self.gcs) == has(oldSelf.gcs)",
                    "the storage backend cannot be changed in place (the data would not follow); "
                    "create a new Registry and import the images",
                ),
                cel(
                    "(has(self.persistentVolume) && has(self.persistentVolume.storageClassName)"
                    " ? self.persistentVolume.storageClassName : '')"
                    " == (has(oldSelf.persistentVolume) && has(oldSelf.persistentVolume.storageClassName)"
                    " ? oldSelf.persistentVolume.storageClassName : '')",
                    "persistentVolume.storageClassName cannot be set, changed or removed after creation (a "
                    "claim's class is fixed); create a new Registry",
                    field_path=".persistentVolume",
                    reason="FieldValueForbidden",
                ),
            ]
        }
    )

    persistent_volume: PersistentVolumeStorage | None = Field(
        None, description="A PersistentVolumeClaim (the default backend). Allows one replica only."
    )
    s3: S3Storage | None = Field(None, description="An S3-compatible bucket.")
    azure: AzureStorage | None = Field(None, description="An Azure Blob Storage container.")
    gcs: GcsStorage | None = Field(None, description="A Google Cloud Storage bucket.")
    reclaim_policy: Literal["Retain", "Delete"] = Field(
        "Retain",
        description="What happens to the PersistentVolumeClaim when the Registry is deleted: Retain keeps "
        "it (and the images) for a later Registry of the same name; Delete removes it. Object-store "
        "buckets are never deleted.",
    )
    delete_enabled: bool = Field(
        True,
        description="Allow deleting manifests and blobs through the registry API (needed for delete "
        "webhooks, purge and retention).",
    )


class AdminUserSpec(ApiModel):
    """The ACR-style admin account: username = registry name, two passwords, full access."""

    enabled: bool = Field(
        False,
        description="Create the admin user. Its credentials are kept in the Secret named in "
        "status.credentials.adminSecretName. Annotate the Registry with "
        "`dockyard.dev/regenerate-password: password` (or `password2`) to regenerate one password.",
    )


class IssuerReference(ApiModel):
    """A cert-manager issuer."""

    name: Name = Field(description="Name of the Issuer or ClusterIssuer.")
    kind: Literal["Issuer", "ClusterIssuer"] = Field("Issuer", description="Issuer kind.")
    group: DnsSubdomain = Field("cert-manager.io", description="API group of the issuer.")


class TlsSpec(ApiModel):
    """HTTPS for the registry endpoint."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "self.mode == 'Secret' ? has(self.secretName) : !has(self.secretName)",
                    "tls.secretName is required with tls.mode Secret and not allowed with other modes",
                    field_path=".secretName",
                ),
                cel(
                    "self.mode == 'CertManager' ? has(self.issuerRef) : !has(self.issuerRef)",
                    "tls.issuerRef is required with tls.mode CertManager and not allowed with other modes",
                    field_path=".issuerRef",
                ),
            ]
        }
    )

    mode: Literal["SelfSigned", "Secret", "CertManager", "Disabled"] = Field(
        "SelfSigned",
        description="SelfSigned: the operator issues a CA and a serving certificate and publishes the CA "
        "for clients. Secret: use the kubernetes.io/tls Secret in secretName. CertManager: request a "
        "cert-manager Certificate from issuerRef. Disabled: plain HTTP (only for trusted networks).",
    )
    secret_name: Name | None = Field(
        None, description="A kubernetes.io/tls Secret (tls.crt, tls.key, optional ca.crt); mode Secret only."
    )
    issuer_ref: IssuerReference | None = Field(None, description="The cert-manager issuer; mode CertManager only.")
    minimum_version: Literal["tls1.2", "tls1.3"] = Field(
        "tls1.2", description="Oldest TLS version the registry accepts."
    )


class IngressSpec(ApiModel):
    """An Ingress that exposes the registry outside the cluster."""

    host: HostName = Field(
        description="External host name, e.g. registry.example.com; becomes the registry's external login server.",
    )
    class_name: DnsSubdomain | None = Field(None, description="IngressClass to use.")
    annotations: IngressAnnotations | None = Field(
        None, description="Extra annotations for the Ingress (e.g. proxy body size).", max_length=32
    )


class ExposureSpec(ApiModel):
    """How clients reach the registry."""

    service_type: Literal["ClusterIP", "NodePort", "LoadBalancer"] = Field(
        "ClusterIP", description="Type of the registry's Service."
    )
    ingress: IngressSpec | None = Field(None, description="Expose the registry through an Ingress.")
    node_pull: bool = Field(
        False,
        description="Let kubelets pull this registry's images (pods with imagePullSecrets: [<name>-pull]). "
        "Nodes reach the registry at its Service's ClusterIP, shown in status.nodeLoginServer: the serving "
        "certificate and the token realm name that address, and a DaemonSet `<name>-node-trust` writes "
        "the CA and a hosts.toml for it into containerd's registry config_path on every node (the "
        "operator's DOCKYARD_NODE_REGISTRY_CONFIG_DIR, /etc/containerd/certs.d by default). Requires "
        "tls.mode SelfSigned and no ingress; the namespace must admit a root pod with a hostPath volume.",
    )


class IpRule(ApiModel):
    """An address range allowed to reach the registry."""

    value: IpOrCidr = Field(
        description="An IPv4 or IPv6 address or CIDR, e.g. 203.0.113.0/24, 198.51.100.7 or 2001:db8::/32; "
        "one address means that address alone (/32 or /128, as in ACR). Parsed as a CIDR either way.",
    )
    action: Literal["Allow"] = Field("Allow", description="Only Allow rules are supported (as in ACR).")


class NetworkRuleSet(ApiModel):
    """Who may connect to the registry (Premium). With defaultAction Deny it becomes a NetworkPolicy
    on the registry pods and an allow-list at the exposure; status condition NetworkRulesEnforced
    says what the cluster enforces."""

    default_action: Literal["Allow", "Deny"] = Field(
        "Allow",
        description="Deny admits only the registry's namespace, allowedNamespaces, ipRules and (allowNodes) "
        "the nodes; Allow admits everyone (the other fields then have no effect).",
    )
    ip_rules: list[IpRule] = Field(
        default_factory=list,
        description="Allowed client addresses (at most 200): an ipBlock of the NetworkPolicy and the exposure's "
        "allow-list (Ingress annotations, LoadBalancer loadBalancerSourceRanges). Pod-level rules see "
        "the client's address only where no proxy or SNAT hides it (see status).",
        max_length=200,
    )
    allowed_namespaces: list[DnsLabel] = Field(
        default_factory=list,
        description="Namespaces whose pods may always connect (the registry's own namespace always may). "
        "With exposure.ingress, list the ingress controller's namespace here.",
        max_length=100,
    )
    allow_nodes: bool = Field(
        True,
        description="Also admit the nodes' InternalIP addresses, so kubelets can pull (exposure.nodePull) and "
        "host-network clients connect.",
    )


class RegistrySpec(ApiModel):
    """Desired state of a Registry."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "!self.anonymousPull || self.sku != 'Basic'",
                    "anonymousPull requires the Standard or Premium tier (spec.sku is Basic)",
                    field_path=".anonymousPull",
                ),
                cel(
                    "!has(self.networkRuleSet) || self.sku == 'Premium'",
                    "networkRuleSet requires the Premium tier",
                    field_path=".networkRuleSet",
                ),
                cel(
                    "self.publicNetworkAccess == 'Enabled' || self.sku == 'Premium'",
                    "publicNetworkAccess Disabled requires the Premium tier",
                    field_path=".publicNetworkAccess",
                ),
                cel(
                    "!self.exposure.nodePull || (self.tls.mode == 'SelfSigned' && !has(self.exposure.ingress))",
                    "exposure.nodePull requires tls.mode SelfSigned (the operator certifies the Service's "
                    "ClusterIP and ships its CA to the nodes) and no exposure.ingress (nodes pull through "
                    "the Ingress host and its trusted certificate instead)",
                    field_path=".exposure.nodePull",
                ),
                cel(
                    "!has(self.replicas) || self.replicas == 1 || has(self.storage.s3) "
                    "|| has(self.storage.azure) || has(self.storage.gcs)",
                    "replicas > 1 needs shared object storage (storage.s3, storage.azure or storage.gcs); "
                    "a PersistentVolumeClaim can serve one replica",
                    field_path=".replicas",
                ),
            ]
        }
    )

    sku: Sku = Field(
        "Standard",
        description="Service tier. Sets the included storage, the webhook, token and replication limits "
        "and which features are available (Basic < Standard < Premium). Can be changed in place; moving "
        "down from Premium is refused while Replications exist.",
    )
    image: ImageReference | None = Field(
        None,
        description="Registry image, [host[:port]/]repository[:tag][@digest]; defaults to the operator's "
        "setting (registry:3).",
    )
    replicas: int | None = Field(
        None, description="Number of registry pods; defaults to 1 (2 on Premium with object storage).", ge=1, le=20
    )
    resources: ResourceRequirements | None = Field(
        None, description="Resources of the registry container; defaults depend on the tier."
    )
    storage: StorageSpec = section(StorageSpec, "Where image data is stored.")
    admin_user: AdminUserSpec = section(AdminUserSpec, "The admin user.")
    anonymous_pull: bool = Field(
        False, description="Allow pulls without credentials (Standard and Premium). Push always needs credentials."
    )
    tls: TlsSpec = section(TlsSpec, "HTTPS settings.")
    exposure: ExposureSpec = section(ExposureSpec, "How the registry is reachable.")
    public_network_access: Literal["Enabled", "Disabled"] = Field(
        "Enabled",
        description="Disabled (Premium) removes the exposure (no Ingress; the Service becomes ClusterIP) and admits "
        "only the registry's namespace, networkRuleSet.allowedNamespaces and (allowNodes) the nodes; ipRules "
        "are then ignored, as in ACR.",
    )
    network_rule_set: NetworkRuleSet | None = Field(None, description="IP and namespace rules (Premium).")


class LimitUsage(ApiModel):
    """A count against the tier's limit."""

    used: int = Field(0, description="How many exist.", ge=0)
    limit: int | None = Field(None, description="How many the tier allows; absent when unlimited.", ge=0)


class RegistryUsage(ApiModel):
    """Consumption against the tier."""

    storage_bytes: int | None = Field(None, description="Bytes stored, when measurable.", ge=0)
    included_storage_bytes: int | None = Field(None, description="Storage included in the tier.", ge=0)
    webhooks: LimitUsage | None = Field(None, description="Webhooks of this registry.")
    replications: LimitUsage | None = Field(None, description="Replications of this registry.")
    tokens: LimitUsage | None = Field(None, description="Tokens of this registry.")


class RegistryCredentials(ApiModel):
    """Secrets the operator maintains for clients."""

    admin_secret_name: str | None = Field(
        None, description="Secret with `username`, `password` and `password2` of the admin user."
    )
    pull_secret_name: str | None = Field(
        None, description="kubernetes.io/dockerconfigjson Secret for imagePullSecrets."
    )
    ca_config_map_name: str | None = Field(
        None, description="ConfigMap with the CA certificate (`ca.crt`) clients must trust."
    )


class NodePullStatus(ApiModel):
    """Progress of the node-trust DaemonSet (exposure.nodePull)."""

    nodes: int = Field(0, description="Nodes the DaemonSet should run on.", ge=0)
    ready: int = Field(
        0,
        description="Nodes whose runtime has the registry's CA and hosts.toml. Fewer than nodes for long: "
        "see `kubectl describe daemonset <name>-node-trust` (e.g. refused by the namespace's Pod Security).",
        ge=0,
    )


class RegistryStatus(ApiModel):
    """Observed state of a Registry."""

    phase: Literal["Pending", "Provisioning", "Ready", "Degraded", "Failed"] | None = Field(
        None, description="Summary for people; use conditions in automation."
    )
    login_server: str | None = Field(None, description="In-cluster host:port clients log in to.")
    external_login_server: str | None = Field(None, description="External host name, when exposed.")
    node_login_server: str | None = Field(
        None,
        description="host:port kubelets pull from (exposure.nodePull): image references in pod specs "
        "start with it, e.g. <nodeLoginServer>/team/app:v1.",
    )
    node_pull: NodePullStatus | None = Field(None, description="Node trust progress, with exposure.nodePull.")
    image: str | None = Field(None, description="Registry image in use.")
    replicas: int | None = Field(None, description="Desired registry pods.", ge=0)
    ready_replicas: int | None = Field(None, description="Registry pods that are ready.", ge=0)
    credentials: RegistryCredentials | None = Field(None, description="Secrets for clients.")
    usage: RegistryUsage | None = Field(None, description="Usage against the tier's limits.")
    conditions: list[Condition] = CONDITIONS_FIELD
    observed_generation: int | None = OBSERVED_GENERATION_FIELD


REGISTRY = KindInfo(
    kind="Registry",
    plural="registries",
    short_names=("reg", "dyreg"),
    description="A container registry (CNCF distribution) with storage, authentication, TLS and an "
    "ACR-style service tier.",
    spec=RegistrySpec,
    status=RegistryStatus,
    spec_optional=True,
    name_format=NameFormat(
        63,
        "a Registry's name becomes its Service's name: at most 63 lowercase letters, digits and '-', "
        "starting with a letter and ending with a letter or digit (no dots)",
        dns_1035=True,
    ),
    columns=(
        PrinterColumn("SKU", "string", ".spec.sku", "Service tier."),
        PrinterColumn("Login Server", "string", ".status.loginServer", "Host clients log in to."),
        ready_column(),
        PrinterColumn(
            "Node Login Server", "string", ".status.nodeLoginServer", "Image prefix kubelets pull from.", priority=1
        ),
        PrinterColumn("Phase", "string", ".status.phase", "Summary of the state.", priority=1),
        age_column(),
    ),
)
