"""Building blocks shared by every kind's models.

The models are the one source of truth for the API: `dockyard.crdgen` turns them into the CRDs in
`crds/`, and handlers parse resource bodies with them. CEL rules that the API server enforces are
attached with `cel(...)`; pydantic does not evaluate them, the API server does at admission.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, model_validator
from pydantic.alias_generators import to_camel

from dockyard.models.formats import (
    DNS_LABEL,
    DNS_SUBDOMAIN,
    NOT_OVERCOMMITTED_RULE,
    QUANTITY_RULE,
    REQUESTS_WITHIN_LIMITS_RULE,
    RESOURCE_NAMES_RULE,
    SECRET_KEY,
    DnsSubdomain,
    Rule,
    SecretKey,
    checked,
    quantity_problem,
    resources_problem,
)

GROUP = "dockyard.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

__all__ = ["DNS_LABEL", "DNS_SUBDOMAIN", "SECRET_KEY"]


def cel(rule: str, message: str, *, field_path: str | None = None, reason: str | None = None) -> dict[str, Any]:
    """One `x-kubernetes-validations` entry; `message` is what the person applying sees."""
    entry = {"rule": rule, "message": message}
    if field_path:
        entry["fieldPath"] = field_path
    if reason:
        entry["reason"] = reason
    return entry


@dataclass(frozen=True)
class NameFormat:
    """What `metadata.name` must be beyond Kubernetes' own rule (a DNS subdomain of at most 253),
    because the operator names or labels children after it. Checked by the API server on the CRD's
    `metadata.name` schema (maxLength and a CEL rule), so the error names `metadata.name`."""

    max_length: int
    why: str
    dns_1035: bool = False
    """Starting with a letter, no dots: a Service's name."""

    def schema(self) -> dict[str, Any]:
        shape = r"^[a-z]([-a-z0-9]*[a-z0-9])?$" if self.dns_1035 else r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"
        return {
            "type": "string",
            "maxLength": self.max_length,
            "x-kubernetes-validations": [Rule(f"self.matches(r'{shape}')", self.why).entry()],
        }


def immutable(what: str) -> dict[str, Any]:
    return cel("self == oldSelf", f"{what} is immutable; delete and re-create the resource to change it")


class ApiModel(BaseModel):
    """Frozen, camelCase on the wire, snake_case in Python; unknown keys are ignored when parsing
    (the API server has already pruned them)."""

    model_config = ConfigDict(
        frozen=True,
        alias_generator=to_camel,
        populate_by_name=True,
        extra="ignore",
        use_attribute_docstrings=False,
    )


def section(model: type[BaseModel], description: str, **extra: Any) -> Any:
    """A nested object that is always present. Its schema default is the fully defaulted object,
    because the API server checks a default against the CEL rules without filling nested defaults."""
    return Field(
        default_factory=model, description=description, json_schema_extra={"default": defaults_of(model), **extra}
    )


def defaults_of(model: type[BaseModel]) -> dict[str, Any]:
    return model().model_dump(by_alias=True, mode="json", exclude_none=True)


Quantity = Annotated[
    int | str,
    WithJsonSchema(
        {
            "anyOf": [{"type": "integer"}, {"type": "string"}],
            "x-kubernetes-int-or-string": True,
            "maxLength": 64,
            "x-kubernetes-validations": [QUANTITY_RULE.entry()],
        }
    ),
    checked(quantity_problem),
]

Name = DnsSubdomain


class LocalObjectReference(ApiModel):
    """A reference to an object in the same namespace."""

    name: Name = Field(description="Name of the object, in the same namespace as this resource.")


class SecretKeySelector(ApiModel):
    """One key of a Secret in the same namespace."""

    name: Name = Field(description="Name of the Secret, in the same namespace as this resource.")
    key: SecretKey = Field(description="Key within the Secret's data.")


class ResourceRequirements(ApiModel):
    """Compute resources for a container (same shape as a Pod's `resources`)."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [REQUESTS_WITHIN_LIMITS_RULE.entry(), NOT_OVERCOMMITTED_RULE.entry()]
        }
    )

    requests: dict[str, Quantity] | None = Field(
        None,
        description="Minimum resources, e.g. {cpu: 100m, memory: 128Mi}; none may exceed its limit.",
        max_length=8,
        json_schema_extra={"x-kubernetes-validations": [RESOURCE_NAMES_RULE.entry()]},
    )
    limits: dict[str, Quantity] | None = Field(
        None,
        description="Maximum resources, e.g. {cpu: '1', memory: 512Mi}.",
        max_length=8,
        json_schema_extra={"x-kubernetes-validations": [RESOURCE_NAMES_RULE.entry()]},
    )

    @model_validator(mode="after")
    def _consistent(self) -> ResourceRequirements:
        problem = resources_problem(self.requests, self.limits)
        if problem:
            raise ValueError(problem)
        return self


class Condition(ApiModel):
    """The standard Kubernetes condition (metav1.Condition)."""

    type: str = Field(description="Type of condition in CamelCase, e.g. Ready.", max_length=316)
    status: Literal["True", "False", "Unknown"] = Field(description="Status of the condition.")
    reason: str = Field(description="Machine-readable CamelCase reason for the last transition.", max_length=1024)
    message: str = Field("", description="Human-readable details of the last transition.", max_length=32768)
    observed_generation: int | None = Field(
        None, description="metadata.generation the condition was computed from.", ge=0
    )
    last_transition_time: str = Field(
        description="When the status last changed (RFC 3339).", json_schema_extra={"format": "date-time"}
    )


CONDITIONS_FIELD: Any = Field(
    default_factory=list,
    description="Current state as standard conditions; `Ready` summarises the resource.",
    max_length=16,
    json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
)
OBSERVED_GENERATION_FIELD: Any = Field(None, description="metadata.generation of the spec the status describes.", ge=0)


def referenced_registry(body: Mapping[str, Any]) -> str | None:
    """`spec.registryRef.name` of a raw resource body (Webhook, Replication, BuildTask), unparsed."""
    name = ((body.get("spec") or {}).get("registryRef") or {}).get("name")
    return name if isinstance(name, str) else None


@dataclass(frozen=True)
class PrinterColumn:
    name: str
    type: str
    json_path: str
    description: str
    priority: int = 0
    format: str | None = None


def ready_column() -> PrinterColumn:
    return PrinterColumn(
        "Ready", "string", '.status.conditions[?(@.type=="Ready")].status', "Whether the resource is ready."
    )


def age_column() -> PrinterColumn:
    return PrinterColumn("Age", "date", ".metadata.creationTimestamp", "Time since creation.")


@dataclass(frozen=True)
class KindInfo:
    """Everything the CRD needs beyond the schema of spec and status."""

    kind: str
    plural: str
    short_names: tuple[str, ...]
    description: str
    spec: type[BaseModel]
    status: type[BaseModel]
    columns: tuple[PrinterColumn, ...] = field(default_factory=tuple)
    categories: tuple[str, ...] = ("dockyard",)
    spec_optional: bool = False
    """True when a resource without `spec` is meaningful (all defaults); the API server then fills it."""
    name_format: NameFormat | None = None

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{GROUP}"
