import os

import pytest
from pydantic import ValidationError

from dockyard.settings import MEMO_KEY, OperatorSettings, load_settings, settings_from


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in os.environ:
        if name.upper().startswith("DOCKYARD_"):
            monkeypatch.delenv(name)


def test_defaults() -> None:
    settings = load_settings()
    assert settings.namespace == ""
    assert settings.liveness_endpoint == "http://0.0.0.0:8080/healthz"
    assert (settings.metrics_host, settings.metrics_port) == ("0.0.0.0", 9090)
    assert (settings.log_format, settings.log_level) == ("full", "info")
    assert settings.registry_image == "registry:3"
    assert settings.kaniko_image == "ghcr.io/osscontainertools/kaniko:v1.28.3"
    assert settings.watch_server_timeout == 60
    assert settings.watch_client_timeout > settings.watch_server_timeout


def test_environment_with_the_dockyard_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKYARD_NAMESPACE", "builds")
    monkeypatch.setenv("DOCKYARD_HEALTH_HOST", "127.0.0.1")
    monkeypatch.setenv("DOCKYARD_HEALTH_PORT", "18080")
    monkeypatch.setenv("DOCKYARD_HEALTH_PATH", "/livez")
    monkeypatch.setenv("DOCKYARD_METRICS_PORT", "19090")
    monkeypatch.setenv("DOCKYARD_LOG_FORMAT", "JSON")
    monkeypatch.setenv("DOCKYARD_LOG_LEVEL", "debug")
    monkeypatch.setenv("DOCKYARD_KANIKO_IMAGE", "example.com/kaniko:v2")
    monkeypatch.setenv("DOCKYARD_WATCH_SERVER_TIMEOUT", "300")
    monkeypatch.setenv("DOCKYARD_WATCH_CLIENT_TIMEOUT", "330")
    monkeypatch.setenv("NAMESPACE", "ignored-without-prefix")
    settings = load_settings()
    assert settings.namespace == "builds"
    assert settings.liveness_endpoint == "http://127.0.0.1:18080/livez"
    assert settings.metrics_port == 19090
    assert (settings.log_format, settings.log_level) == ("json", "debug")
    assert settings.kaniko_image == "example.com/kaniko:v2"
    assert (settings.watch_server_timeout, settings.watch_client_timeout) == (300, 330)


def test_ipv6_health_host_is_bracketed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKYARD_HEALTH_HOST", "::")
    assert load_settings().liveness_endpoint == "http://[::]:8080/healthz"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DOCKYARD_HEALTH_PORT", "0"),
        ("DOCKYARD_METRICS_PORT", "70000"),
        ("DOCKYARD_METRICS_PORT", "tcp://10.0.0.1:9090"),
        ("DOCKYARD_HEALTH_PATH", "healthz"),
        ("DOCKYARD_LOG_FORMAT", "yaml"),
        ("DOCKYARD_LOG_LEVEL", "trace"),
        ("DOCKYARD_WATCH_SERVER_TIMEOUT", "1.5"),
        ("DOCKYARD_WATCH_CLIENT_TIMEOUT", "60"),
        ("DOCKYARD_REGISTRY_IMAGE", ""),
    ],
)
def test_invalid_values_fail_naming_the_setting(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError, match=name.removeprefix("DOCKYARD_").lower()):
        load_settings()


def test_settings_are_frozen() -> None:
    settings = load_settings()
    with pytest.raises(ValidationError):
        settings.namespace = "other"  # type: ignore[misc]


def test_settings_from_memo() -> None:
    settings = OperatorSettings()
    assert settings_from({MEMO_KEY: settings}) is settings
    with pytest.raises(LookupError):
        settings_from({})
