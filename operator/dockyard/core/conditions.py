"""Status conditions with `metav1.Condition` semantics: the one writer of `status.conditions`.

Guarantees, for every kind:
- at most one condition per `type`; other conditions keep their order, a new type is appended;
- `lastTransitionTime` changes only when `status` changes; `reason`, `message` and
  `observedGeneration` always carry the latest values;
- times are RFC 3339 in UTC with whole seconds and a `Z`, the form the API server stores;
- `type` and `reason` are validated (reasons are CamelCase) before anything is written, so a bad
  constant fails in unit tests rather than as a rejected status patch;
- everything is pure: inputs are never mutated and the clock is an argument;
- `status_patch` returns `{}` when nothing would change, so merging it into kopf's patch issues no
  write and a reconcile that finds everything in order leaves the object untouched.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Final, Literal

ConditionStatus = Literal["True", "False", "Unknown"]

MAX_MESSAGE_LENGTH: Final = 32768
_TYPE = re.compile(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$"
)
_CAMEL_CASE = re.compile(r"^[A-Z][a-zA-Z0-9]*$")
_STATUSES: Final = ("True", "False", "Unknown")


class ConditionType:
    """Condition types shared by the kinds; `kubectl wait --for=condition=<type>` uses these."""

    READY: Final = "Ready"
    """The resource does what its spec asks for at `observedGeneration`."""
    PROGRESSING: Final = "Progressing"
    """Registries: `True` while children are being created or rolled out."""
    SUCCEEDED: Final = "Succeeded"
    """Runs only: `True` once the run finished successfully, `False` once it failed for good."""
    NETWORK_RULES_ENFORCED: Final = "NetworkRulesEnforced"
    """Registries: what of networkRuleSet / publicNetworkAccess the cluster's objects enforce (the
    message says exactly what, and where the client address is not visible)."""


class Reason:
    """Why a condition has its status. Alerts and scripts match on these, so they never change."""

    RECONCILED: Final = "Reconciled"
    """`Ready=True`: every child object exists and matches the spec at `observedGeneration`."""
    PROGRESSING: Final = "Progressing"
    """`Ready=False`: the spec is accepted and children are being created or rolled out."""
    INVALID_SPEC: Final = "InvalidSpec"
    """`Ready=False`: the spec cannot be acted on; the message names the field. Nothing is retried
    until the spec changes."""
    QUOTA_EXCEEDED: Final = "QuotaExceeded"
    """`Ready=False`: the registry's tier limit for a resource type is reached; the message says
    which, in ACR's wording. Raising the tier or removing resources clears it."""
    DEPENDENCY_NOT_READY: Final = "DependencyNotReady"
    """`Ready=False`: a referenced object (a Registry, a Secret, …) is missing or not ready; the
    operator retries on its own."""
    TIER_CHANGE_BLOCKED: Final = "TierChangeBlocked"
    """Registries, `Ready=False`: a move down from Premium while Replications exist; the registry
    keeps running at its previous tier until the Replications are deleted or the tier restored."""
    RECEIVER_FAILING: Final = "ReceiverFailing"
    """Webhooks, `Ready=False`: the last attempts to reach the receiver failed (message: how many,
    and the last HTTP status or error); events keep queueing and are retried. Clears on the next
    successful delivery."""
    DISABLED: Final = "Disabled"
    """Webhooks, `Ready=True`: the webhook is valid but `enabled: false`, so no event is sent.
    Tokens, `Ready=True`: the token is valid but `enabled: false`, so every login gets 401."""
    PARTIALLY_ENFORCED: Final = "PartiallyEnforced"
    """ScopeMaps, `Ready=True`: the map is in use, but some of its actions grant less than their ACR
    name (distribution cannot tell tag listing from content reads, nor untag from delete); the
    message lists them. See the README, Access."""
    QUEUED: Final = "Queued"
    """Runs, `Succeeded=Unknown`: the run has an ID and waits for its build pod to start."""
    RUNNING: Final = "Running"
    """Runs, `Succeeded=Unknown`: the build pod runs."""
    SUCCEEDED: Final = "Succeeded"
    """Runs, `Succeeded=True`: the build finished with exit code 0 and its images are pushed."""
    BUILD_FAILED: Final = "BuildFailed"
    """Runs, `Succeeded=False` (status Failed): the build itself failed; the message is the failing
    build line and its error."""
    CANCELED: Final = "Canceled"
    """Runs, `Succeeded=False`: `spec.cancel` stopped the run; the log so far is kept."""
    TIMED_OUT: Final = "TimedOut"
    """Runs, `Succeeded=False` (status Timeout): the run exceeded its `timeoutSeconds`."""
    RUN_ERROR: Final = "RunError"
    """Runs, `Succeeded=False` (status Error): the run could not build at all: the source could not
    be fetched, the pod was lost or its Job deleted, the Registry is gone."""
    WAITING: Final = "Waiting"
    """Runs, `Succeeded=Unknown`: the run waits for something the user provides (its BuildTask,
    Registry or a Secret); the message names it."""
    NOT_IMPLEMENTED: Final = "NotImplemented"
    """BuildTasks, `Ready=False`: the spec uses a feature this version accepts but does not carry
    out yet (the message lists the fields); nothing it names is ignored silently."""
    NO_NETWORK_RULES: Final = "NoNetworkRules"
    """Registries, `NetworkRulesEnforced=True`: defaultAction Allow and public access enabled; no policy."""
    NETWORK_POLICY_APPLIED: Final = "NetworkPolicyApplied"
    """Registries, `NetworkRulesEnforced=True`: a NetworkPolicy admits only the listed sources (enforced
    where the network plugin implements NetworkPolicy, which the API cannot tell)."""
    EXPOSURE_ALLOW_LIST_APPLIED: Final = "ExposureAllowListApplied"
    """Registries, `NetworkRulesEnforced=True`: the NetworkPolicy, and ipRules at the exposure (Ingress
    annotations of a known controller, or a LoadBalancer's source ranges)."""
    CLIENT_IP_NOT_VISIBLE: Final = "ClientIPNotVisible"
    """Registries, `NetworkRulesEnforced=False`: behind the exposure (an Ingress of an unknown class) the
    pods cannot see client addresses, so ipRules are not enforced for those clients."""
    RECONCILE_FAILED: Final = "ReconcileFailed"
    """`Ready=False`: an unexpected error (API server, network) interrupted reconciliation; the
    message carries it and the operator retries with backoff."""


