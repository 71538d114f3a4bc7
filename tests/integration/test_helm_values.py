"""The chart with the real helm binary (hack/build-tools.sh), no cluster: several value sets lint
and render, values.schema.json refuses typos and wrong types, the README documents every value,
the default image tag follows pyproject's version, and the optional extras (Argo CD health checks,
Grafana dashboard, PrometheusRule) render what they promise."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from argocd_health import CHECKS, GROUP, check_dirs, evaluate
from conftest import build_tool

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
