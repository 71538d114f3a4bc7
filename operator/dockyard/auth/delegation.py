"""Delegated credentials: a password that is itself a grant, signed by the registry's token signer.

A build pod needs to push to exactly the repositories of its run and to pull its base images, which
are not known before the Dockerfile is read. Rather than adding a user to the registry's policy
Secret (a mounted Secret reaches the token service only after the kubelet's sync, up to a minute),
the operator signs a short-lived JWT with the same key the token service signs registry tokens
with, naming the grants and an expiry, and hands it to the pod as the password of the user
`DELEGATED_USER`. Clients (Kaniko, crane, the build pod's context fetcher) do the ordinary token
dance with it; the token service verifies the signature against its own certificate and issues
tokens for the requested scopes within those grants. Nothing is stored, so nothing is left behind:
the credential dies at `exp`.

The audience (`dockyard-delegation:<service>`) keeps a delegation from being accepted as a registry
token and ties it to one registry.
"""

from __future__ import annotations

import secrets
import time
from typing import Final

import jwt
from cryptography import x509
from pydantic import ValidationError

from dockyard.auth.grants import Grant
from dockyard.auth.tokens import SigningKey

DELEGATED_USER: Final = "$dockyard-delegated"
"""The Basic username that marks a delegated credential (`$` cannot start a policy username)."""
AUDIENCE_PREFIX: Final = "dockyard-delegation:"
REPLICATOR_SUBJECT: Final = "$dockyard-replicator"
"""The subject the replication copier works as; distribution reports it as the `actor.name` of
every write the copier makes, which is how replication and webhooks tell a copy from an original
push (`$` cannot start a user name of the registry's policy, so no person can be mistaken for it)."""


def issue_delegation(
    key: SigningKey,
    *,
    service: str,
    subject: str,
    grants: tuple[Grant, ...],
    ttl_seconds: int,
    now: float | None = None,
) -> str:
    issued = int(now if now is not None else time.time())
    claims = {
        "iss": "dockyard-operator",
        "sub": subject,
        "aud": AUDIENCE_PREFIX + service,
        "iat": issued,
        "nbf": issued - 10,
        "exp": issued + ttl_seconds,
        "jti": secrets.token_hex(8),
        "grants": [grant.model_dump(mode="json") for grant in grants],
    }
    return jwt.encode(claims, key.private_key_pem, algorithm=key.algorithm())


def verify_delegation(
    token: str, key: SigningKey, *, service: str, now: float | None = None
) -> tuple[str, tuple[Grant, ...]] | None:
    """(subject, grants) of a valid delegation for this service, else None (bad signature, expired,
    another registry's, malformed)."""
    public_key = x509.load_pem_x509_certificate(key.certificate_pem).public_key()
    try:
        claims = jwt.decode(
            token,
            public_key,  # type: ignore[arg-type]
            algorithms=[key.algorithm()],
            audience=AUDIENCE_PREFIX + service,
            options={"require": ["exp", "sub", "aud"], "verify_exp": now is None, "verify_nbf": now is None},
        )
        if now is not None and not claims.get("nbf", 0) <= now < claims["exp"]:
            return None
        grants = tuple(Grant.model_validate(grant) for grant in claims.get("grants") or [])
    except (jwt.PyJWTError, ValidationError, TypeError, ValueError):
        return None
    return str(claims["sub"]), grants
