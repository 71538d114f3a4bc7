"""The operator's side of tokens: passwords planned and regenerated one at a time (the admin
user's protocol), the Secrets built (golden), the tier's quota in creation order, the status a
reconcile publishes (verifiers, never passwords), and the ScopeMap's honest condition."""

from __future__ import annotations

import base64
import itertools
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from test_cache_and_ensure import MemoryKube

from dockyard.access.manifests import build_credentials_secret, build_token_pull_secret
from dockyard.access.quota import quota_position
from dockyard.access.scopemaps import reconcile_scope_map
from dockyard.access.tokens import plan_passwords, reconcile_token
from dockyard.auth.directory import AccessDirectory
from dockyard.auth.policy import password_digest
from dockyard.core.cache import ClusterCache
from dockyard.core.conditions import Reason
from dockyard.core.errors import Permanent
from dockyard.core.meta import Owner
from dockyard.models.access import ScopeMapSpec, TokenSpec

GOLDEN = Path(__file__).parent / "golden"
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
OWNER = Owner("dockyard.dev/v1alpha1", "Token", "ci", "team-a", "0b7c6d5e-0000-4000-8000-000000000002")
REGISTRY = {
    "metadata": {"name": "contoso", "namespace": "team-a"},
    "spec": {"sku": "Basic"},
    "status": {"loginServer": "contoso.team-a.svc:5000"},
}


class Kube(MemoryKube):
    def __init__(self) -> None:
        super().__init__(ClusterCache())

    def delete(self, api_version: str, kind: str, namespace: str | None, name: str, **_: Any) -> bool:
        self.calls.append(f"delete {kind}/{name}")
        return self.objects.pop((kind, name), None) is not None

    def create_if_missing(self, api_version: str, kind: str, namespace: str, name: str, build: Any) -> dict[str, Any]:
        """The API's create: a 409 (there already) reads back what is stored."""
        if (kind, name) not in self.objects:
            self.calls.append(f"create {kind}/{name}")
            self.objects[(kind, name)] = build()
        return self.objects[(kind, name)]


