"""The one interface between the event intake and whatever consumes registry events."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from dockyard.events.envelope import RegistryEvent


@dataclass(frozen=True)
class EventBatch:
    """The user-facing events of one envelope from one registry, in the registry's order."""

    namespace: str
    registry: str
    events: tuple[RegistryEvent, ...]
    location: str | None = None
    """The replica that posted it (a Replication's location); None for the registry itself."""
    tag_deletes: tuple[RegistryEvent, ...] = ()
    """Per-tag deletes (not user-facing events; replication needs them), in the registry's order."""


class Subscriber(Protocol):
    """A consumer of registry events.

    `prepare` runs on the intake's event loop before `accept` and may load what the subscriber
    needs (it must not block). `accept` runs on the intake's commit thread and must make the
    subscriber's share durable before it returns, or raise: the envelope is then refused with 503
    and posted again by the registry, so `accept` must be idempotent per event id.
    """

    name: str

    async def prepare(self, namespace: str) -> None: ...

    def accept(self, batch: EventBatch) -> None: ...