class EventReason:
    """Reasons of the Events the operator posts beyond condition flips (those carry the condition's
    reason)."""

    READY: Final = "Ready"
    """Normal: the resource became ready (a Registry: its login server serves)."""
    RUN_STARTED: Final = "RunStarted"
    """Normal: a BuildRun got its run ID and its Job."""
    RUN_FINISHED: Final = "RunFinished"
    """Normal (Succeeded) or Warning (any other end): a BuildRun ended; the message says how."""
    LOG_NOT_STORED: Final = "LogNotStored"
    """Warning: a finished run's log could not be kept in its registry (the tail is on the run)."""
    PLAN_WARNING: Final = "PlanWarning"
    """Warning: a task file's plan has keys acr-builder accepts but ignores (the message lists them)."""
    RUN_TRIGGERED: Final = "RunTriggered"
    """Normal, on a BuildTask: a trigger (timer, commit, base image) created a run; the message names the cause."""
    COMMIT_POLL_FAILED: Final = "CommitPollFailed"
    """Warning, on a BuildTask: its branch head could not be read (posted when the error changes)."""
    BASE_IMAGE_POLL_FAILED: Final = "BaseImagePollFailed"
    """Warning, on a BuildTask: its base image's tag could not be resolved (posted when the error changes)."""
    PASSWORD_GENERATED: Final = "PasswordGenerated"
    """Normal, on a Token: a password was generated (first, or added to spec.passwords)."""
    PASSWORD_REGENERATED: Final = "PasswordRegenerated"
    """Normal, on a Token: one password was regenerated on request (`dockyard.dev/regenerate-password`)."""


