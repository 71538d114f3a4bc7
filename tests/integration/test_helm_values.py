"""The chart with the real helm binary (hack/build-tools.sh), no cluster: several value sets lint
and render, values.schema.json refuses typos and wrong types, the README documents every value,
the default image tag follows pyproject's version, and the optional extras (Argo CD health checks,
Grafana dashboard, PrometheusRule) render what they promise."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import build_tool

from argocd_health import CHECKS, GROUP, check_dirs, evaluate
from realregistry import ROOT

pytestmark = pytest.mark.integration
CHART = ROOT / "helm" / "dockyard"


@pytest.fixture(scope="module")
def helm() -> Path:
    return build_tool("helm")


def _template(helm: Path, *args: str) -> list[dict[str, Any]]:
    run = subprocess.run(
        [str(helm), "template", "dy", str(CHART), "-n", "dockyard-system", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    return [doc for doc in yaml.safe_load_all(run.stdout) if doc]


def test_argocd_health_checks_render_into_argocd_cm(helm: Path) -> None:
    assert not [d for d in _template(helm) if d["metadata"]["name"] == "argocd-cm"]
    (cm,) = [d for d in _template(helm, "--set", "argocd.healthChecks.enabled=true") if d["kind"] == "ConfigMap"]
    assert (cm["metadata"]["name"], cm["metadata"]["namespace"]) == ("argocd-cm", "argocd")
    expected = {
        f"resource.customizations.health.{GROUP}_{d.name}": (d / "health.lua").read_text() for d in check_dirs()
    }
    assert cm["data"] == expected
    # the rendered script is still Lua that answers
    registry = yaml.safe_load((CHECKS / GROUP / "Registry" / "testdata" / "live-hub.yaml").read_text())
    assert evaluate(cm["data"][f"resource.customizations.health.{GROUP}_Registry"], registry)["status"] == "Healthy"


VALUE_SETS = sorted((CHART / "ci").glob("*-values.yaml"))


@pytest.mark.parametrize("values", [None, *VALUE_SETS], ids=lambda v: v.name if v else "defaults")
def test_value_set_lints_and_renders(helm: Path, values: Path | None) -> None:
    extra = ["-f", str(values)] if values else []
    linted = subprocess.run(
        [str(helm), "lint", "--strict", str(CHART), *extra], capture_output=True, text=True, timeout=60
    )
    assert linted.returncode == 0, linted.stdout + linted.stderr
    docs = _template(helm, *extra)
    assert {"Deployment", "Service", "ServiceAccount", "ClusterRole", "ClusterRoleBinding"} <= {d["kind"] for d in docs}


def test_every_value_of_the_everything_set_reaches_the_deployment(helm: Path) -> None:
    docs = _template(helm, "-f", str(CHART / "ci" / "everything-values.yaml"))
    (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
    assert pod["containers"][0]["image"] == "registry.example.com/dockyard:9.9.9"
    assert env["DOCKYARD_TOKEN_SERVICE_IMAGE"] == "registry.example.com/dockyard-token:9.9.9"
    assert env["DOCKYARD_EVENTS_URL"] == "http://hooks.dockyard-system.svc:18090"
    assert env["DOCKYARD_LOG_LEVEL"] == "debug" and env["DOCKYARD_DELIVERY_HISTORY_DAYS"] == "1.5"
    assert env["DOCKYARD_DELIVERY_CONCURRENCY"] == "64" and env["DOCKYARD_API_REQUEST_TIMEOUT"] == "30"
    assert env["DOCKYARD_STEP_TOOLS_IMAGE"] == "registry.example.com/busybox:1.36.1-musl"
    assert [env[f"DOCKYARD_BUILD_{k}"] for k in ("CPU_REQUEST", "MEMORY_REQUEST", "CPU_LIMIT", "MEMORY_LIMIT")] == [
        "500m", "1Gi", "4", "8Gi",
    ]  # fmt: skip
    assert env["DOCKYARD_BUILD_WORKSPACE_SIZE"] == "10Gi"
    assert env["DOCKYARD_BUILD_WORKSPACE_STORAGE_CLASS"] == "local-path"
    assert env["DOCKYARD_BUILD_ALLOW_PRIVILEGED_STEPS"] == "true"
    assert env["DOCKYARD_NODE_REGISTRY_CONFIG_DIR"] == "/var/lib/rancher/k3s/agent/etc/containerd/certs.d"
    assert pod["nodeSelector"] == {"kubernetes.io/os": "linux"} and pod["imagePullSecrets"] == [{"name": "pull"}]
    (claim,) = [d for d in docs if d["kind"] == "PersistentVolumeClaim"]
    assert claim["spec"]["storageClassName"] == "fast" and claim["spec"]["accessModes"] == ["ReadWriteOncePod"]
    defaults = _template(helm)
    (default_deployment,) = [d for d in defaults if d["kind"] == "Deployment"]
    names = {e["name"] for e in default_deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert "DOCKYARD_TOKEN_SERVICE_IMAGE" not in names, "unset: the operator image runs the token service"
    assert "DOCKYARD_BUILD_WORKSPACE_STORAGE_CLASS" not in names, "unset: the cluster's default class"


# Settings the chart sets itself (the pod's ports and paths) or leaves to `extraEnv` (tuning knobs).
INTERNAL_SETTINGS = {
    "health_host", "health_path", "metrics_host", "events_host", "state_dir",
    "api_request_timeout", "api_connect_timeout", "watch_server_timeout", "watch_client_timeout",
}  # fmt: skip


def test_every_operator_setting_has_a_chart_value_or_is_internal(helm: Path) -> None:
    """A setting added to the operator without a chart value fails here, until it gets one or is
    declared internal above; the chart's values, read by the operator, give the settings they say."""
    from dockyard.settings import OperatorSettings

    docs = _template(helm, "-f", str(CHART / "ci" / "everything-values.yaml"))
    (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
    env = {e["name"]: e["value"] for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    settable = {f"DOCKYARD_{name.upper()}": name for name in OperatorSettings.model_fields}
    missing = sorted(
        name for variable, name in settable.items() if variable not in env and name not in INTERNAL_SETTINGS
    )
    assert missing == [], f"settings without a chart value: {missing}"
    assert not (INTERNAL_SETTINGS - set(OperatorSettings.model_fields)), "an internal setting that no longer exists"
    read = OperatorSettings(**{settable[k].lower(): v for k, v in env.items() if k in settable})
    assert read.build_allow_privileged_steps is True and read.build_workspace_storage_class == "local-path"
    assert read.step_tools_image == "registry.example.com/busybox:1.36.1-musl" and read.delivery_concurrency == 64


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["--set", "image.tagg=1"], "additional properties 'tagg' not allowed"),
        (["--set", "persistance.enabled=false"], "additional properties 'persistance' not allowed"),
        (["--set", "persistence.enabled=yes"], "want boolean"),
        (["--set", "logFormat=text"], "logFormat"),
        (["--set", "events.port=0"], "events/port"),
        (["--set", "argocd.healthChecks.enable=true"], "additional properties 'enable' not allowed"),
    ],
)
def test_schema_refuses_typos_and_wrong_types(helm: Path, args: list[str], complaint: str) -> None:
    for command in (["template", "dy"], ["lint", "--strict"]):
        run = subprocess.run([str(helm), *command, str(CHART), *args], capture_output=True, text=True, timeout=60)
        assert run.returncode != 0 and complaint in run.stdout + run.stderr, (command, run.stdout + run.stderr)


