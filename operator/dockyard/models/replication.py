"""The Replication kind: a replica of a Premium registry in another location."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from dockyard.models.base import (
    CONDITIONS_FIELD,
    OBSERVED_GENERATION_FIELD,
    ApiModel,
    Condition,
    KindInfo,
    LocalObjectReference,
    PrinterColumn,
    ResourceRequirements,
    age_column,
    immutable,
    ready_column,
)
from dockyard.models.formats import NODE_SELECTOR_RULES, DnsLabel, NodeSelectorValue, checked, node_selector_problem

NodeSelector = Annotated[dict[str, NodeSelectorValue], checked(node_selector_problem)]


class ReplicationSpec(ApiModel):
    """Desired state of a Replication."""

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
        description="Nodes the replica runs on (label keys and values as Kubernetes takes them); defaults "
        "to {topology.kubernetes.io/region: <location>}.",
        max_length=16,
        json_schema_extra={"x-kubernetes-validations": [rule.entry() for rule in NODE_SELECTOR_RULES]},
    )
    target_namespace: DnsLabel | None = Field(
        None,
        description="Namespace for the replica's workloads; defaults to the Registry's namespace. Immutable.",
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


class ReplicationStatus(ApiModel):
    """Observed state of a Replication."""

    display_status: Literal["Provisioning", "Syncing", "Ready", "Degraded", "Failed"] | None = Field(
        None, description="Summary for people, as ACR shows it."
    )
    message: str | None = Field(None, description="Details of the display status.")
    login_server: str | None = Field(None, description="In-cluster host:port of the replica.")
    last_sync_time: str | None = Field(None, description="When the replica was last known in sync.")
    lag_seconds: int | None = Field(None, description="Age of the oldest change not yet replicated.", ge=0)
    repositories_in_sync: int | None = Field(None, description="Repositories identical in both.", ge=0)
    tags_in_sync: int | None = Field(None, description="Tags identical in both.", ge=0)
    tags_out_of_sync: int | None = Field(None, description="Tags that differ or are missing.", ge=0)
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
        ready_column(),
        age_column(),
    ),
)
