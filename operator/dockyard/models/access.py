"""The ScopeMap and Token kinds: ACR's repository-scoped tokens.

A ScopeMap lists `repositories/<repository>/<action>` entries (ACR's strings); a Token logs in with
its name and one of two generated passwords and may do what its scope map allows. The token
service next to each registry reads both kinds itself (`dockyard.auth.directory`).
"""

from __future__ import annotations

from typing import Annotated, Final, Literal

from pydantic import Field

from dockyard.models.base import (
    CONDITIONS_FIELD,
    OBSERVED_GENERATION_FIELD,
    ApiModel,
    Condition,
    KindInfo,
    LocalObjectReference,
    PrinterColumn,
    age_column,
    immutable,
    ready_column,
)

ACR_ACTIONS: Final = ("content/read", "content/write", "content/delete", "metadata/read", "metadata/write")
SYSTEM_SCOPE_MAPS: Final[dict[str, tuple[str, ...]]] = {
    "_repositories_pull": ("content/read",),
    "_repositories_pull_metadata_read": ("content/read", "metadata/read"),
    "_repositories_push": ("content/read", "content/write"),
    "_repositories_push_metadata_write": ("content/read", "content/write", "metadata/read", "metadata/write"),
    "_repositories_admin": ACR_ACTIONS,
}
"""ACR's built-in scope maps: their actions on every repository (`*`)."""

# A distribution repository name (lowercase components joined by `/`), optionally ending in `/*`,
# or `*` alone; then one of ACR's five actions.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
ACTION_PATTERN: Final = (
    rf"^repositories/(\*|{_COMPONENT}(?:/{_COMPONENT})*(?:/\*)?)/(content/(read|write|delete)|metadata/(read|write))$"
)
SCOPE_MAP_REF_PATTERN: Final = (
    r"^(_repositories_(pull|pull_metadata_read|push|push_metadata_write|admin)"
    r"|[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*)$"
)
PasswordName = Literal["password1", "password2"]
PASSWORD_NAMES: Final[tuple[PasswordName, ...]] = ("password1", "password2")

ScopeMapAction = Annotated[
    str,
    Field(
        max_length=300,
        pattern=ACTION_PATTERN,
        description="repositories/<repository>/<action>: a lowercase repository name, optionally ending in "
        "/* (e.g. team/*), or * alone; action one of content/read, content/write, content/delete, "
        "metadata/read, metadata/write.",
    ),
]


class ScopeMapSpec(ApiModel):
    """Desired state of a ScopeMap."""

    registry_ref: LocalObjectReference = Field(
        description="The Registry whose repositories this map covers. Immutable.",
        json_schema_extra={"x-kubernetes-validations": [immutable("registryRef")]},
    )
    description: str = Field("", description="Free text for people.", max_length=256)
    actions: list[ScopeMapAction] = Field(
        description="Permissions, each `repositories/<repository>/<action>` with action content/read, "
        "content/write, content/delete, metadata/read or metadata/write. The repository is a name "
        "(`team/app`), a prefix ending in `/*` (`team/*`: every repository under team/, also ones not "
        "created yet) or `*` (the whole registry); no other wildcard. Entries add up. What distribution "
        "can enforce of each action is in the README (Access); status.conditions says when an action "
        "grants less than its name.",
        min_length=1,
        max_length=500,
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )


class ScopeMapStatus(ApiModel):
    """Observed state of a ScopeMap."""

    conditions: list[Condition] = CONDITIONS_FIELD
    observed_generation: int | None = OBSERVED_GENERATION_FIELD


class TokenPassword(ApiModel):
    """One of the token's two passwords."""

    name: PasswordName = Field(description="password1 or password2.")
    expiry: str | None = Field(
        None,
        description="When the password stops working (RFC 3339, e.g. 2026-12-31T00:00:00Z); absent = never. "
        "An expired password fails `docker login` with 401; the other keeps working.",
        json_schema_extra={"format": "date-time"},
    )


def _default_passwords() -> list[TokenPassword]:
    return [TokenPassword(name=name) for name in PASSWORD_NAMES]