def test_readme_documents_every_value() -> None:
    import chart_readme

    stale = subprocess.run(
        [sys.executable, str(ROOT / "hack" / "chart_readme.py"), "--check"], capture_output=True, text=True
    )
    assert stale.returncode == 0, stale.stderr
    schema_paths = {
        path for path, _ in chart_readme.documented(yaml.safe_load((CHART / "values.schema.json").read_text()))
    }

    def leaves(node: Any, prefix: str = "") -> set[str]:
        if isinstance(node, dict) and node and f"{prefix}".rstrip(".") not in schema_paths:
            return {p for k, v in node.items() for p in leaves(v, f"{prefix}{k}.")}
        return {prefix.rstrip(".")}

    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert leaves(values) == schema_paths
    readme = (CHART / "README.md").read_text()
    assert all(f"| `{path}` |" in readme for path in schema_paths)


def test_log_format_choices_are_the_operators() -> None:
    import typing

    from dockyard.settings import LogFormat

    schema = yaml.safe_load((CHART / "values.schema.json").read_text())
    assert schema["properties"]["logFormat"]["enum"] == list(typing.get_args(LogFormat))


def test_dashboard_and_alerts_render_from_their_files(helm: Path) -> None:
    import json

    docs = _template(helm, "-f", str(CHART / "ci" / "everything-values.yaml"))
    (dashboard,) = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "dockyard-dashboard"]
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert dashboard["metadata"]["namespace"] == "monitoring"
    assert json.loads(dashboard["data"]["dockyard.json"]) == json.loads(
        (CHART / "dashboards" / "dockyard.json").read_text()
    )
    (rule,) = [d for d in docs if d["kind"] == "PrometheusRule"]
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert rule["spec"] == yaml.safe_load((CHART / "monitoring" / "alerts.yaml").read_text())
    assert not {"PrometheusRule"} & {d["kind"] for d in _template(helm)}
