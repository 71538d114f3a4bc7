"""Tokens and scope maps in the token service: ACR actions as grants, the directory fed by watch
events, the login decision (disabled, expired, wrong password) with a clock the test holds, the
snapshot, and the endpoint answering 401 as ACR does."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path
from typing import Any

import jwt
import pytest
from aiohttp.test_utils import TestClient, TestServer
from pydantic import ValidationError

from dockyard.auth.directory import SCOPE_MAP, TOKEN, AccessDirectory
from dockyard.auth.grants import Grant, Scope, allowed_actions
from dockyard.auth.policy import AuthPolicy, password_digest
from dockyard.auth.scopemaps import grants_for, split_action, system_scope_map_actions, unenforced
from dockyard.auth.server import TokenService, build_app
from dockyard.auth.watch import Snapshot
from dockyard.core.pki import issue_signing_key
from dockyard.models.access import ScopeMapSpec, TokenSpec

NOW = 1_799_990_000.0
EXPIRY = 1_800_000_000.0  # 2027-01-15T08:00:00Z, password1 of `ci`
KEY = issue_signing_key("test signer")


def scope_map(name: str, actions: list[str], registry: str = "reg", reason: str | None = None) -> dict[str, Any]:
    status = {"conditions": [{"type": "Ready", "status": "False", "reason": reason}]} if reason else {}
    return {
        "metadata": {"name": name},
        "spec": {"registryRef": {"name": registry}, "actions": actions},
        "status": status,
    }


def token(
    name: str,
    scope: str,
    passwords: dict[str, str],
    *,
    expiry: dict[str, str] | None = None,
    enabled: bool = True,
    registry: str = "reg",
    reason: str | None = None,
) -> dict[str, Any]:
    expiry = expiry or {}
    status: dict[str, Any] = {
        "passwords": [{"name": n, "verifier": password_digest(p)} for n, p in passwords.items()],
    }
    if reason:
        status["conditions"] = [{"type": "Ready", "status": "False", "reason": reason}]
    return {
        "metadata": {"name": name},
        "spec": {
            "registryRef": {"name": registry},
            "scopeMapRef": {"name": scope},
            "enabled": enabled,
            "passwords": [{"name": n, **({"expiry": expiry[n]} if n in expiry else {})} for n in passwords],
        },
        "status": status,
    }


def allowed(grants: tuple[Grant, ...], scope: str) -> list[str]:
    parsed = Scope.parse(scope)
    assert parsed is not None
    return allowed_actions(grants, parsed)


# --- models (admission patterns, also in the CRD) ---


@pytest.mark.parametrize(
    "action",
    [
        "repositories/*/content/read",
        "repositories/team/*/content/write",
        "repositories/team/app/content/delete",
        "repositories/a.b/c-d/e__f/metadata/read",
        "repositories/x/metadata/write",
    ],
)
def test_valid_scope_map_actions(action: str) -> None:
    ScopeMapSpec.model_validate({"registryRef": {"name": "r"}, "actions": [action]})


@pytest.mark.parametrize(
    "action",
    [
        "repositories/a*/content/read",
        "repositories/a/*/b/content/read",
        "repositories/*/*/content/read",
        "repositories/Team/content/read",
        "repositories/team/content/execute",
        "repositories//content/read",
        "team/content/read",
        "repositories/team/*/",
    ],
)
def test_invalid_scope_map_actions_are_refused(action: str) -> None:
    with pytest.raises(ValidationError):
        ScopeMapSpec.model_validate({"registryRef": {"name": "r"}, "actions": [action]})


def test_token_defaults_and_system_scope_maps() -> None:
    spec = TokenSpec.model_validate({"registryRef": {"name": "r"}, "scopeMapRef": {"name": "_repositories_admin"}})
    assert [p.name for p in spec.passwords] == ["password1", "password2"] and spec.enabled
    with pytest.raises(ValidationError):
        TokenSpec.model_validate({"registryRef": {"name": "r"}, "scopeMapRef": {"name": "_repositories_everything"}})
    with pytest.raises(ValidationError):
        TokenSpec.model_validate(
            {"registryRef": {"name": "r"}, "scopeMapRef": {"name": "m"}, "passwords": [{"name": "password3"}]}
        )


# --- ACR actions as grants ---


def test_split_action() -> None:
    assert split_action("repositories/team/*/content/read") == ("team/*", "content/read")
    assert split_action("repositories/*/metadata/write") == ("*", "metadata/write")
    with pytest.raises(ValueError):
        split_action("repositories/team/content/run")


def test_rules_add_up_as_in_acr() -> None:
    """ACR's example: sample/* read + sample/teamA/* write + an exact delete -> all three there."""
    grants = grants_for(
        [
            "repositories/sample/*/content/read",
            "repositories/sample/teamA/*/content/write",
            "repositories/sample/teamA/projectB/content/delete",
        ]
    )
    assert allowed(grants, "repository:sample/teamA/projectB:pull,push,delete") == ["pull", "push", "delete"]
    assert allowed(grants, "repository:sample/teamA/other:pull,push,delete") == ["pull", "push"]
    assert allowed(grants, "repository:sample/x:pull,push,delete") == ["pull"]
    assert allowed(grants, "repository:other:pull") == []
    # A wildcard covers repositories not created yet; `team/*` is not `team` itself nor `teamx/`.
    assert allowed(grants, "repository:sample/new/one:pull") == ["pull"]
    assert allowed(grants, "repository:sample:pull") == []
    assert allowed(grants_for(["repositories/team/*/content/read"]), "repository:teamx/a:pull") == []


