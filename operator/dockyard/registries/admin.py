"""The admin user's passwords and the regeneration protocol.

`kubectl annotate registry R dockyard.dev/regenerate-password=password2` regenerates one of the two
passwords; the other keeps working. The annotation value that was handled is recorded on the admin
Secret (`dockyard.dev/handled-regeneration`), so each value regenerates once, whatever the number
of reconciles; a suffix (`password2@2`) asks again.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

REGENERATE_ANNOTATION: Final = "dockyard.dev/regenerate-password"
HANDLED_REGENERATION_ANNOTATION: Final = "dockyard.dev/handled-regeneration"
PASSWORD_KEYS: Final = ("password", "password2")


@dataclass(frozen=True)
class Passwords:
    password: str
    password2: str
    regenerated: str | None = None
    """Which key this reconcile regenerated, if any."""
    handled: str = ""
    """The regeneration request to record as handled ("" when none was made)."""

    @property
    def pair(self) -> tuple[str, str]:
        return self.password, self.password2


def decode(secret: Mapping[str, Any], key: str) -> str:
    return base64.b64decode((secret.get("data") or {}).get(key, "")).decode()


def pending_request(registry: Mapping[str, Any], stored: Mapping[str, Any]) -> str | None:
    """The regeneration request on the Registry that the stored Secret has not handled yet."""
    request = ((registry.get("metadata") or {}).get("annotations") or {}).get(REGENERATE_ANNOTATION, "")
    handled = ((stored.get("metadata") or {}).get("annotations") or {}).get(HANDLED_REGENERATION_ANNOTATION, "")
    return request if request and request != handled else None


def plan_passwords(registry: Mapping[str, Any], stored: Mapping[str, Any], generate: Callable[[], str]) -> Passwords:
    """The passwords to hold after this reconcile (pure but for `generate`)."""
    current = {key: decode(stored, key) for key in PASSWORD_KEYS}
    request = ((registry.get("metadata") or {}).get("annotations") or {}).get(REGENERATE_ANNOTATION, "")
    which = request.split("@", 1)[0].strip()
    regenerated = None
    if pending_request(registry, stored) is not None and which in current:
        current[which] = generate()
        regenerated = which
    return Passwords(current["password"], current["password2"], regenerated, request)
