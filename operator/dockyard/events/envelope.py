"""Distribution's notification envelope turned into ACR-shaped registry events.

Distribution posts `{"events": [...]}` for every blob and manifest it touches, pulls included. Users
want ACR's view: one `push` per manifest pushed (by tag or by digest) and one `delete` per manifest
or repository deleted. So:
- `push` of a manifest (its URL names `/manifests/`, or its media type is a manifest type) is kept;
  blob pushes are dropped;
- `delete` without a tag is kept (a manifest delete carries the digest, a repository delete only the
  repository); the per-tag deletes distribution adds for the same request are dropped;
- `pull` and `mount` are dropped.
Distribution 2.8 reports a blob deleted through the API exactly like a manifest delete (repository
and digest, nothing else), so such a rare request shows up as a `delete` too. Both 2.8 (envelope
media type `…events.v1+json`) and 3.x (`…events.v2+json`) are read the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

EventAction = Literal["push", "delete"]

MANIFEST_MEDIA_TYPES = frozenset(
    {
        "application/vnd.docker.distribution.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v1+prettyjws",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.artifact.manifest.v1+json",
    }
)


@dataclass(frozen=True)
class RegistryEvent:
    """One user-facing registry event, as ACR describes it."""

    id: str
    timestamp: str
    action: EventAction
    repository: str
    tag: str | None = None
    digest: str | None = None
    media_type: str | None = None
    size: int | None = None
    length: int | None = None
    request_id: str | None = None
    request_host: str | None = None
    request_method: str | None = None
    useragent: str | None = None
    actor: str | None = None
    """Who did it: the subject of the registry token (distribution's `actor.name`)."""

    @property
    def target_name(self) -> str:
        """repository:tag, repository@digest or repository: what the event is about, for status."""
        if self.tag:
            return f"{self.repository}:{self.tag}"
        if self.digest:
            return f"{self.repository}@{self.digest}"
        return self.repository


def _is_manifest(target: dict[str, Any]) -> bool:
    url = str(target.get("url") or "")
    return "/manifests/" in url or target.get("mediaType") in MANIFEST_MEDIA_TYPES


def _user_facing(raw: dict[str, Any]) -> EventAction | None:
    action, target = raw.get("action"), raw.get("target") or {}
    if not target.get("repository") or not raw.get("id"):
        return None
    if action == "push" and _is_manifest(target):
        return "push"
    if action == "delete" and not target.get("tag") and "/blobs/" not in str(target.get("url") or ""):
        return "delete"
    return None


def events_from_envelope(envelope: Any) -> list[RegistryEvent]:
    """The user-facing events of one notification envelope, in order; anything else is dropped."""
    raw_events = envelope.get("events") if isinstance(envelope, dict) else None
    if not isinstance(raw_events, list):
        raise ValueError("a notification envelope is an object with an `events` list")
    events = []
    for raw in raw_events:
        if not isinstance(raw, dict):
            continue
        action = _user_facing(raw)
        if action is None:
            continue
        target, request = raw.get("target") or {}, raw.get("request") or {}
        # A delete names what is gone; distribution 3.x adds `"size": 0`, which describes nothing.
        sized = action == "push"
        events.append(
            RegistryEvent(
                id=str(raw["id"]),
                timestamp=str(raw.get("timestamp") or ""),
                action=action,
                repository=str(target["repository"]),
                tag=target.get("tag") or None,
                digest=target.get("digest") or None,
                media_type=target.get("mediaType") or None,
                size=target.get("size") if sized else None,
                length=target.get("length") if sized else None,
                request_id=request.get("id"),
                request_host=request.get("host"),
                request_method=request.get("method"),
                useragent=request.get("useragent"),
                actor=_actor(raw),
            )
        )
    return events


def _actor(raw: dict[str, Any]) -> str | None:
    actor = raw.get("actor")
    name = actor.get("name") if isinstance(actor, dict) else None
    return str(name) if name else None


def tag_deletes_from_envelope(envelope: Any) -> list[RegistryEvent]:
    """The per-tag deletes of an envelope (`DELETE /v2/<repo>/manifests/<tag>`, and the untags
    distribution adds to a manifest delete), which `events_from_envelope` leaves out: ACR's view has
    no such event, but replication must carry an untag to every replica."""
    raw_events = envelope.get("events") if isinstance(envelope, dict) else None
    deletes = []
    for raw in raw_events if isinstance(raw_events, list) else []:
        if not isinstance(raw, dict) or raw.get("action") != "delete" or not raw.get("id"):
            continue
        target = raw.get("target") or {}
        if not target.get("repository") or not target.get("tag"):
            continue
        deletes.append(
            RegistryEvent(
                id=str(raw["id"]),
                timestamp=str(raw.get("timestamp") or ""),
                action="delete",
                repository=str(target["repository"]),
                tag=str(target["tag"]),
                digest=target.get("digest") or None,
                actor=_actor(raw),
            )
        )
    return deletes
