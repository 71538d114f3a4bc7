"""Reconciling one Token: its passwords (generated, regenerated on request), its two Secrets, and
its status (password verifiers, conditions).

Regeneration is the admin user's protocol (`registries/admin.py`): annotate the Token with
`dockyard.dev/regenerate-password: password1` (or `password2`; a suffix `password1@2` asks again);
the value handled is recorded on the credentials Secret, so each value regenerates once however
many reconciles run; the other password keeps working throughout.

Idempotent: passwords are generated only when missing or asked for, builders are pure, `ensure`
skips unchanged Secrets and the caller writes status only when it changes. A Token beyond the
tier's quota gets no Secret and no verifier (no login works); one whose Registry is missing waits.
"""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from dockyard.access.manifests import CREATED_ANNOTATION, build_credentials_secret, build_token_pull_secret
from dockyard.access.quota import access_limit, quota_message, quota_position
from dockyard.auth.policy import password_digest
from dockyard.core.conditions import EventReason, Reason, format_time
from dockyard.core.errors import Permanent
from dockyard.core.kube import Kube
from dockyard.core.meta import Owner
from dockyard.core.names import TokenNames
from dockyard.models import API_VERSION
from dockyard.models.access import SYSTEM_SCOPE_MAPS, TokenSpec
from dockyard.registries.admin import HANDLED_REGENERATION_ANNOTATION, REGENERATE_ANNOTATION, pending_request

KIND: Final = "Token"
MAX_NAME_LENGTH: Final = 50
"""ACR's limit on token names (5-50); the name is the login's username."""


@dataclass(frozen=True)
class PasswordPlan:
    values: dict[str, str]
    created: dict[str, str]
    generated: list[str]
    regenerated: str | None
    handled: str


def plan_passwords(
    body: Mapping[str, Any],
    stored: Mapping[str, Any] | None,
    wanted: Sequence[str],
    generate: Callable[[], str],
    now: datetime,
) -> PasswordPlan:
    """The passwords to hold after this reconcile (pure but for `generate`)."""
    stored = stored or {}
    data = stored.get("data") or {}
    annotations = (stored.get("metadata") or {}).get("annotations") or {}
    values, created, generated = {}, {}, []
    for name in wanted:
        if name in data:
            values[name] = base64.b64decode(data[name]).decode()
            created[name] = annotations.get(CREATED_ANNOTATION.format(name=name)) or format_time(now)
        else:
            values[name], created[name] = generate(), format_time(now)
            generated.append(name)
    request = ((body.get("metadata") or {}).get("annotations") or {}).get(REGENERATE_ANNOTATION, "")
    which = request.split("@", 1)[0].strip()
    regenerated = None
    if pending_request(body, stored) is not None and which in values and which not in generated:
        values[which], created[which] = generate(), format_time(now)
        regenerated = which
    return PasswordPlan(values, created, generated, regenerated, request)


def login_servers(registry: Mapping[str, Any]) -> list[str]:
    status = registry.get("status") or {}
    servers = [status.get("loginServer"), status.get("nodeLoginServer"), status.get("externalLoginServer")]
    return [s for s in servers if s]


@dataclass
class TokenOutcome:
    status: dict[str, Any] = field(default_factory=dict)
    ready: bool = False
    reason: str = Reason.RECONCILED
    message: str = ""
    events: list[tuple[str, str]] = field(default_factory=list)
    """(reason, message) of Normal Events to post."""
    generated: int = 0
    """Passwords generated (new token or password), for the metric."""
    regenerated: bool = False


def owner_of(body: Mapping[str, Any]) -> Owner:
    meta = body["metadata"]
    return Owner(API_VERSION, KIND, meta["name"], meta["namespace"], meta["uid"])