class LaggingKube(Kube):
    """A cache that does not show the credentials Secret yet (a reconcile right after the first)."""

    def read_child(self, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        return None if name == "ci.token" else super().read_child(api_version, kind, namespace, name)


def counter() -> Any:
    numbers = itertools.count(1)
    return lambda: f"generated-{next(numbers)}"


def token_body(name: str = "ci", created: str = "2026-12-01T10:00:00Z", annotation: str = "", **spec: Any) -> dict:
    meta: dict[str, Any] = {
        "name": name,
        "namespace": "team-a",
        "uid": f"uid-{name}",
        "creationTimestamp": created,
        "generation": 1,
    }
    if annotation:
        meta["annotations"] = {"dockyard.dev/regenerate-password": annotation}
    return {
        "metadata": meta,
        "spec": {"registryRef": {"name": "contoso"}, "scopeMapRef": {"name": "_repositories_pull"}, **spec},
    }


def _reconcile(kube: Kube, body: dict, registry: dict | None = REGISTRY, siblings: list | None = None, **kw: Any):
    spec = TokenSpec.model_validate(body["spec"])
    return reconcile_token(
        kube, body, spec, registry, siblings or [body], kw.get("exists", True), kw.get("gen", counter()), NOW
    )


def _stored(kube: Kube) -> dict[str, str]:
    secret = kube.objects[("Secret", "ci.token")]
    return {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}


def test_golden_secrets() -> None:
    rendered = yaml.safe_dump_all(
        [
            build_credentials_secret(
                OWNER,
                {"password1": "p-one", "password2": "p-two"},
                {"password1": "2026-12-01T12:00:00Z", "password2": "2026-12-01T12:00:00Z"},
                ("dockyard.dev/handled-regeneration", "password2"),
            ),
            build_token_pull_secret(OWNER, "p-one", ["contoso.team-a.svc:5000", "registry.example.com"]),
        ],
        sort_keys=False,
    )
    path = GOLDEN / "access-token-secrets.yaml"
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(rendered)
    assert rendered == path.read_text()


def test_first_reconcile_generates_both_passwords_and_publishes_only_verifiers() -> None:
    kube = Kube()
    outcome = _reconcile(kube, token_body())
    stored = _stored(kube)
    assert stored == {"username": "ci", "password1": "generated-1", "password2": "generated-2"}
    assert outcome.ready and outcome.reason == Reason.RECONCILED
    assert outcome.status["passwords"] == [
        {"name": "password1", "creationTime": "2026-12-01T12:00:00Z", "verifier": password_digest("generated-1")},
        {"name": "password2", "creationTime": "2026-12-01T12:00:00Z", "verifier": password_digest("generated-2")},
    ]
    assert "generated-" not in json.dumps(outcome.status) + json.dumps(outcome.events)
    pull = json.loads(base64.b64decode(kube.objects[("Secret", "ci.token-pull")]["data"][".dockerconfigjson"]))
    assert pull["auths"]["contoso.team-a.svc:5000"]["password"] == "generated-1"
    assert outcome.events == [("PasswordGenerated", "generated password1 and password2")]
    assert outcome.generated == 2 and not outcome.regenerated


def test_a_second_reconcile_changes_nothing() -> None:
    kube = Kube()
    first = _reconcile(kube, token_body())
    kube.calls.clear()
    second = _reconcile(kube, token_body())
    assert second.status == first.status and second.events == []
    assert not [c for c in kube.calls if c.startswith(("apply", "delete"))]


def test_regeneration_replaces_one_password_once() -> None:
    kube = Kube()
    _reconcile(kube, token_body())
    outcome = _reconcile(kube, token_body(annotation="password2"), gen=lambda: "fresh")
    assert _stored(kube)["password1"] == "generated-1" and _stored(kube)["password2"] == "fresh"
    assert [r for r, _ in outcome.events] == ["PasswordRegenerated"] and outcome.regenerated
    again = _reconcile(kube, token_body(annotation="password2"), gen=lambda: "fresher")
    assert _stored(kube)["password2"] == "fresh" and again.events == []
    _reconcile(kube, token_body(annotation="password2@2"), gen=lambda: "third")
    assert _stored(kube)["password2"] == "third"


def test_removing_a_password_deletes_it_and_its_verifier() -> None:
    kube = Kube()
    _reconcile(kube, token_body())
    outcome = _reconcile(kube, token_body(passwords=[{"name": "password2", "expiry": "2027-01-01T00:00:00Z"}]))
    assert _stored(kube) == {"username": "ci", "password2": "generated-2"}
    assert outcome.status["passwords"] == [
        {
            "name": "password2",
            "creationTime": "2026-12-01T12:00:00Z",
            "expiry": "2027-01-01T00:00:00Z",
            "verifier": password_digest("generated-2"),
        }
    ]


def test_the_status_lets_the_token_service_log_in() -> None:
    kube = Kube()
    body = token_body()
    outcome = _reconcile(kube, body)
    directory = AccessDirectory("contoso")
    directory.replace("Token", [{**body, "status": outcome.status}])
    login = directory.login("ci", _stored(kube)["password2"], NOW.timestamp())
    assert login is not None and login.refused is None


def test_quota_counts_in_creation_order() -> None:
    bodies = [token_body(f"t{i:03}", created=f"2026-12-01T10:{i // 60:02}:{i % 60:02}Z") for i in range(101)]
    assert quota_position(bodies[99], bodies, 100) is None
    assert quota_position(bodies[100], bodies, 100) == 100
    # A Token the index does not hold yet counts as well: 100 others before it leave it no place.
    assert quota_position(bodies[100], bodies[:100], 100) == 100
    assert quota_position(bodies[100], bodies[:99], 100) is None
    kube = Kube()
    outcome = _reconcile(kube, bodies[100], siblings=bodies)
    assert outcome.reason == Reason.QUOTA_EXCEEDED and not outcome.ready
    assert outcome.message.startswith("Quota exceeded for resource type tokens for the registry SKU Basic")
    assert outcome.status == {"passwords": []} and not kube.objects
    # The oldest is first whatever the order of the listing.
    assert quota_position(bodies[0], list(reversed(bodies)), 100) is None


def test_registry_missing_scope_map_missing_disabled_and_bad_names() -> None:
    assert _reconcile(Kube(), token_body(), registry=None).reason == Reason.DEPENDENCY_NOT_READY
    kube = Kube()
    early = _reconcile(kube, token_body(), registry={**REGISTRY, "status": {}})
    assert not early.ready and early.reason == Reason.DEPENDENCY_NOT_READY and "ci.token-pull" in early.message
    assert early.status["pullSecretName"] is None and ("Secret", "ci.token-pull") not in kube.objects
    assert ("Secret", "ci.token") in kube.objects, "the credentials exist already: only Ready waits"
    missing = _reconcile(Kube(), token_body(scopeMapRef={"name": "nope"}), exists=False)
    assert missing.reason == Reason.DEPENDENCY_NOT_READY and "nope" in missing.message
    disabled = _reconcile(Kube(), token_body(enabled=False))
    assert disabled.ready and disabled.reason == Reason.DISABLED
    with pytest.raises(Permanent):
        _reconcile(Kube(), token_body(name="contoso"))
    with pytest.raises(Permanent):
        _reconcile(Kube(), token_body(name="x" * 51))


def test_plan_keeps_creation_times() -> None:
    stored = {
        "data": {"password1": base64.b64encode(b"old").decode()},
        "metadata": {"annotations": {"dockyard.dev/password1-created": "2026-01-01T00:00:00Z"}},
    }
    plan = plan_passwords(token_body(), stored, ["password1", "password2"], lambda: "new", NOW)
    assert plan.values == {"password1": "old", "password2": "new"}
    assert plan.created == {"password1": "2026-01-01T00:00:00Z", "password2": "2026-12-01T12:00:00Z"}
    assert plan.generated == ["password2"] and plan.regenerated is None


def _scope_map(actions: list[str], name: str = "m", created: str = "2026-12-01T10:00:00Z") -> dict:
    return {
        "metadata": {"name": name, "uid": f"uid-{name}", "creationTimestamp": created},
        "spec": {"registryRef": {"name": "contoso"}, "actions": actions},
    }


def test_scope_map_conditions() -> None:
    full = _scope_map(["repositories/team/*/content/read", "repositories/*/metadata/read"])
    outcome = reconcile_scope_map(full, ScopeMapSpec.model_validate(full["spec"]), REGISTRY, [full])
    assert outcome.ready and outcome.reason == Reason.RECONCILED
    partial = _scope_map(["repositories/team/*/metadata/write"])
    outcome = reconcile_scope_map(partial, ScopeMapSpec.model_validate(partial["spec"]), REGISTRY, [partial])
    assert outcome.ready and outcome.reason == Reason.PARTIALLY_ENFORCED and "content/delete" in outcome.message
    maps = [
        _scope_map(["repositories/*/content/read"], f"m{i:03}", f"2026-12-01T10:{i // 60:02}:{i % 60:02}Z")
        for i in range(101)
    ]
    over = reconcile_scope_map(maps[-1], ScopeMapSpec.model_validate(maps[-1]["spec"]), REGISTRY, maps)
    assert over.reason == Reason.QUOTA_EXCEEDED and "resource type scopeMaps for the registry SKU Basic" in over.message
    assert reconcile_scope_map(full, ScopeMapSpec.model_validate(full["spec"]), None, []).reason == (
        Reason.DEPENDENCY_NOT_READY
    )


def test_a_reconcile_whose_cache_lags_keeps_the_stored_passwords() -> None:
    # The Registry's first status re-reconciles its Tokens at once: the cache may not show the
    # credentials Secret the first reconcile created. The passwords the user may have read stay.
    kube = LaggingKube()
    first = _reconcile(kube, token_body(passwords=[{"name": "password1"}]))
    stored, pull = _stored(kube), kube.objects[("Secret", "ci.token-pull")]
    again = _reconcile(kube, token_body(passwords=[{"name": "password1"}]), gen=lambda: "another")
    assert _stored(kube) == stored and stored["password1"] == "generated-1"
    assert kube.objects[("Secret", "ci.token-pull")]["data"] == pull["data"]
    assert (first.generated, again.generated) == (1, 0)  # one PasswordGenerated Event, not two
    assert again.status["passwords"] == first.status["passwords"]
