"""A Registry's status from what its children show: pure, so every reason is unit-tested.

`observe` reads the Deployment's rollout and the referrer counts; `desired_status` sets `Ready`
and `Progressing` through the conditions helper and the phase:

| phase          | when |
|----------------|------|
| `Ready`        | every replica of the current pod template is ready (`Reconciled`) |
| `Provisioning` | children are being created or rolled out, or a dependency is missing |
| `Failed`       | the spec cannot be acted on (`InvalidSpec`) or a tier change is refused |
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

from dockyard.core import conditions
from dockyard.core.conditions import ConditionType, Phase, Reason
from dockyard.core.tiers import TIERS
from dockyard.registries.manifests.config import RegistryContext
from dockyard.registries.manifests.network import NetworkVerdict

FAILED_REASONS: Final = frozenset({Reason.INVALID_SPEC, Reason.TIER_CHANGE_BLOCKED})


def rolled_out(deployment: Mapping[str, Any], replicas: int) -> bool:
    """The Deployment runs `replicas` ready pods of its current template."""
    status = deployment.get("status") or {}
    return (
        (deployment.get("metadata") or {}).get("generation") == status.get("observedGeneration")
        and (status.get("updatedReplicas") or 0) >= replicas
        and (status.get("readyReplicas") or 0) >= replicas
        and (status.get("replicas") or 0) == replicas
    )


def observe(
    ctx: RegistryContext,
    deployment: Mapping[str, Any] | None,
    admin: bool,
    webhooks: int,
    replications: int,
    node_trust: Mapping[str, Any] | None = None,
    tokens: int | None = None,
) -> tuple[dict[str, Any], bool]:
    """The status fields the children justify, and whether the registry is ready."""
    deployment = deployment or {}
    tier = TIERS[ctx.spec.sku]
    credentials: dict[str, Any] = {}
    if admin:
        credentials["adminSecretName"] = ctx.names.admin
        credentials["pullSecretName"] = ctx.names.pull
    if ctx.spec.tls.mode == "SelfSigned":
        credentials["caConfigMapName"] = ctx.names.ca_config_map
    status: dict[str, Any] = {
        "loginServer": ctx.login_server,
        "image": ctx.registry_image,
        "replicas": ctx.replicas,
        "readyReplicas": (deployment.get("status") or {}).get("readyReplicas") or 0,
        "credentials": credentials,
        "usage": {
            "includedStorageBytes": tier.included_storage_bytes,
            "webhooks": {"used": webhooks, "limit": tier.webhooks},
            "replications": {"used": replications},
        },
    }
    if tokens is not None:
        status["usage"]["tokens"] = {"used": tokens, "limit": tier.tokens}
    if ctx.external_host:
        status["externalLoginServer"] = ctx.external_host
    # None (a merge patch deletes the key) once nodePull is off.
    status["nodeLoginServer"] = ctx.node_login_server
    status["nodePull"] = None
    if ctx.node_login_server:
        trust = (node_trust or {}).get("status") or {}
        status["nodePull"] = {"nodes": trust.get("desiredNumberScheduled") or 0, "ready": trust.get("numberReady") or 0}
    return status, rolled_out(deployment, ctx.replicas)


def ready_condition(fields: Mapping[str, Any], ready: bool) -> tuple[str, str]:
    """Reason and message of `Ready` for an observed registry."""
    counts = f"{fields.get('readyReplicas', 0)} of {fields.get('replicas', 0)} replicas ready"
    return (Reason.RECONCILED, counts) if ready else (Reason.PROGRESSING, f"rolling out: {counts}")


def desired_status(
    current: Mapping[str, Any],
    generation: int,
    fields: Mapping[str, Any],
    ready: bool,
    reason: str,
    message: str,
    now: datetime | None = None,
    network: NetworkVerdict | None = None,
) -> dict[str, Any]:
    """The full status to hold, with `Ready` and `Progressing` set through the conditions helper,
    and `NetworkRulesEnforced` when a reconcile worked it out (`network`; other callers keep it)."""
    now = now or datetime.now(UTC)
    phase = Phase.READY if ready else (Phase.FAILED if reason in FAILED_REASONS else Phase.PROVISIONING)
    status = {**fields, "phase": phase, "observedGeneration": generation}
    status["conditions"] = conditions.set_condition(
        current.get("conditions"),
        type=ConditionType.READY,
        status="True" if ready else "False",
        reason=reason,
        message=message,
        observed_generation=generation,
        now=now,
    )
    rolling = reason == Reason.PROGRESSING
    status["conditions"] = conditions.set_condition(
        status["conditions"],
        type=ConditionType.PROGRESSING,
        status="True" if rolling else "False",
        reason=Reason.PROGRESSING if rolling else reason,
        message=message,
        observed_generation=generation,
        now=now,
    )
    if network is not None:
        status["conditions"] = conditions.set_condition(
            status["conditions"],
            type=ConditionType.NETWORK_RULES_ENFORCED,
            status="True" if network.status == "True" else "False",
            reason=network.reason,
            message=network.message,
            observed_generation=generation,
            now=now,
        )
    return status