class ScopeMapReference(ApiModel):
    """A ScopeMap in the same namespace, or one of ACR's system scope maps."""

    name: str = Field(
        description="Name of the ScopeMap, or _repositories_pull, _repositories_pull_metadata_read, "
        "_repositories_push, _repositories_push_metadata_write, _repositories_admin.",
        min_length=1,
        max_length=253,
        pattern=SCOPE_MAP_REF_PATTERN,
    )


class TokenSpec(ApiModel):
    """Desired state of a Token."""

    registry_ref: LocalObjectReference = Field(
        description="The Registry this token logs in to. Immutable.",
        json_schema_extra={"x-kubernetes-validations": [immutable("registryRef")]},
    )
    scope_map_ref: ScopeMapReference = Field(
        description="The ScopeMap (same namespace and registry) that says what the token may do, or one "
        "of ACR's system maps (every repository): _repositories_pull, _repositories_pull_metadata_read, "
        "_repositories_push, _repositories_push_metadata_write, _repositories_admin. A change applies "
        "to new logins within seconds."
    )
    enabled: bool = Field(True, description="false refuses every login of the token (401), as ACR's disabled.")
    passwords: list[TokenPassword] = Field(
        default_factory=_default_passwords,
        description="Which passwords exist and when they expire. The operator generates each one into the "
        "Secret in status.credentialsSecretName; annotate the Token with "
        "`dockyard.dev/regenerate-password: password1` (or password2) to regenerate one. A password "
        "removed from this list is deleted.",
        max_length=2,
        json_schema_extra={
            "default": [{"name": name} for name in PASSWORD_NAMES],
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["name"],
        },
    )


class TokenPasswordStatus(ApiModel):
    """A generated password (its value is only in the credentials Secret)."""

    name: PasswordName = Field(description="password1 or password2.")
    creation_time: str | None = Field(
        None, description="When the password was generated (RFC 3339).", json_schema_extra={"format": "date-time"}
    )
    expiry: str | None = Field(
        None, description="When it stops working (RFC 3339), if ever.", json_schema_extra={"format": "date-time"}
    )
    verifier: str | None = Field(
        None,
        description="SHA-256 of the password, which the token service checks logins against. The "
        "password is 256 random bits, so this reveals nothing usable; absent while the token is over "
        "its tier's quota (then no login works).",
        max_length=64,
    )


class TokenStatus(ApiModel):
    """Observed state of a Token."""

    credentials_secret_name: str | None = Field(
        None, description="Secret with `username`, `password1` and `password2` (those that exist)."
    )
    pull_secret_name: str | None = Field(
        None, description="kubernetes.io/dockerconfigjson Secret with the token's first working password."
    )
    passwords: list[TokenPasswordStatus] = Field(default_factory=list, description="Generated passwords.", max_length=2)
    conditions: list[Condition] = CONDITIONS_FIELD
    observed_generation: int | None = OBSERVED_GENERATION_FIELD


SCOPE_MAP = KindInfo(
    kind="ScopeMap",
    plural="scopemaps",
    short_names=("sm", "dysm"),
    description="Repository permissions (ACR actions on repositories and wildcards) that Tokens use.",
    spec=ScopeMapSpec,
    status=ScopeMapStatus,
    columns=(
        PrinterColumn("Registry", "string", ".spec.registryRef.name", "The registry."),
        PrinterColumn("Description", "string", ".spec.description", "What the map is for."),
        ready_column(),
        PrinterColumn("Actions", "string", ".spec.actions", "Permissions.", priority=1),
        age_column(),
    ),
)

TOKEN = KindInfo(
    kind="Token",
    plural="tokens",
    short_names=("tok", "dytok"),
    description="A repository-scoped login for a registry (ACR token): its name and one of two generated "
    "passwords, with the permissions of one scope map.",
    spec=TokenSpec,
    status=TokenStatus,
    columns=(
        PrinterColumn("Registry", "string", ".spec.registryRef.name", "The registry."),
        PrinterColumn("Scope Map", "string", ".spec.scopeMapRef.name", "What the token may do."),
        PrinterColumn("Enabled", "boolean", ".spec.enabled", "Whether logins are accepted."),
        ready_column(),
        PrinterColumn("Secret", "string", ".status.credentialsSecretName", "Credentials Secret.", priority=1),
        age_column(),
    ),
)
