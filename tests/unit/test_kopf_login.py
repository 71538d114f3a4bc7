"""The login handler: kopf's credentials are the operator's own (`core/apiserver.py`: here the
kubeconfig), in a session whose pool is bounded."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import kopf
import pytest
import yaml

from dockyard.handlers.login import KOPF_CONNECTIONS, login


def test_the_session_carries_kopfs_credentials_and_a_bounded_pool(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {"name": "c", "cluster": {"server": "https://127.0.0.1:6443", "insecure-skip-tls-verify": True}}
                ],
                "users": [{"name": "u", "user": {"token": "t0ken"}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u", "namespace": "team"}}],
                "current-context": "x",
            }
        )
    )
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)

    async def logged_in() -> tuple[kopf.AiohttpSession | None, int, str | None]:
        context = await login(logger=logging.getLogger("test"), settings=kopf.OperatorSettings())
        assert context is not None
        session = context.aiohttp_session
        try:
            return context, session.connector.limit, session.headers.get("Authorization")  # type: ignore[union-attr]
        finally:
            await session.close()

    context, limit, authorization = asyncio.run(logged_in())
    assert context is not None and context.server == "https://127.0.0.1:6443"
    assert context.default_namespace == "team"
    assert limit == KOPF_CONNECTIONS > 0  # kopf's own session has no limit (0)
    assert authorization == "Bearer t0ken"


def test_credentials_the_operator_cannot_use_are_a_login_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """kopf reports a LoginError and retries; it never falls back to a login of its own."""
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "absent"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(kopf.LoginError, match="absent"):
        asyncio.run(login(logger=logging.getLogger("test"), settings=kopf.OperatorSettings()))


def test_the_operator_registers_this_login_and_no_other() -> None:
    """kopf asks every login handler and keeps each one's credentials: a second one (kopf's
    defaults, or one added elsewhere) would bring back kopf's unbounded session."""
    from kopf._core.intents.causes import Activity

    import dockyard.main  # noqa: F401  (registers the handlers)

    handlers = kopf.get_default_registry()._activities.get_handlers(activity=Activity.AUTHENTICATION)
    assert [h.fn for h in handlers] == [login]
