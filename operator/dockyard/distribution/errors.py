"""What goes wrong talking to a registry, as a small tree (see `dockyard.distribution.client`).

DistributionError                  anything below; `str()` is one line, never a secret
├── RegistryUnreachable            no answer: DNS, connect, TLS verification, timeout
│   └── RegistryThrottled          429: asked to come back later (`retry_after` seconds, if said)
├── RegistryUnauthorized           401/403 after authenticating, or the token realm refused us
├── RegistryNotFound               404: repository, manifest or blob unknown
└── RegistryProtocolError          an answer that breaks the protocol (unexpected status, bad
    └── DigestMismatch             challenge, bad JSON, content that is not what its digest says)
"""

from __future__ import annotations


class DistributionError(Exception):
    """A registry request failed; the message names the request, never a credential."""


class RegistryUnreachable(DistributionError):
    """The registry (or its token realm) did not answer: DNS, connection, TLS or timeout."""


class RegistryThrottled(RegistryUnreachable):
    """429 Too Many Requests; `retry_after` is the registry's `Retry-After` in seconds, if it gave one."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RegistryUnauthorized(DistributionError):
    """Credentials missing, wrong, or without the access the request needs."""


class RegistryNotFound(DistributionError):
    """The repository, manifest or blob does not exist."""


class RegistryProtocolError(DistributionError):
    """The registry answered something the protocol does not allow here."""


class DigestMismatch(RegistryProtocolError):
    """Content whose sha256 is not the digest it was asked for or announced with."""