def reconcile_token(
    kube: Kube,
    body: Mapping[str, Any],
    spec: TokenSpec,
    registry: Mapping[str, Any] | None,
    siblings: Sequence[Mapping[str, Any]],
    scope_map_exists: bool,
    generate: Callable[[], str],
    now: datetime,
) -> TokenOutcome:
    meta = body["metadata"]
    name, namespace = meta["name"], meta["namespace"]
    names = TokenNames(name)
    if len(name) > MAX_NAME_LENGTH:
        raise Permanent(Reason.INVALID_SPEC, f"a token's name is its username: at most {MAX_NAME_LENGTH} characters")
    if name == spec.registry_ref.name:
        raise Permanent(
            Reason.INVALID_SPEC, f"a token cannot be named {name}: that is registry {name}'s admin username"
        )
    outcome = TokenOutcome()
    if registry is None:
        outcome.reason, outcome.message = Reason.DEPENDENCY_NOT_READY, f"Registry {spec.registry_ref.name} not found"
        outcome.status = {"passwords": []}
        return outcome
    limit = access_limit(registry)
    position = quota_position(body, siblings, limit)
    if position is not None:
        outcome.reason = Reason.QUOTA_EXCEEDED
        outcome.message = quota_message("tokens", registry, limit, position) + "; it cannot log in"
        outcome.status = {"passwords": []}
        return outcome
    wanted = [p.name for p in spec.passwords]
    owner = owner_of(body)
    stored = kube.read_child("v1", "Secret", namespace, names.credentials)
    first: PasswordPlan | None = None
    if stored is None:
        # Not cached: new, or the cache lags our own creation (a second reconcile right after the
        # first, e.g. on the Registry's status). Created only if missing and read back otherwise:
        # a password once stored (and maybe already read by the user) is never replaced unasked.
        first = plan_passwords(body, None, wanted, generate, now)
        handled = (HANDLED_REGENERATION_ANNOTATION, first.handled) if first.handled else None
        initial = build_credentials_secret(owner, first.values, first.created, handled)
        stored = kube.create_if_missing("v1", "Secret", namespace, names.credentials, lambda: initial)
        if stored.get("data") != initial["data"]:
            first = None  # another reconcile's were there first: nothing generated here
    elif pending_request(body, stored) is not None:
        # The cache may not show our own last regeneration yet: never regenerate twice.
        stored = kube.get("v1", "Secret", namespace, names.credentials) or stored
    plan = plan_passwords(body, stored, wanted, generate, now)
    if first is not None:
        plan = dataclasses.replace(plan, generated=first.generated)  # stored by this reconcile: new
    if stored is not None and set(stored.get("data") or {}) - {"username", *wanted}:
        # A password removed from spec: server-side apply would keep a key that our apply omits
        # only for a field manager that owned it, and `ensure` sees no difference; start afresh.
        kube.delete("v1", "Secret", namespace, names.credentials)
    handled = (HANDLED_REGENERATION_ANNOTATION, plan.handled) if plan.handled else None
    kube.ensure(build_credentials_secret(owner, plan.values, plan.created, handled))
    servers = login_servers(registry)
    if plan.values and servers:
        kube.ensure(build_token_pull_secret(owner, plan.values[wanted[0]], servers))
    elif kube.read_child("v1", "Secret", namespace, names.pull) is not None:
        kube.delete("v1", "Secret", namespace, names.pull)
    expiry = {p.name: p.expiry for p in spec.passwords}
    outcome.status = {
        "credentialsSecretName": names.credentials,
        "pullSecretName": names.pull if plan.values and servers else None,
        "passwords": [
            {
                "name": n,
                "creationTime": plan.created[n],
                **({"expiry": expiry[n]} if expiry[n] else {}),
                "verifier": password_digest(plan.values[n]),
            }
            for n in wanted
        ],
    }
    if plan.generated:  # one Event, however many passwords (50,000 tokens are 50,000 Events, not 100,000)
        outcome.events.append((EventReason.PASSWORD_GENERATED, f"generated {' and '.join(plan.generated)}"))
    outcome.generated, outcome.regenerated = len(plan.generated), plan.regenerated is not None
    if plan.regenerated:
        outcome.events.append(
            (EventReason.PASSWORD_REGENERATED, f"{plan.regenerated} regenerated; the other password is unchanged")
        )
    scope = spec.scope_map_ref.name
    if plan.values and not servers:
        # Ready promises the pull Secret its status names; the Registry's first status brings the
        # login servers, and that status change re-reconciles this token.
        outcome.reason = Reason.DEPENDENCY_NOT_READY
        outcome.message = (
            f"Registry {spec.registry_ref.name} has no login server yet: pull Secret {names.pull} waits for it"
        )
    elif scope not in SYSTEM_SCOPE_MAPS and not scope_map_exists:
        outcome.reason = Reason.DEPENDENCY_NOT_READY
        outcome.message = f"ScopeMap {scope} not found: the token logs in but may do nothing"
    elif not spec.enabled:
        outcome.ready, outcome.reason = True, Reason.DISABLED
        outcome.message = "enabled is false: every login of this token gets 401"
    elif not wanted:
        outcome.ready, outcome.message = True, "no password: the token cannot log in"
    else:
        outcome.ready = True
        outcome.message = f"log in as {name} with {' or '.join(wanted)} from Secret {names.credentials}"
    return outcome