def test_metadata_actions_never_become_content_actions() -> None:
    grants = grants_for(["repositories/team/*/metadata/read", "repositories/team/*/metadata/write"])
    assert allowed(grants, "repository:team/app:pull,push,delete") == []
    assert allowed(grants, "repository:team/app:metadata_read,metadata_write") == ["metadata_read", "metadata_write"]
    assert allowed(grants, "registry:catalog:*") == []
    assert len(unenforced(["repositories/team/*/metadata/read", "repositories/team/*/metadata/write"])) == 2


def test_metadata_read_on_everything_lists_the_catalog() -> None:
    grants = grants_for(["repositories/*/metadata/read"])
    assert allowed(grants, "registry:catalog:*") == ["*"]
    assert unenforced(["repositories/*/metadata/read", "repositories/*/content/read"]) == []


@pytest.mark.parametrize(
    ("name", "actions", "catalog"),
    [
        ("_repositories_pull", ["pull"], []),
        ("_repositories_pull_metadata_read", ["metadata_read", "pull"], ["*"]),
        ("_repositories_push", ["pull", "push"], []),
        ("_repositories_push_metadata_write", ["metadata_read", "metadata_write", "pull", "push"], ["*"]),
        ("_repositories_admin", ["delete", "metadata_read", "metadata_write", "pull", "push"], ["*"]),
    ],
)
def test_system_scope_maps(name: str, actions: list[str], catalog: list[str]) -> None:
    grants = grants_for(system_scope_map_actions(name) or ())
    assert sorted(allowed(grants, "repository:any/repo:*")) == actions
    assert allowed(grants, "registry:catalog:*") == catalog
    assert system_scope_map_actions("_nope") is None


# --- the directory and the login decision ---


def directory() -> AccessDirectory:
    d = AccessDirectory("reg")
    d.replace(SCOPE_MAP, [scope_map("team", ["repositories/team/*/content/read"])])
    d.replace(
        TOKEN,
        [
            token("ci", "team", {"password1": "p1", "password2": "p2"}, expiry={"password1": "2027-01-15T08:00:00Z"}),
            token("ops", "_repositories_admin", {"password1": "o1"}),
            token("off", "team", {"password1": "f1"}, enabled=False),
            token("other", "team", {"password1": "x1"}, registry="another"),
        ],
    )
    return d


def test_login_outcomes() -> None:
    d = directory()
    ci = d.login("ci", "p1", NOW)
    assert ci is not None and ci.refused is None and ci.grants == d.grants_of("team")
    assert d.login("ci", "wrong", NOW).refused == "bad-password"  # type: ignore[union-attr]
    assert d.login("off", "f1", NOW).refused == "disabled"  # type: ignore[union-attr]
    assert d.login("other", "x1", NOW) is None  # another registry's token is no token here
    assert d.login("nobody", "p1", NOW) is None
    ops = d.login("ops", "o1", NOW)
    assert ops is not None and allowed(ops.grants, "repository:x:delete") == ["delete"]


def test_expiry_follows_the_clock() -> None:
    d = directory()
    expiry = EXPIRY
    assert d.login("ci", "p1", expiry - 1).refused is None  # type: ignore[union-attr]
    assert d.login("ci", "p1", expiry).refused == "expired"  # type: ignore[union-attr]
    assert d.login("ci", "p2", expiry + 10**6).refused is None  # type: ignore[union-attr]


