"""Which events a Webhook selects: its actions, its scope and whether it is enabled.

Scope, after ACR: empty selects every event; `repo:tag` one tag; `repo:*` every tag of `repo` and its
untagged events (push by digest, delete); `repo` alone means `repo:latest`. `*` in the repository
part stands for any run of characters, `/` included, so `team/*` covers `team/app` and `team/a/b`.
An event without a tag (push by digest, manifest or repository delete) matches only scopes whose tag
part is `*`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from .events import RegistryEvent


@dataclass(frozen=True)
class Scope:
    repository: re.Pattern[str] | None
    tag: str | None
    """None: every tag (and untagged events); otherwise the one tag selected."""

    def matches(self, repository: str, tag: str | None) -> bool:
        if self.repository is not None and not self.repository.fullmatch(repository):
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
    pattern = re.compile(".*".join(re.escape(part) for part in repository.split("*")))
    if not tag:
        tag = "latest"
    return Scope(pattern, None if tag == "*" else tag)


@dataclass(frozen=True)
class EventFilter:
    """The part of a Webhook's spec that decides which events it receives."""

    actions: frozenset[str]
    scope: str
    enabled: bool
    location: str | None = None

    def selects(self, event: RegistryEvent, location: str | None = None) -> bool:
        return (
            self.enabled
            and (self.location or None) == (location or None)
            and event.action in self.actions
            and parse_scope(self.scope).matches(event.repository, event.tag)
        )
