"""Tokens beyond their own reconcile, on the real API server (no token service, no registry
binary: neither is needed): a Token's Secrets deleted by hand come back within the drift interval
(the Token drift loop), and a Token created or deleted moves the Registry's `usage.tokens` at once
(the Registry's work queue), with a drift interval far too long to do it instead.

Each test starts its own operator: they need different drift intervals (read at startup)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
import yaml
from conftest import running_operator
from test_registry import S3, _apply, _until, crds  # noqa: F401  (fixtures)

from dockyard.auth.policy import password_digest

pytestmark = pytest.mark.integration
REGISTRY = "hub"


def _token(cluster: Any, namespace: str, name: str) -> None:
    token = {
        "apiVersion": "dockyard.dev/v1alpha1",
        "kind": "Token",
        "metadata": {"name": name},
        "spec": {"registryRef": {"name": REGISTRY}, "scopeMapRef": {"name": "_repositories_pull"}},
    }
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(token))


def _get(cluster: Any, namespace: str, kind: str, name: str) -> dict[str, Any] | None:
    result = cluster.kubectl("get", kind, name, "-n", namespace, "-o", "json", check=False)
    return json.loads(result.stdout) if result.returncode == 0 else None


def _ready(body: dict[str, Any] | None) -> dict[str, Any] | None:
    for condition in ((body or {}).get("status") or {}).get("conditions") or []:
        if condition["type"] == "Ready" and condition["status"] == "True":
            return body
    return None


def _used_tokens(cluster: Any, namespace: str) -> int | None:
    registry = _get(cluster, namespace, "registry", REGISTRY) or {}
    tokens = ((registry.get("status") or {}).get("usage") or {}).get("tokens")
    return None if tokens is None else int(tokens["used"])


def test_a_token_created_or_deleted_moves_the_registry_usage_at_once(
    cluster: Any, crds: None, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No drift pass within the test: only the Token's own events can move the count.
    monkeypatch.setenv("DOCKYARD_DRIFT_INTERVAL_SECONDS", "3600")
    with running_operator(cluster, "-n", namespace):
        _apply(cluster, namespace, REGISTRY, {"sku": "Basic", "storage": S3})
        # Ready: the rollout is over, no child event of the Registry's is left to refresh its status.
        _until(lambda: _ready(_get(cluster, namespace, "registry", REGISTRY)), "Registry hub Ready", 90)
        assert _used_tokens(cluster, namespace) == 0
        _token(cluster, namespace, "ci")
        _until(lambda: _used_tokens(cluster, namespace) == 1, "usage.tokens.used == 1 after the creation")
        cluster.kubectl("delete", "token", "ci", "-n", namespace)
        _until(lambda: _used_tokens(cluster, namespace) == 0, "usage.tokens.used == 0 after the deletion")


def test_a_token_secret_deleted_by_hand_comes_back(cluster: Any, crds: None, namespace: str) -> None:
    # The suite's drift interval (conftest: 3 seconds).
    with running_operator(cluster, "-n", namespace):
        _apply(cluster, namespace, REGISTRY, {"sku": "Basic", "storage": S3})
        _token(cluster, namespace, "ci")
        token = _until(lambda: _ready(_get(cluster, namespace, "token", "ci")), "Token ci Ready", 60)
        assert token["status"]["pullSecretName"] == "ci.token-pull"
        pull = _get(cluster, namespace, "secret", "ci.token-pull")
        assert pull is not None
        cluster.kubectl("delete", "secret", "ci.token-pull", "-n", namespace)
        back = _until(lambda: _get(cluster, namespace, "secret", "ci.token-pull"), "the pull Secret back", 60)
        assert back["metadata"]["uid"] != pull["metadata"]["uid"], "recreated, not the old one"
        assert back["data"] == pull["data"], "the same password: the credentials Secret was left alone"

        cluster.kubectl("delete", "secret", "ci.token", "-n", namespace)
        credentials = _until(lambda: _get(cluster, namespace, "secret", "ci.token"), "the credentials Secret back", 60)
        password = base64.b64decode(credentials["data"]["password1"]).decode()

        def verified() -> bool:
            status = (_get(cluster, namespace, "token", "ci") or {}).get("status") or {}
            verifiers = {p["name"]: p.get("verifier") for p in status.get("passwords") or []}
            return verifiers.get("password1") == password_digest(password)

        # The passwords went with the Secret: new ones, and the status's verifiers follow them.
        assert _until(verified, "the Token's verifier of the new password1", 60)