def test_watch_events_change_logins_at_once() -> None:
    d = directory()
    d.apply(SCOPE_MAP, "MODIFIED", scope_map("team", ["repositories/team/*/content/write"]))
    assert allowed(d.login("ci", "p1", NOW).grants, "repository:team/a:push") == ["push"]  # type: ignore[union-attr]
    d.apply(TOKEN, "MODIFIED", token("ci", "team", {"password1": "p1"}, enabled=False))
    assert d.login("ci", "p1", NOW).refused == "disabled"  # type: ignore[union-attr]
    d.apply(TOKEN, "DELETED", token("ci", "team", {}))
    assert d.login("ci", "p1", NOW) is None
    # A token moved to another registry (not possible by edit, but by delete and create) leaves.
    d.apply(TOKEN, "ADDED", token("ops", "team", {"password1": "o1"}, registry="another"))
    assert d.login("ops", "o1", NOW) is None
    d.apply(SCOPE_MAP, "DELETED", scope_map("team", []))
    assert d.grants_of("team") == ()


def test_quota_exceeded_objects_grant_nothing() -> None:
    d = AccessDirectory("reg")
    d.replace(SCOPE_MAP, [scope_map("m", ["repositories/*/content/read"], reason="QuotaExceeded")])
    d.replace(TOKEN, [token("t", "_repositories_pull", {"password1": "p"}, reason="QuotaExceeded")])
    assert d.grants_of("m") == ()
    assert d.login("t", "p", NOW).refused == "bad-password"  # type: ignore[union-attr]


def test_a_password_removed_from_spec_stops_working() -> None:
    d = AccessDirectory("reg")
    body = token("t", "_repositories_pull", {"password1": "a", "password2": "b"})
    body["spec"]["passwords"] = [{"name": "password2"}]
    d.replace(TOKEN, [body])
    assert d.login("t", "a", NOW).refused == "bad-password"  # type: ignore[union-attr]
    assert d.login("t", "b", NOW).refused is None  # type: ignore[union-attr]


def test_ten_thousand_tokens_and_a_thousand_scope_maps_load_and_log_in(tmp_path: Path) -> None:
    d = AccessDirectory("reg")
    d.replace(SCOPE_MAP, [scope_map(f"m{i}", [f"repositories/team{i}/*/content/write"]) for i in range(1000)])
    d.replace(TOKEN, [token(f"t{i}", f"m{i % 1000}", {"password1": f"p{i}"}) for i in range(10_000)])
    assert len(d.tokens) == 10_000 and len(d.scope_maps) == 1000
    login = d.login("t9999", "p9999", NOW)
    assert login is not None and allowed(login.grants, "repository:team999/app:push") == ["push"]
    assert allowed(login.grants, "repository:team998/app:pull") == []
    snapshot = Snapshot(d, tmp_path / "snapshot.json")
    snapshot.write()
    assert "p9999" not in (tmp_path / "snapshot.json").read_text()
    restored = AccessDirectory("reg")
    assert Snapshot(restored, tmp_path / "snapshot.json").load()
    assert restored.tokens == d.tokens and restored.scope_maps == d.scope_maps
    assert Snapshot(AccessDirectory("another"), tmp_path / "snapshot.json").load() is False


# --- the endpoint ---


def _basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def _token_request(tmp_path: Path, d: AccessDirectory, clock: list[float], auth: str, scope: str) -> tuple[int, Any]:
    policy = AuthPolicy(service="svc", issuer="dockyard")
    (tmp_path / "policy.json").write_text(policy.model_dump_json())
    (tmp_path / "key.pem").write_bytes(KEY.key_pem)
    (tmp_path / "cert.pem").write_bytes(KEY.cert_pem)
    service = TokenService(
        tmp_path / "policy.json", tmp_path / "key.pem", tmp_path / "cert.pem", directory=d, clock=lambda: clock[0]
    )

    async def main() -> tuple[int, Any]:
        async with TestClient(TestServer(build_app(service))) as client:
            response = await client.get(
                "/token", params={"service": "svc", "scope": scope}, headers={"Authorization": auth}
            )
            body = await response.json()
        if response.status == 200:
            body = jwt.decode(body["token"], options={"verify_signature": False})["access"]
        return response.status, body

    return asyncio.run(main())


def test_endpoint_answers_401_for_disabled_and_expired_and_grants_scope(tmp_path: Path) -> None:
    d, clock = directory(), [EXPIRY - 60]
    scope = "repository:team/app:pull,push"
    assert _token_request(tmp_path, d, clock, _basic("ci", "p1"), scope) == (
        200,
        [{"type": "repository", "name": "team/app", "actions": ["pull"]}],
    )
    clock[0] = EXPIRY
    status, body = _token_request(tmp_path, d, clock, _basic("ci", "p1"), scope)
    assert status == 401 and json.dumps(body).count("UNAUTHORIZED") == 1
    assert _token_request(tmp_path, d, clock, _basic("ci", "p2"), scope)[0] == 200
    assert _token_request(tmp_path, d, clock, _basic("off", "f1"), scope)[0] == 401
    assert _token_request(tmp_path, d, clock, _basic("ci", "nope"), scope)[0] == 401
