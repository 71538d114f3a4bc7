"""The token service's view of one registry's Tokens and ScopeMaps, and the login decision.

Fed by the API watch (`auth/watch.py`) with raw objects, it keeps only what a login needs: per
token its scope map, whether it is enabled and its passwords (verifier from status, expiry from
spec, so a new expiry or `enabled: false` applies without the operator); per scope map its grants.
A login is two dictionary lookups and one SHA-256. Tokens and ScopeMaps of other registries are
ignored (`registryRef`): every replica of a registry watches the same objects, so a token works on
each of them.

Decisions, as ACR's: an unknown username is not a token (the caller answers 401); a disabled token,
a wrong password or an expired one is refused (401); a token whose scope map is missing or over the
tier's quota logs in with no permission. The directory is serialised whole as the local snapshot.
"""

from __future__ import annotations

import hmac
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal

from dockyard.auth.grants import Grant
from dockyard.auth.policy import password_digest
from dockyard.auth.scopemaps import grants_for, system_scope_map_actions
from dockyard.core.conditions import ConditionType, Reason

TOKEN: Final = "Token"
SCOPE_MAP: Final = "ScopeMap"

DEFAULT_PASSWORDS: Final = ({"name": "password1"}, {"name": "password2"})
Refusal = Literal["disabled", "expired", "bad-password"]


@dataclass(frozen=True)
class PasswordRecord:
    name: str
    verifier: str
    expiry: float | None


@dataclass(frozen=True)
class TokenRecord:
    name: str
    scope_map: str
    enabled: bool
    passwords: tuple[PasswordRecord, ...]


@dataclass(frozen=True)
class ScopeMapRecord:
    name: str
    actions: tuple[str, ...]
    usable: bool
    grants: tuple[Grant, ...]


@dataclass(frozen=True)
class Login:
    """The outcome for a token's username: grants, or why it is refused."""

    subject: str
    grants: tuple[Grant, ...] = ()
    refused: Refusal | None = None


def _time(text: Any) -> float | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0  # unreadable expiry: treat as expired rather than as never


def _over_quota(body: Mapping[str, Any]) -> bool:
    for condition in (body.get("status") or {}).get("conditions") or ():
        if condition.get("type") == ConditionType.READY and condition.get("reason") == Reason.QUOTA_EXCEEDED:
            return True
    return False


def token_record(body: Mapping[str, Any]) -> TokenRecord:
    spec, status = body.get("spec") or {}, body.get("status") or {}
    verifiers = {p.get("name"): p.get("verifier") for p in status.get("passwords") or () if p.get("verifier")}
    passwords = tuple(
        PasswordRecord(p["name"], verifiers[p["name"]], _time(p.get("expiry")))
        # the CRD's default (both, no expiry) when absent, as the API server fills it
        for p in spec.get("passwords", DEFAULT_PASSWORDS) or ()
        if p.get("name") in verifiers
    )
    return TokenRecord(
        name=body["metadata"]["name"],
        scope_map=str((spec.get("scopeMapRef") or {}).get("name") or ""),
        enabled=bool(spec.get("enabled", True)),
        passwords=passwords if not _over_quota(body) else (),
    )


def scope_map_record(body: Mapping[str, Any]) -> ScopeMapRecord:
    actions = tuple(str(a) for a in (body.get("spec") or {}).get("actions") or ())
    try:
        grants = grants_for(actions)
    except ValueError:
        grants = ()  # the API server validates actions; an old or hand-written object grants nothing
    usable = not _over_quota(body)
    return ScopeMapRecord(body["metadata"]["name"], actions, usable, grants if usable else ())


SYSTEM_GRANTS: Final = {
    name: grants_for(system_scope_map_actions(name) or ())
    for name in (
        "_repositories_pull",
        "_repositories_pull_metadata_read",
        "_repositories_push",
        "_repositories_push_metadata_write",
        "_repositories_admin",
    )
}


