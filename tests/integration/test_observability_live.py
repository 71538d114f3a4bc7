"""Dockyard's metrics, dashboard and alerts against a live operator: the scrape passes `promtool
check metrics` (Prometheus' naming conventions), every dashboard and alert query parses as PromQL
(`promtool check rules`) and names only metrics the live operator exports, the alerts fire on the
series they are written for (`promtool test rules`), and runs count into the build metrics."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from conftest import build_tool, running_operator
from prometheus_client.parser import text_string_to_metric_families

from realregistry import ROOT, until

pytestmark = pytest.mark.integration
CHART = ROOT / "helm" / "dockyard"
OCI = {"oci": {"repository": "dockyard/sources", "digest": "sha256:" + "a" * 64}}
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("_sum", "_count", "_created", ""),
}
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$job": "dockyard"}


def _until(check: Callable[[], Any], what: str, deadline_s: float = 90) -> Any:
    try:
        return until(check, what, deadline_s)
    except TimeoutError as timeout:
        pytest.fail(str(timeout))


@pytest.fixture(scope="module")
def promtool() -> Path:
    return build_tool("promtool")


@pytest.fixture(scope="module")
def scrape(cluster: Any) -> Iterator[str]:
    """The operator's /metrics after a Registry, a Webhook, a run that succeeds and one that fails."""
    cluster.kubectl("apply", "--server-side", "-f", "crds")
    cluster.kubectl(
        "wait", "--for=condition=Established", "--timeout=60s", "crd", "-l", "app.kubernetes.io/part-of=dockyard"
    )
    namespace = "t-observability-live"
    cluster.kubectl("create", "namespace", namespace)
    build = {"registryRef": {"name": "hub"}, "source": OCI, "dockerBuild": {"images": ["app:{{.Run.ID}}"]}}
    objects = [
        ("Registry", "hub", {"storage": {"s3": {"bucket": "images", "region": "us-east-1"}}}),
        ("Webhook", "ci", {"registryRef": {"name": "hub"}, "serviceUri": "http://127.0.0.1:9/", "actions": ["push"]}),
        ("BuildRun", "quick", {"build": build}),
        ("BuildRun", "fail-quick", {"build": build}),
    ]
    try:
        with running_operator(cluster, "-n", namespace) as url:
            for kind, name, spec in objects:
                manifest = {
                    "apiVersion": "dockyard.dev/v1alpha1",
                    "kind": kind,
                    "metadata": {"name": name},
                    "spec": spec,
                }
                cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(manifest))
            for run in ("quick", "fail-quick"):
                _until(
                    lambda run=run: (
                        json.loads(cluster.kubectl("get", "buildrun", run, "-n", namespace, "-o", "json").stdout)
                        .get("status", {})
                        .get("finishTime")
                    ),
                    f"run {run} finished",
                )
            yield httpx.get(url, timeout=10).text
    finally:
        cluster.kubectl("delete", "namespace", namespace, "--wait=false", "--ignore-not-found", check=False)


def _exported(scrape: str) -> set[str]:
    """Every series name the scrape can have: samples present, and those of families declared but
    not observed yet (a labelled metric shows only its # TYPE line until its first observation)."""
    names: set[str] = set()
    for family in text_string_to_metric_families(scrape):
        names |= {sample.name for sample in family.samples}
        names |= {family.name + suffix for suffix in SUFFIXES.get(family.type, ("",))}
    return names


def _dashboard_queries() -> list[str]:
    dashboard = json.loads((CHART / "dashboards" / "dockyard.json").read_text())
    queries = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            queries.append(re.sub(r"label_values\((\w+), \w+\)", r"\1", variable["query"]["query"]))
    expanded = []
    for query in queries:
        interpolated = query
        for variable, value in GRAFANA_VARIABLES.items():
            interpolated = interpolated.replace(variable, value)
        assert "$" not in interpolated, interpolated
        expanded.append(interpolated)
    return expanded


def _alert_queries() -> list[str]:
    rules = yaml.safe_load((CHART / "monitoring" / "alerts.yaml").read_text())
    return [rule["expr"] for group in rules["groups"] for rule in group["rules"]]


def _metric_names(query: str) -> set[str]:
    without_strings = re.sub(r'"[^"]*"', '""', query)
    return set(re.findall(r"\b((?:dockyard|process)_[a-z0-9_]+)\b", without_strings))


def test_live_scrape_follows_prometheus_naming_conventions(promtool: Path, scrape: str) -> None:
    checked = subprocess.run([str(promtool), "check", "metrics"], input=scrape, capture_output=True, text=True)
    assert checked.returncode == 0 and not checked.stdout.strip(), checked.stdout + checked.stderr
    assert "dockyard_build_runs_finished_total" in scrape


def test_runs_count_into_the_build_metrics(scrape: str) -> None:
    finished = {
        sample.labels["status"]: sample.value
        for family in text_string_to_metric_families(scrape)
        for sample in family.samples
        if sample.name == "dockyard_build_runs_finished_total"
    }
    assert finished == {"Succeeded": 1.0, "Failed": 1.0}
    durations = [
        s
        for f in text_string_to_metric_families(scrape)
        for s in f.samples
        if s.name == "dockyard_build_run_duration_seconds_count"
    ]
    assert sum(s.value for s in durations) == 2


@pytest.mark.parametrize("source", ["dashboard", "alerts"])
def test_every_query_parses_and_names_live_metrics(promtool: Path, scrape: str, tmp_path: Path, source: str) -> None:
    queries = _dashboard_queries() if source == "dashboard" else _alert_queries()
    assert len(queries) >= 5
    rules = {
        "groups": [
            {"name": "parse", "rules": [{"record": f"dockyard:query{i}", "expr": q} for i, q in enumerate(queries)]}
        ]
    }
    (tmp_path / "queries.yaml").write_text(yaml.safe_dump(rules))
    parsed = subprocess.run(
        [str(promtool), "check", "rules", "--lint=none", str(tmp_path / "queries.yaml")], capture_output=True, text=True
    )
    assert parsed.returncode == 0, parsed.stdout + parsed.stderr
    exported = _exported(scrape)
    unknown = {name for q in queries for name in _metric_names(q)} - exported
    assert not unknown, f"{source} queries name metrics the operator does not export: {unknown}"


def test_alerts_check_and_fire_on_their_series(promtool: Path) -> None:
    checked = subprocess.run(
        [str(promtool), "check", "rules", "alerts.yaml"], cwd=CHART / "monitoring", capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = subprocess.run(
        [str(promtool), "test", "rules", "alerts_test.yaml"], cwd=CHART / "monitoring", capture_output=True, text=True
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr
    for group in yaml.safe_load((CHART / "monitoring" / "alerts.yaml").read_text())["groups"]:
        for rule in group["rules"]:
            assert {"summary", "description", "runbook"} <= set(rule["annotations"]), rule["alert"]
