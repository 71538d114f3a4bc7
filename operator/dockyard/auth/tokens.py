"""Signed bearer tokens in the form CNCF distribution verifies (2.8 and 3.x).

The header carries both `kid` (libtrust fingerprint, which 2.8 looks up) and `x5c` (the signing
certificate, which both versions verify against `rootcertbundle`). `aud` is a string: 2.8 rejects
an array.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from dockyard.auth.grants import Grant, Scope, allowed_actions


def libtrust_key_id(public_key: Any) -> str:
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    encoded = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode().rstrip("=")
    return ":".join(encoded[i : i + 4] for i in range(0, 48, 4))


@functools.lru_cache(maxsize=8)
def _private_key(pem: bytes) -> Any:
    """Parsed once per key (a login signs with it; parsing costs more than signing)."""
    return serialization.load_pem_private_key(pem, password=None)


@functools.lru_cache(maxsize=8)
def _header(pem: bytes) -> tuple[str, str]:
    cert = x509.load_pem_x509_certificate(pem)
    der = cert.public_bytes(serialization.Encoding.DER)
    return libtrust_key_id(cert.public_key()), base64.b64encode(der).decode()


@dataclass(frozen=True)
class SigningKey:
    private_key_pem: bytes
    certificate_pem: bytes

    def private_key(self) -> Any:
        return _private_key(self.private_key_pem)

    def algorithm(self) -> str:
        return "ES256" if isinstance(self.private_key(), ec.EllipticCurvePrivateKey) else "RS256"

    def header(self) -> dict[str, Any]:
        kid, der = _header(self.certificate_pem)
        return {"kid": kid, "x5c": [der]}


def issue_token(
    key: SigningKey,
    *,
    issuer: str,
    service: str,
    subject: str,
    grants: tuple[Grant, ...],
    scopes: list[Scope],
    ttl_seconds: int,
    now: float | None = None,
) -> tuple[str, list[dict[str, Any]]]:
    issued = int(now if now is not None else time.time())
    access = []
    for scope in scopes:
        actions = allowed_actions(grants, scope)
        if actions:
            access.append({"type": scope.type, "name": scope.name, "actions": actions})
    claims = {
        "iss": issuer,
        "sub": subject,
        "aud": service,
        "exp": issued + ttl_seconds,
        "nbf": issued - 10,
        "iat": issued,
        "jti": secrets.token_hex(16),
        "access": access,
    }
    token = jwt.encode(claims, key.private_key(), algorithm=key.algorithm(), headers=key.header())
    return token, access


def issued_at(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
