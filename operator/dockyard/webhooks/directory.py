"""What the operator knows about each Webhook, for the intake and the dispatcher.

Filled by the Webhook handlers (create, update, resume, drift timer) and, for a namespace whose
handlers have not run yet since start-up, by one listing on first use (`WebhookResolver.load`), so
an event arriving right after a restart is fanned out to every webhook that exists, not only to the
ones already resumed. Thread-safe.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from dataclasses import dataclass

from dockyard.models.webhook import WebhookSpec
from dockyard.webhooks.scope import EventFilter

TOMBSTONE_SECONDS = 3600.0


@dataclass(frozen=True)
class Target:
    """How to reach a receiver. Holds secrets: never log it, never put it in status."""

    url: str
    headers: tuple[tuple[str, str], ...]
    signing_key: bytes

    def redact(self, text: str) -> str:
        """`text` with every secret value of this target replaced by `***`."""
        for secret in (self.url, *(value for _, value in self.headers)):
            if secret and len(secret) >= 4:
                for form in (secret, repr(secret)[1:-1], repr(secret.encode())[2:-1]):
                    text = text.replace(form, "***")
        return text


@dataclass(frozen=True)
class Problem:
    reason: str
    message: str


@dataclass(frozen=True)
class WebhookEntry:
    uid: str
    namespace: str
    name: str
    registry: str
    filter: EventFilter
    max_attempts: int
    timeout_seconds: float
    target: Target | None
    """None while a referenced Secret is missing (`problem` says which); deliveries then fail their
    attempts with that message and are retried."""
    problem: Problem | None = None
    receives_events: bool = True
    """False when the registry is missing or the webhook is beyond the tier's webhook quota."""
    generation: int = 0
    """metadata.generation of the spec this entry was resolved from."""
    spec: WebhookSpec | None = None


class WebhookDirectory:
    """Deleted webhooks leave a tombstone for an hour, so a listing or a handler that read the
    object just before its deletion cannot bring it back."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, WebhookEntry] = {}
        self._loaded: set[str] = set()
        self._removed: dict[str, float] = {}

    def put(self, entry: WebhookEntry) -> None:
        """Store `entry` unless its webhook was deleted or a newer generation is already known
        (handlers of different objects reconcile the same webhook concurrently)."""
        with self._lock:
            current = self._entries.get(entry.uid)
            if entry.uid not in self._removed and (current is None or current.generation <= entry.generation):
                self._entries[entry.uid] = entry

    def replace_target(self, uid: str, generation: int, target: Target) -> WebhookEntry | None:
        """The entry with a re-read target, if it is still the one of `generation`."""
        with self._lock:
            current = self._entries.get(uid)
            if current is None or current.generation != generation:
                return None
            fresh = dataclasses.replace(current, target=target)
            self._entries[uid] = fresh
            return fresh

    def remove(self, uid: str) -> None:
        with self._lock:
            self._entries.pop(uid, None)
            now = time.monotonic()
            self._removed = {k: t for k, t in self._removed.items() if now - t < TOMBSTONE_SECONDS}
            self._removed[uid] = now

    def get(self, uid: str) -> WebhookEntry | None:
        with self._lock:
            return self._entries.get(uid)

    def for_registry(self, namespace: str, registry: str) -> list[WebhookEntry]:
        with self._lock:
            return [e for e in self._entries.values() if e.namespace == namespace and e.registry == registry]

    def is_loaded(self, namespace: str) -> bool:
        with self._lock:
            return namespace in self._loaded

    def load(self, namespace: str, entries: list[WebhookEntry]) -> None:
        """Everything in `namespace` as listed; entries the handlers put meanwhile are kept as the
        newer truth."""
        with self._lock:
            if namespace in self._loaded:
                return
            for entry in entries:
                if entry.uid not in self._removed:
                    self._entries.setdefault(entry.uid, entry)
            self._loaded.add(namespace)
