"""Which events a Webhook selects: its actions, its scope, whether it is enabled and its location.

Location, with replicas (Replications): a Webhook with `location` receives what lands in that
replica, the replication copier's writes included (as ACR's per-replica webhooks); a Webhook
without `location` receives each original push or delete once, wherever it was made (the home or
any replica), and never the copies of it landing elsewhere (they are the copier's writes: their
actor is `REPLICATOR_SUBJECT`). Without replicas both are the registry's own events.

Scope, after ACR: empty selects every event; `repo:tag` one tag; `repo:*` every tag of `repo` and its
untagged events (push by digest, delete); `repo` alone means `repo:latest`. `*` in the repository
part stands for any run of characters, `/` included, so `team/*` covers `team/app` and `team/a/b`.
An event without a tag (push by digest, manifest or repository delete) matches only scopes whose tag
part is `*`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from dockyard.auth.delegation import REPLICATOR_SUBJECT
from dockyard.events.envelope import RegistryEvent


def glob_match(parts: tuple[str, ...], text: str) -> bool:
    """Whether `text` is parts[0] + anything + parts[1] + … + anything + parts[-1]. Linear in the
    length of `text` (first fit left to right is always right for `*`-only patterns), unlike a
    backtracking regex, which a scope such as `*a*a*a*a*b` on a long name would stall for minutes."""
    if len(parts) == 1:
        return text == parts[0]
    first, *middle, last = parts
    if not text.startswith(first) or len(text) < len(first) + len(last) or not text.endswith(last):
        return False
    position, end = len(first), len(text) - len(last)
    for part in middle:
        found = text.find(part, position, end)
        if found < 0:
            return False
        position = found + len(part)
    return True


@dataclass(frozen=True)
class Scope:
    repository: tuple[str, ...] | None
    """The repository pattern split at `*`; None: every repository."""
    tag: str | None
    """None: every tag (and untagged events); otherwise the one tag selected."""

    def matches(self, repository: str, tag: str | None) -> bool:
        if self.repository is not None and not glob_match(self.repository, repository):
            return False
        if self.tag is None:
            return True
        return tag == self.tag


@lru_cache(maxsize=4096)
def parse_scope(text: str) -> Scope:
    text = text.strip()
    if not text:
        return Scope(None, None)
    repository, _, tag = text.partition(":")
    if not tag:
        tag = "latest"
    return Scope(tuple(repository.split("*")), None if tag == "*" else tag)


@dataclass(frozen=True)
class EventFilter:
    """The part of a Webhook's spec that decides which events it receives."""

    actions: frozenset[str]
    scope: str
    enabled: bool
    location: str | None = None

    def selects(self, event: RegistryEvent, location: str | None = None) -> bool:
        """`location`: the replica the event happened in (None: the registry itself)."""
        # with a location: what lands there; without: originals only, wherever they were made
        in_place = self.location == location if self.location else event.actor != REPLICATOR_SUBJECT
        return (
            self.enabled
            and in_place
            and event.action in self.actions
            and parse_scope(self.scope).matches(event.repository, event.tag)
        )
