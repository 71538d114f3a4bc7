"""The Webhook kind: registry events delivered to an HTTP endpoint."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import ConfigDict, Field

from dockyard.models.base import (
    CONDITIONS_FIELD,
    OBSERVED_GENERATION_FIELD,
    ApiModel,
    Condition,
    KindInfo,
    LocalObjectReference,
    NameFormat,
    PrinterColumn,
    SecretKeySelector,
    age_column,
    cel,
    immutable,
    ready_column,
    section,
)
from dockyard.models.formats import DnsLabel, HeaderName, HeaderValue, HttpUrl, Rule, checked

WebhookAction = Literal["push", "delete", "quarantine", "chart_push", "chart_delete"]

# repository[:tag|:*]; repository components are lowercase distribution names where `*` may stand
# for any part of a name; empty means every repository.
SCOPE_PATTERN = (
    r"^([a-z0-9*]+([._-]+[a-z0-9*]+)*)(/[a-z0-9*]+([._-]+[a-z0-9*]+)*)*"
    r"(:(\*|[A-Za-z0-9_][A-Za-z0-9._-]{0,127}))?$"
)
SCOPE_MESSAGE = (
    "scope must be empty, 'repository', 'repository:tag' or 'repository:*' with a lowercase repository name "
    "(e.g. 'team/app:*'); '*' may stand for part of a name"
)
Scope = Annotated[
    str,
    Field(max_length=256),
    Rule(f"self == '' || self.matches(r'{SCOPE_PATTERN}')", SCOPE_MESSAGE),
    checked(lambda scope: None if scope == "" or re.fullmatch(SCOPE_PATTERN, scope) else SCOPE_MESSAGE),
]


class HeaderValueSource(ApiModel):
    """Where a header value comes from."""

    secret_key_ref: SecretKeySelector = Field(description="A key of a Secret in the Webhook's namespace.")


class CustomHeader(ApiModel):
    """An HTTP header added to every delivery."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "has(self.value) != has(self.valueFrom)",
                    "set exactly one of value or valueFrom for each custom header",
                )
            ]
        }
    )

    name: HeaderName = Field(
        description="Header name, e.g. Authorization. Content-Type, Content-Length, Host, User-Agent, "
        "Transfer-Encoding, Connection and X-Dockyard-* are Dockyard's own."
    )
    value: HeaderValue | None = Field(
        None, description="Literal value (not secret): printable ASCII, spaces and tabs; no CR or LF."
    )
    value_from: HeaderValueSource | None = Field(
        None, description="Value read from a Secret; use it for tokens. Never shown in status or logs."
    )


class DeliverySpec(ApiModel):
    """How hard Dockyard tries to deliver one event."""

    timeout_seconds: int = Field(10, description="Time allowed for one HTTP attempt.", ge=1, le=60)
    max_attempts: int = Field(
        15,
        description="Attempts per event before it is recorded as failed. Connection errors, timeouts, 408, "
        "429 and 5xx are retried after 1s, 2s, 4s … capped at 5 minutes, each times a random 0.5-1, or "
        "after Retry-After when longer; 15 attempts span 17 to 34 minutes. Other statuses fail at once.",
        ge=1,
        le=30,
    )


