"""The token endpoint over HTTP (aiohttp's test server): who gets which grants, and who gets a 401."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path
from typing import Any

import jwt
from aiohttp.test_utils import TestClient, TestServer

from dockyard.auth.grants import Grant
from dockyard.auth.policy import AuthPolicy, Credential, password_digest
from dockyard.auth.server import TokenService, build_app
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
