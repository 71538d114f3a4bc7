"""The Replication kind: a replica of a Premium registry in another location."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import ConfigDict, Field

from dockyard.models.base import (
    CONDITIONS_FIELD,
    OBSERVED_GENERATION_FIELD,
    ApiModel,
    Condition,
    KindInfo,
    LocalObjectReference,
    Name,
    PrinterColumn,
    ResourceRequirements,
    age_column,
    cel,
    immutable,
    ready_column,
)
from dockyard.models.formats import NODE_SELECTOR_RULES, DnsLabel, NodeSelectorValue, checked, node_selector_problem
from dockyard.models.registry import StorageSpec

NodeSelector = Annotated[dict[str, NodeSelectorValue], checked(node_selector_problem)]


class ReplicaTlsSpec(ApiModel):
    """The replica's own serving certificate, for a registry whose `tls.mode` is Secret."""

    secret_name: Name | None = Field(
        None,
        description="A kubernetes.io/tls Secret (tls.crt, tls.key) in the replica's namespace whose certificate "
        "names the replica's login server (<registry>-<location>, .<namespace>, .<namespace>.svc, "
        ".<namespace>.svc.cluster.local). Needed only when the registry's own certificate does not cover those "
        "names; only with a registry whose tls.mode is Secret (refused with Ready=False InvalidSpec otherwise).",
    )


class ReplicationSpec(ApiModel):
    """Desired state of a Replication."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "!has(self.tls) || !has(self.tls.secretName) || "
                    "self.tls.secretName != self.registryRef.name + '-' + self.location + '-tls'",
                    "tls.secretName must not be <registry>-<location>-tls: the operator keeps the replica's "
                    "certificate (a copy of the registry's, or cert-manager's) under that name",
                    field_path=".tls.secretName",
                ),
            ]
        }
    )

    registry_ref: LocalObjectReference = Field(
        description="The Premium Registry to replicate. Immutable.",
        json_schema_extra={"x-kubernetes-validations": [immutable("registryRef")]},
    )
    location: DnsLabel = Field(
        description="Name of the location, e.g. westeurope; unique per registry. Immutable.",
        json_schema_extra={"x-kubernetes-validations": [immutable("location")]},
    )
    node_selector: NodeSelector | None = Field(
        None,
        description="Nodes the replica runs on; defaults to the nodes whose topology.kubernetes.io/region, "
        "else topology.kubernetes.io/zone, equals the location (none: Ready=False UnknownLocation).",
        max_length=16,
        json_schema_extra={"x-kubernetes-validations": [rule.entry() for rule in NODE_SELECTOR_RULES]},
    )
    target_namespace: DnsLabel | None = Field(
        None,
        description="Namespace for the replica's workloads (it gets copies of the registry's shared Secrets); "
        "defaults to the Registry's namespace. Immutable.",
        json_schema_extra={"x-kubernetes-validations": [immutable("targetNamespace")]},
    )
    region_endpoint_enabled: bool = Field(
        True,
        description="Route clients to this replica through the registry's global endpoint; false keeps "
        "syncing but takes the replica out of routing.",
    )
    full_sync_interval_seconds: int = Field(
        600,
        description="Period of the full catalog comparison that repairs anything event-driven sync missed.",
        ge=60,
        le=86400,
    )
    resources: ResourceRequirements | None = Field(None, description="Resources of the replica's registry container.")
    storage: StorageSpec | None = Field(
        None,
        description="The replica's own storage. Defaults to a PersistentVolumeClaim like the home registry's "
        "(its size and class); with object storage at home, the replica must name its own bucket or "
        "container (a shared one is not a replica and is refused with Ready=False StorageShared).",
    )
    tls: ReplicaTlsSpec | None = Field(
        None,
        description="The replica's serving certificate when the registry's tls.mode is Secret. By default the "
        "replica serves the registry's own certificate if it names the replica's login server, and with "
        "tls.mode CertManager gets a Certificate of its own from the registry's issuer.",
    )


class InitialSync(ApiModel):
    """Progress of the first fill of a new replica from the registry's existing content."""

    total_tags: int | None = Field(None, description="Tags the replica lacked when the fill started.", ge=0)
    copied_tags: int | None = Field(None, description="Of those, tags copied so far.", ge=0)
    copied_bytes: int | None = Field(None, description="Blob bytes copied into the replica so far.", ge=0)
    started_at: str | None = Field(None, description="When the fill started.")
    completed_at: str | None = Field(None, description="When the fill completed.")


class ReplicationStatus(ApiModel):
    """Observed state of a Replication."""

    display_status: Literal["Provisioning", "Syncing", "Ready", "Degraded", "Failed"] | None = Field(
        None, description="Summary for people, as ACR shows it."
    )
    message: str | None = Field(None, description="Details of the display status.")
    login_server: str | None = Field(None, description="In-cluster host:port of the replica.")
    global_endpoint_routing: Literal["Enabled", "Disabled"] | None = Field(
        None,
        description="Whether the registry's global login server may route clients to this replica "
        "(spec.regionEndpointEnabled); the GlobalEndpointRouting condition says whether it does now.",
    )
    last_sync_time: str | None = Field(None, description="When the replica was last known in sync.")
    lag_seconds: int | None = Field(None, description="Age of the oldest change not yet replicated.", ge=0)
    repositories_in_sync: int | None = Field(None, description="Repositories identical in both.", ge=0)
    tags_in_sync: int | None = Field(None, description="Tags identical in both.", ge=0)
    tags_out_of_sync: int | None = Field(None, description="Tags that differ or are missing.", ge=0)
    pending_changes: int | None = Field(None, description="Changes waiting to be copied into the replica.", ge=0)
    last_full_sync_time: str | None = Field(None, description="When the last full comparison finished.")
    conflicts: int | None = Field(
        None, description="Tags pushed concurrently on two replicas whose push lost (last writer wins).", ge=0
    )
    initial_sync: InitialSync | None = Field(None, description="Progress of the replica's first fill.")
    conditions: list[Condition] = CONDITIONS_FIELD
    observed_generation: int | None = OBSERVED_GENERATION_FIELD


REPLICATION = KindInfo(
    kind="Replication",
    plural="replications",
    short_names=("repl", "dyrepl"),
    description="A replica of a Premium Registry in another location, kept in sync.",
    spec=ReplicationSpec,
    status=ReplicationStatus,
    columns=(
        PrinterColumn("Registry", "string", ".spec.registryRef.name", "The replicated registry."),
        PrinterColumn("Location", "string", ".spec.location", "Where the replica runs."),
        PrinterColumn("Status", "string", ".status.displayStatus", "Sync state."),
        PrinterColumn(
            "Routing", "string", ".status.globalEndpointRouting", "In the registry's global login server.", priority=1
        ),
        ready_column(),
        age_column(),
    ),
)