class WebhookSpec(ApiModel):
    """Desired state of a Webhook."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "has(self.serviceUri) != has(self.serviceUriSecretRef)",
                    "set exactly one of serviceUri or serviceUriSecretRef",
                ),
            ]
        }
    )

    registry_ref: LocalObjectReference = Field(
        description="The Registry whose events are sent. Immutable.",
        json_schema_extra={"x-kubernetes-validations": [immutable("registryRef")]},
    )
    service_uri: HttpUrl | None = Field(
        None,
        description="Endpoint that receives a POST per event, e.g. https://hooks.example.com/acr. Use "
        "serviceUriSecretRef instead when the URL carries a token.",
    )
    service_uri_secret_ref: SecretKeySelector | None = Field(None, description="A Secret key holding the endpoint URL.")
    custom_headers: list[CustomHeader] = Field(
        default_factory=list,
        description="Headers added to every delivery.",
        max_length=20,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    actions: list[WebhookAction] = Field(
        description="Events that trigger a delivery.",
        min_length=1,
        max_length=5,
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    scope: Scope = Field(
        "",
        description="Which events: `repo:tag` one tag, `repo:*` every tag of repo, `repo` the tag latest "
        "of repo, empty every repository. `*` may stand for any part of a repository name, e.g. "
        "`team-a/*:*`.",
    )
    enabled: bool = Field(True, description="Deliver events (false keeps the webhook but sends nothing).")
    location: DnsLabel | None = Field(
        None,
        description="Only events of the replica in this location (a Replication's location); "
        "unset means the home registry.",
    )
    signing_secret_ref: SecretKeySelector | None = Field(
        None,
        description="Secret key with the HMAC-SHA256 signing key; if unset the operator generates one "
        "(see status.signingSecretName).",
    )
    delivery: DeliverySpec = section(DeliverySpec, "Retry and timeout policy.")


class DeliveryRecord(ApiModel):
    """One delivery of one event."""

    id: str = Field(description="Delivery id (sent as the X-Dockyard-Delivery header).")
    event_id: str = Field(description="Id of the event.")
    action: str = Field(description="Event action, e.g. push.")
    state: Literal["pending", "delivered", "failed"] = Field(
        description="pending: waiting for its next attempt; delivered: the receiver answered 2xx; failed: "
        "out of attempts, or refused with a status that is not retried."
    )
    target: str | None = Field(None, description="repository[:tag|@digest] of the event.")
    request: str | None = Field(None, description="Pings only: the dockyard.dev/ping value that asked for it.")
    time: str = Field(description="When the last attempt was made, or the event was accepted (RFC 3339).")
    http_status: int | None = Field(None, description="HTTP status of the last attempt.")
    attempts: int = Field(description="Attempts made.", ge=0)
    latency_ms: int | None = Field(None, description="Duration of the last attempt in milliseconds.", ge=0)
    error: str | None = Field(None, description="Why the last attempt failed.")


class DeliveryCounts(ApiModel):
    """Totals since the webhook was created."""

    delivered: int = Field(0, description="Events delivered.", ge=0)
    failed: int = Field(0, description="Events that ran out of attempts.", ge=0)
    pending: int = Field(0, description="Events waiting for (re)delivery.", ge=0)


class WebhookStatus(ApiModel):
    """Observed state of a Webhook."""

    signing_secret_name: str | None = Field(None, description="Secret with the signing key (key `secret`).")
    deliveries: DeliveryCounts | None = Field(None, description="Delivery totals.")
    recent_deliveries: list[DeliveryRecord] = Field(
        default_factory=list, description="The most recent deliveries, newest first.", max_length=20
    )
    last_ping: DeliveryRecord | None = Field(
        None, description="Result of the last ping (requested with the dockyard.dev/ping annotation)."
    )
    conditions: list[Condition] = CONDITIONS_FIELD
    observed_generation: int | None = OBSERVED_GENERATION_FIELD


WEBHOOK = KindInfo(
    kind="Webhook",
    plural="webhooks",
    short_names=("wh", "dywh"),
    description="Delivers a registry's push and delete events to an HTTP endpoint, signed and retried.",
    spec=WebhookSpec,
    status=WebhookStatus,
    name_format=NameFormat(
        63,
        "a Webhook's name labels the signing Secret the operator creates for it: at most 63 lowercase "
        "letters, digits, '-' and '.', starting and ending with a letter or digit",
    ),
    columns=(
        PrinterColumn("Registry", "string", ".spec.registryRef.name", "The registry."),
        PrinterColumn("Actions", "string", ".spec.actions", "Actions that trigger a delivery."),
        PrinterColumn("Scope", "string", ".spec.scope", "Repository filter."),
        PrinterColumn("Enabled", "boolean", ".spec.enabled", "Whether events are delivered."),
        ready_column(),
        PrinterColumn("Delivered", "integer", ".status.deliveries.delivered", "Events delivered."),
        PrinterColumn("Pending", "integer", ".status.deliveries.pending", "Events waiting for (re)delivery."),
        PrinterColumn("Failed", "integer", ".status.deliveries.failed", "Events that ran out of attempts.", priority=1),
        age_column(),
    ),
)