class Phase:
    """`status.phase`, the one-word summary printer columns show."""

    READY: Final = "Ready"
    PROVISIONING: Final = "Provisioning"
    FAILED: Final = "Failed"


def find_condition(conditions: Iterable[Mapping[str, Any]] | None, type: str) -> dict[str, Any] | None:
    """A copy of the condition of this type, or None."""
    for condition in conditions or ():
        if condition.get("type") == type:
            return dict(condition)
    return None


def would_change(
    conditions: Iterable[Mapping[str, Any]] | None,
    *,
    type: str,
    status: ConditionStatus,
    reason: str,
    message: str,
    observed_generation: int,
) -> bool:
    """Whether `set_condition` with these values would alter the conditions."""
    _validate(type=type, status=status, reason=reason, observed_generation=observed_generation)
    current = find_condition(conditions, type)
    if current is None or not current.get("lastTransitionTime"):
        return True
    return any(
        current.get(key) != value for key, value in _fields(status, reason, message, observed_generation).items()
    )


def set_condition(
    conditions: Iterable[Mapping[str, Any]] | None,
    *,
    type: str,
    status: ConditionStatus,
    reason: str,
    message: str,
    observed_generation: int,
    now: datetime,
) -> list[dict[str, Any]]:
    """A new list of conditions with this one set; `now` is its transition time if status flips."""
    _validate(type=type, status=status, reason=reason, observed_generation=observed_generation)
    updated = {"type": type, **_fields(status, reason, message, observed_generation)}
    result: list[dict[str, Any]] = []
    found = False
    for condition in conditions or ():
        if condition.get("type") != type:
            result.append(dict(condition))
            continue
        if found:
            continue
        found = True
        unchanged = condition.get("status") == status and condition.get("lastTransitionTime")
        updated["lastTransitionTime"] = condition["lastTransitionTime"] if unchanged else format_time(now)
        result.append(updated)
    if not found:
        updated["lastTransitionTime"] = format_time(now)
        result.append(updated)
    return result


def status_patch(
    current: Mapping[str, Any] | None,
    *,
    type: str,
    status: ConditionStatus,
    reason: str,
    message: str,
    observed_generation: int,
    now: datetime,
) -> dict[str, Any]:
    """The fields to merge into `.status` (conditions and top-level `observedGeneration`), or `{}`.

    `current` is the object's current `.status`. The conditions list is complete, because a merge
    patch replaces lists whole.
    """
    current = current or {}
    conditions = current.get("conditions")
    changed = would_change(
        conditions, type=type, status=status, reason=reason, message=message, observed_generation=observed_generation
    )
    if not changed and current.get("observedGeneration") == observed_generation:
        return {}
    return {
        "observedGeneration": observed_generation,
        "conditions": set_condition(
            conditions,
            type=type,
            status=status,
            reason=reason,
            message=message,
            observed_generation=observed_generation,
            now=now,
        ),
    }


def format_time(moment: datetime) -> str:
    """RFC 3339 in UTC with whole seconds, e.g. `2025-01-31T12:00:00Z`."""
    if moment.tzinfo is None:
        raise ValueError("condition times must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _fields(status: str, reason: str, message: str, observed_generation: int) -> dict[str, Any]:
    if len(message) > MAX_MESSAGE_LENGTH:
        message = message[: MAX_MESSAGE_LENGTH - 1] + "…"
    return {"status": status, "reason": reason, "message": message, "observedGeneration": observed_generation}


def _validate(*, type: str, status: str, reason: str, observed_generation: int) -> None:
    if len(type) > 316 or not _TYPE.match(type):
        raise ValueError(f"condition type {type!r} is not a valid metav1.Condition type")
    if status not in _STATUSES:
        raise ValueError(f"condition status {status!r} is not one of {', '.join(_STATUSES)}")
    if len(reason) > 1024 or not _CAMEL_CASE.match(reason):
        raise ValueError(f"condition reason {reason!r} is not CamelCase")
    if observed_generation < 0:
        raise ValueError(f"observedGeneration {observed_generation} is negative")
