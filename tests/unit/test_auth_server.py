"""The token endpoint over HTTP (aiohttp's test server): who gets which grants, and who gets a 401."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import jwt
from aiohttp.test_utils import TestClient, TestServer

from dockyard.auth.delegation import DELEGATED_USER, issue_delegation, verify_delegation
from dockyard.auth.grants import Grant
from dockyard.auth.policy import AuthPolicy, Credential, password_digest
from dockyard.auth.server import TokenService, build_app
from dockyard.auth.tokens import SigningKey
from dockyard.core.pki import issue_signing_key

KEY = issue_signing_key("test signer")
SCOPE = "repository:team/app:pull,push"
ADMIN = Credential(
    username="admin",
    password_digests=(password_digest("secret"),),
    grants=(Grant(repositories="*", actions=("push",)),),
)
ANONYMOUS_PULL = (Grant(repositories="*", actions=("pull",)),)


def _basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def _request(tmp_path: Path, anonymous: tuple[Grant, ...], authorization: str | None) -> tuple[int, dict[str, Any]]:
    """GET /token for SCOPE; the status and the body (the token's access claim under `access`)."""
    policy = AuthPolicy(service="svc", issuer="dockyard", anonymous=anonymous, users=(ADMIN,))
    (tmp_path / "policy.json").write_text(policy.model_dump_json())
    (tmp_path / "key.pem").write_bytes(KEY.key_pem)
    (tmp_path / "cert.pem").write_bytes(KEY.cert_pem)
    service = TokenService(tmp_path / "policy.json", tmp_path / "key.pem", tmp_path / "cert.pem")

    async def main() -> tuple[int, dict[str, Any]]:
        async with TestClient(TestServer(build_app(service))) as client:
            headers = {"Authorization": authorization} if authorization is not None else {}
            response = await client.get("/token", params={"service": "svc", "scope": SCOPE}, headers=headers)
            body = await response.json()
        if response.status == 200:
            claims = jwt.decode(body["token"], options={"verify_signature": False})
            body["access"], body["sub"] = claims["access"], claims["sub"]
        return response.status, body

    return asyncio.run(main())


def _actions(body: dict[str, Any]) -> list[str]:
    return [action for entry in body["access"] for action in entry["actions"]]


def test_empty_basic_credentials_are_anonymous(tmp_path: Path) -> None:
    """`Basic Og==` (":" - what a client without a login sends) gets the anonymous grants, not a 401."""
    assert _basic("", "") == "Basic Og=="
    status, body = _request(tmp_path, ANONYMOUS_PULL, _basic("", ""))
    assert status == 200, body
    assert _actions(body) == ["pull"] and body["sub"] == ""
    status, body = _request(tmp_path, (), _basic("", ""))
    assert status == 200, body
    assert body["access"] == []


def test_no_credentials_are_anonymous(tmp_path: Path) -> None:
    status, body = _request(tmp_path, ANONYMOUS_PULL, None)
    assert status == 200 and _actions(body) == ["pull"]


def test_a_user_gets_its_grants(tmp_path: Path) -> None:
    status, body = _request(tmp_path, ANONYMOUS_PULL, _basic("admin", "secret"))
    assert status == 200 and _actions(body) == ["pull", "push"] and body["sub"] == "admin"


def test_wrong_or_half_empty_credentials_are_refused(tmp_path: Path) -> None:
    for authorization in (
        _basic("admin", "wrong"),
        _basic("admin", ""),
        _basic("", "secret"),
        _basic("nobody", ""),
        "Basic not-base64!",
        "Bearer abc",
        "Basic " + base64.b64encode(b"no-colon").decode(),
    ):
        status, body = _request(tmp_path, ANONYMOUS_PULL, authorization)
        assert status == 401, (authorization, body)
        assert body["errors"][0]["code"] == "UNAUTHORIZED"


def _delegation(grants: tuple[Grant, ...], *, service: str = "svc", ttl: int = 600, key: Any = KEY) -> str:
    signer = SigningKey(key.key_pem, key.cert_pem)
    return issue_delegation(signer, service=service, subject="buildrun:ns/app-1", grants=grants, ttl_seconds=ttl)


def test_a_delegated_credential_gets_exactly_its_grants() -> None:
    """A build run's credential: push on its own repository, pull elsewhere, nothing more."""
    grants = (Grant(repositories="team/app", actions=("push",)), Grant(repositories="*", actions=("pull",)))
    password = _delegation(grants)
    with TemporaryDirectory() as tmp:
        status, body = _request(Path(tmp), (), _basic(DELEGATED_USER, password))
    assert status == 200, body
    assert _actions(body) == ["pull", "push"] and body["sub"] == "buildrun:ns/app-1"
    other = _delegation((Grant(repositories="team/other", actions=("push",)),))
    with TemporaryDirectory() as tmp:
        status, body = _request(Path(tmp), (), _basic(DELEGATED_USER, other))
    assert status == 200 and body["access"] == []


def test_delegations_that_are_expired_forged_or_for_another_registry_are_refused() -> None:
    grants = (Grant(repositories="*", actions=("push",)),)
    for password in (
        _delegation(grants, ttl=-30),
        _delegation(grants, service="another-registry"),
        _delegation(grants, key=issue_signing_key("someone else")),
        "not-a-jwt",
    ):
        with TemporaryDirectory() as tmp:
            status, body = _request(Path(tmp), ANONYMOUS_PULL, _basic(DELEGATED_USER, password))
        assert status == 401, body


def test_verify_delegation_checks_the_clock_it_is_given() -> None:
    signer = SigningKey(KEY.key_pem, KEY.cert_pem)
    grants = (Grant(repositories="a", actions=("pull",)),)
    token = issue_delegation(signer, service="svc", subject="s", grants=grants, ttl_seconds=60, now=1000)
    assert verify_delegation(token, signer, service="svc", now=1030) == ("s", grants)
    assert verify_delegation(token, signer, service="svc", now=1061) is None
    assert verify_delegation(token, signer, service="other", now=1030) is None
