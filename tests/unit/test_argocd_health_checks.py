"""Dockyard's Argo CD health checks (helm/dockyard/argocd), run by a real Lua 5.1 interpreter on
each kind's health_test.yaml cases, the way Argo CD tests its own resource_customizations. The
`live-*` inputs are objects the operator reconciled on the local control plane (captured by
tests/integration/test_argocd_health_live.py); the others vary one of them, or, for kinds this
branch does not reconcile yet, follow the same status convention."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from argocd_health import CHECKS, GROUP, cases, check_dirs, evaluate

ROOT = Path(__file__).resolve().parents[2]
CASES = [
    pytest.param(directory, path, obj, expected, id=f"{directory.name}/{path}")
    for directory in check_dirs()
    for path, obj, expected in cases(directory)
]


@pytest.mark.parametrize(("directory", "path", "obj", "expected"), CASES)
def test_health_test_case(directory: Path, path: str, obj: dict[str, Any], expected: dict[str, str]) -> None:
    health = evaluate((directory / "health.lua").read_text(), obj)
    assert health == {"status": expected["status"], "message": expected["message"]}


def test_every_kind_has_a_check_with_live_inputs() -> None:
    crd_kinds = {yaml.safe_load(p.read_text())["spec"]["names"]["kind"] for p in (ROOT / "crds").glob("*.yaml")}
    checked = {d.name for d in check_dirs()}
    assert crd_kinds <= checked, f"kinds without an Argo CD health check: {crd_kinds - checked}"
    assert {"Token", "ScopeMap"} <= checked
    for kind in ("Registry", "Webhook", "BuildTask", "BuildRun"):
        live = list((CHECKS / GROUP / kind / "testdata").glob("live-*.yaml"))
        assert live, f"{kind}: no input captured from the control plane"
    for directory in check_dirs():
        listed = {path for path, _, _ in cases(directory)}
        present = {f"testdata/{p.name}" for p in (directory / "testdata").glob("*.yaml")}
        assert listed == present, f"{directory.name}: testdata not covered by health_test.yaml"


@pytest.mark.parametrize("kind", ["Webhook", "BuildTask"])
def test_disabled_is_suspended_only_once_observed(kind: str) -> None:
    script = (CHECKS / GROUP / kind / "health.lua").read_text()
    obj = yaml.safe_load(next((CHECKS / GROUP / kind / "testdata").glob("live-*.yaml")).read_text())
    obj["spec"]["enabled"] = False
    assert evaluate(script, obj)["status"] == "Suspended"
    obj["metadata"]["generation"] = obj["status"]["observedGeneration"] + 1
    assert evaluate(script, obj)["status"] == "Progressing"


def test_a_running_run_behind_its_generation_stays_progressing_and_an_ended_one_final() -> None:
    script = (CHECKS / GROUP / "BuildRun" / "health.lua").read_text()
    testdata = CHECKS / GROUP / "BuildRun" / "testdata"
    for name, status in (
        ("live-slow-quick", "Progressing"),
        ("live-fail-quick", "Degraded"),
        ("live-quick", "Healthy"),
    ):
        obj = yaml.safe_load((testdata / f"{name}.yaml").read_text())
        obj["metadata"]["generation"] = 5
        assert evaluate(script, obj)["status"] == status, name


def test_a_script_that_returns_no_known_status_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown status"):
        evaluate('return {status = "Fine"}', {})
