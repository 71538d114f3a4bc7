"""Push webhooks from git hosts: which host sent one, whether its signature holds, what it pushed. Pure.

- GitHub: event `X-GitHub-Event: push`, delivery id `X-GitHub-Delivery`, proof
  `X-Hub-Signature-256: sha256=<hex>`, the HMAC-SHA256 of the body keyed with the secret;
- GitLab: event `X-Gitlab-Event: Push Hook`, delivery id `Idempotency-Key` (the same on retries),
  else `X-Gitlab-Event-UUID`, proof `X-Gitlab-Token`: the secret itself;
- Gitea / Forgejo: event `X-Gitea-Event` / `X-Forgejo-Event: push`, delivery id `X-Gitea-Delivery` /
  `X-Forgejo-Delivery`, proof `X-Gitea-Signature` / `X-Forgejo-Signature: <hex>`, HMAC-SHA256 as GitHub's.

Gitea and Forgejo also send GitHub's headers; their own are checked first. Every comparison is in
constant time (`hmac.compare_digest`); a request that names no host, carries no proof or a wrong one
is refused the same way. The secret is used exactly as stored in the Secret (a trailing newline is
part of it).

A push's payload (JSON, the same fields on all three): `ref` (`refs/heads/<branch>`), `after` (the new
head; 40 zeros when the branch was deleted), the repository's default branch (`repository.default_branch`,
GitLab `project.default_branch`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from dockyard.builds.git import FULL_SHA

Host = Literal["github", "gitlab", "gitea"]
HOSTS: Final[tuple[Host, ...]] = ("github", "gitlab", "gitea")


class InvalidPayload(ValueError):
    """A signed request whose body is not a push payload this module can read."""


@dataclass(frozen=True)
class Push:
    host: Host
    delivery: str | None
    ref: str
    commit: str
    """The new head; NO_COMMIT when the branch was deleted."""
    default_branch: str | None


def _lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {key.lower(): value for key, value in headers.items()}


def detect_host(headers: Mapping[str, str]) -> Host | None:
    seen = _lower(headers)
    if "x-gitea-event" in seen or "x-forgejo-event" in seen:
        return "gitea"
    if "x-gitlab-event" in seen:
        return "gitlab"
    if "x-github-event" in seen:
        return "github"
    return None


def sign(secret: bytes, body: bytes) -> str:
    """The hex HMAC-SHA256 of `body` (GitHub prefixes it with `sha256=`)."""
    return hmac.new(secret, body, hashlib.sha256).hexdigest()


def verify(host: Host, headers: Mapping[str, str], body: bytes, secret: bytes) -> bool:
    """Whether the request carries the host's proof of `secret` for `body`."""
    seen = _lower(headers)
    if not secret:
        return False
    if host == "gitlab":
        return hmac.compare_digest(seen.get("x-gitlab-token", "").encode(), secret)
    if host == "gitea":
        presented = seen.get("x-gitea-signature") or seen.get("x-forgejo-signature") or ""
    else:
        header = seen.get("x-hub-signature-256", "")
        presented = header.removeprefix("sha256=") if header.startswith("sha256=") else ""
    if not presented:
        return False
    return hmac.compare_digest(presented.strip().lower().encode(), sign(secret, body).encode())


def event_of(host: Host, headers: Mapping[str, str]) -> str:
    seen = _lower(headers)
    if host == "gitea":
        return seen.get("x-gitea-event") or seen.get("x-forgejo-event") or ""
    return seen.get("x-gitlab-event" if host == "gitlab" else "x-github-event", "")


def delivery_of(host: Host, headers: Mapping[str, str]) -> str | None:
    seen = _lower(headers)
    if host == "github":
        return seen.get("x-github-delivery") or None
    if host == "gitlab":
        return seen.get("idempotency-key") or seen.get("x-gitlab-event-uuid") or None
    return seen.get("x-gitea-delivery") or seen.get("x-forgejo-delivery") or None


def is_push(host: Host, headers: Mapping[str, str]) -> bool:
    return event_of(host, headers) == ("Push Hook" if host == "gitlab" else "push")


def read_push(host: Host, headers: Mapping[str, str], body: bytes) -> Push:
    """The push in a verified request whose event is a push."""
    try:
        payload: Any = json.loads(body)
    except ValueError as error:
        raise InvalidPayload(f"the body is not JSON: {error}") from None
    if not isinstance(payload, dict):
        raise InvalidPayload("the body is not a JSON object")
    ref, after = payload.get("ref"), payload.get("after")
    if not isinstance(ref, str) or not isinstance(after, str) or not FULL_SHA.fullmatch(after):
        raise InvalidPayload("a push payload needs `ref` and a 40-hex `after`")
    repository = payload.get("project" if host == "gitlab" else "repository")
    default = repository.get("default_branch") if isinstance(repository, dict) else None
    return Push(
        host=host,
        delivery=delivery_of(host, headers),
        ref=ref,
        commit=after.lower(),
        default_branch=default if isinstance(default, str) else None,
    )
