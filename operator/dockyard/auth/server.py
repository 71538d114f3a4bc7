"""The token endpoint (`GET /token`) and its health check, as an aiohttp application.

Guarantees: the policy and signing key are re-read when their files change (a mounted Secret
update takes effect without a restart); wrong credentials get 401, so `docker login` fails fast;
requests without credentials get the anonymous grants (possibly none), and so do empty Basic
credentials (`Basic Og==`, user and password both empty, as clients without a login send);
passwords are never logged. With a directory (`auth/directory.py`), a username that is not a
policy user is looked up among the registry's Tokens: a disabled token, an expired or a wrong
password get 401 as ACR's do.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from dockyard.auth.delegation import DELEGATED_USER, verify_delegation
from dockyard.auth.directory import AccessDirectory
from dockyard.auth.grants import Grant, Scope
from dockyard.auth.policy import AuthPolicy
from dockyard.auth.tokens import SigningKey, issue_token, issued_at

log = logging.getLogger("dockyard.auth")

ANONYMOUS = ("", "")
"""Basic credentials that name no one: an anonymous request, not a failed login."""


@dataclass
class _Watched:
    """A file parsed again only when its modification time or size changes."""

    path: Path
    stamp: tuple[float, int] = (0.0, -1)
    text: bytes = b""

    def read(self) -> tuple[bytes, bool]:
        stat = self.path.stat()
        stamp = (stat.st_mtime, stat.st_size)
        changed = stamp != self.stamp
        if changed:
            self.text, self.stamp = self.path.read_bytes(), stamp
        return self.text, changed


@dataclass
class TokenService:
    policy_file: Path
    key_file: Path
    cert_file: Path
    directory: AccessDirectory | None = None
    clock: Callable[[], float] = time.time
    """Judges password expiry; injected by tests."""
    _policy: _Watched = field(init=False)
    _key: _Watched = field(init=False)
    _cert: _Watched = field(init=False)
    _parsed_policy: AuthPolicy | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self._policy, self._key, self._cert = (
            _Watched(self.policy_file),
            _Watched(self.key_file),
            _Watched(self.cert_file),
        )

    def policy(self) -> AuthPolicy:
        text, changed = self._policy.read()
        if changed or self._parsed_policy is None:
            self._parsed_policy = AuthPolicy.model_validate_json(text)
        return self._parsed_policy

    def signing_key(self) -> SigningKey:
        return SigningKey(self._key.read()[0], self._cert.read()[0])

    async def token(self, request: web.Request) -> web.Response:
        policy = self.policy()
        service = request.query.get("service", "")
        if service and service != policy.service:
            return _error(400, "UNSUPPORTED", f"unknown service {service!r}")
        grants: tuple[Grant, ...] = policy.anonymous
        subject = ""
        header = request.headers.get("Authorization", "")
        credentials = _basic_credentials(header) if header else ANONYMOUS
        if credentials is None:
            return _error(401, "UNAUTHORIZED", "malformed Authorization header", challenge=True)
        if credentials != ANONYMOUS and credentials[0] == DELEGATED_USER:
            delegated = verify_delegation(credentials[1], self.signing_key(), service=policy.service)
            if delegated is None:
                log.info("token refused: invalid or expired delegated credential")
                return _error(401, "UNAUTHORIZED", "authentication required", challenge=True)
            subject, delegated_grants = delegated
            grants = grants + delegated_grants
        elif credentials != ANONYMOUS:
            user = policy.authenticate(*credentials)
            if user is not None:
                grants, subject = grants + user.grants, user.username
            else:
                login = self.directory.login(*credentials, self.clock()) if self.directory else None
                if login is None or login.refused is not None:
                    why = "bad credentials" if login is None else login.refused
                    log.info("token refused: %s for user %r", why, credentials[0])
                    return _error(401, "UNAUTHORIZED", "authentication required", challenge=True)
                grants, subject = grants + login.grants, login.subject
        scopes = [
            scope
            for text in request.query.getall("scope", [])
            for part in text.split(" ")
            if (scope := Scope.parse(part))
        ]
        now = time.time()
        token, access = issue_token(
            self.signing_key(),
            issuer=policy.issuer,
            service=policy.service,
            subject=subject,
            grants=grants,
            scopes=scopes,
            ttl_seconds=policy.token_ttl_seconds,
            now=now,
        )
        log.info("token issued to %r: %s", subject or "<anonymous>", json.dumps(access))
        body = {
            "token": token,
            "access_token": token,
            "expires_in": policy.token_ttl_seconds,
            "issued_at": issued_at(now),
        }
        return web.json_response(body)

    async def healthz(self, request: web.Request) -> web.Response:
        self.policy()
        self.signing_key()
        return web.Response(text="ok")


def _basic_credentials(header: str) -> tuple[str, str] | None:
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        username, sep, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (username, password) if sep else None


def _error(status: int, code: str, message: str, *, challenge: bool = False) -> web.Response:
    headers = {"WWW-Authenticate": 'Basic realm="dockyard"'} if challenge else None
    return web.json_response({"errors": [{"code": code, "message": message}]}, status=status, headers=headers)


def build_app(service: TokenService) -> web.Application:
    app = web.Application()
    app.router.add_get("/token", service.token)
    app.router.add_get("/healthz", service.healthz)
    return app