class AccessDirectory:
    """Thread-safe: the watch writes from the event loop, a benchmark may read from threads."""

    def __init__(self, registry: str) -> None:
        self.registry = registry
        self._lock = threading.Lock()
        self.tokens: dict[str, TokenRecord] = {}
        self.scope_maps: dict[str, ScopeMapRecord] = {}
        self.revision = 0
        """Bumped on every change: the snapshot writer's cue."""

    def _mine(self, body: Mapping[str, Any]) -> bool:
        return ((body.get("spec") or {}).get("registryRef") or {}).get("name") == self.registry

    def apply(self, kind: str, event: str, body: Mapping[str, Any]) -> None:
        """One watch event (ADDED, MODIFIED, DELETED) of a Token or ScopeMap."""
        name = body["metadata"]["name"]
        with self._lock:
            table: dict[str, Any] = self.tokens if kind == TOKEN else self.scope_maps
            if event == "DELETED" or not self._mine(body):
                if table.pop(name, None) is not None:
                    self.revision += 1
                return
            record = token_record(body) if kind == TOKEN else scope_map_record(body)
            if table.get(name) != record:
                table[name] = record
                self.revision += 1

    def replace(self, kind: str, bodies: Iterable[Mapping[str, Any]]) -> None:
        """A full listing of one kind: what is not in it is gone."""
        if kind == TOKEN:
            tokens = {b["metadata"]["name"]: token_record(b) for b in bodies if self._mine(b)}
            with self._lock:
                if tokens != self.tokens:
                    self.tokens, self.revision = tokens, self.revision + 1
        else:
            maps = {b["metadata"]["name"]: scope_map_record(b) for b in bodies if self._mine(b)}
            with self._lock:
                if maps != self.scope_maps:
                    self.scope_maps, self.revision = maps, self.revision + 1

    def grants_of(self, scope_map: str) -> tuple[Grant, ...]:
        system = SYSTEM_GRANTS.get(scope_map)
        if system is not None:
            return system
        record = self.scope_maps.get(scope_map)
        return record.grants if record is not None else ()

    def login(self, username: str, password: str, now: float) -> Login | None:
        """None when `username` names no token of this registry."""
        token = self.tokens.get(username)
        if token is None:
            return None
        if not token.enabled:
            return Login(username, refused="disabled")
        digest = password_digest(password)
        matched = [p for p in token.passwords if hmac.compare_digest(p.verifier, digest)]
        if not matched:
            return Login(username, refused="bad-password")
        if all(p.expiry is not None and p.expiry <= now for p in matched):
            return Login(username, refused="expired")
        return Login(username, self.grants_of(token.scope_map))

    # The snapshot: the records as JSON-ready data (never a password: verifiers only).
    def to_snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "registry": self.registry,
                "tokens": [
                    {
                        "name": t.name,
                        "scopeMap": t.scope_map,
                        "enabled": t.enabled,
                        "passwords": [
                            {"name": p.name, "verifier": p.verifier, "expiry": p.expiry} for p in t.passwords
                        ],
                    }
                    for t in self.tokens.values()
                ],
                "scopeMaps": [
                    {"name": m.name, "actions": list(m.actions), "usable": m.usable} for m in self.scope_maps.values()
                ],
            }

    def load_snapshot(self, data: Mapping[str, Any]) -> None:
        if data.get("registry") != self.registry:
            raise ValueError(f"snapshot of registry {data.get('registry')!r}, not {self.registry!r}")
        tokens = {
            t["name"]: TokenRecord(
                t["name"],
                t["scopeMap"],
                bool(t["enabled"]),
                tuple(PasswordRecord(p["name"], p["verifier"], p.get("expiry")) for p in t["passwords"]),
            )
            for t in data.get("tokens") or ()
        }
        maps = {}
        for m in data.get("scopeMaps") or ():
            actions, usable = tuple(m["actions"]), bool(m["usable"])
            maps[m["name"]] = ScopeMapRecord(m["name"], actions, usable, grants_for(actions) if usable else ())
        with self._lock:
            self.tokens, self.scope_maps, self.revision = tokens, maps, self.revision + 1
