"""Run metrics: one count per finished run by status and run type, and its duration."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from dockyard.builds.metrics import register_build_metrics


def test_a_finished_run_counts_once_with_its_duration() -> None:
    registry = CollectorRegistry()
    metrics = register_build_metrics(registry)
    metrics.observe_finish("Failed", "QuickBuild", 42.0)
    metrics.observe_finish("Error", None, None)  # never started: no duration
    value = registry.get_sample_value
    assert value("dockyard_build_runs_finished_total", {"status": "Failed", "run_type": "QuickBuild"}) == 1
    assert value("dockyard_build_runs_finished_total", {"status": "Error", "run_type": ""}) == 1
    assert value("dockyard_build_run_duration_seconds_count", {"status": "Failed"}) == 1
    assert value("dockyard_build_run_duration_seconds_bucket", {"status": "Failed", "le": "30.0"}) == 0
    assert value("dockyard_build_run_duration_seconds_bucket", {"status": "Failed", "le": "60.0"}) == 1
    assert value("dockyard_build_run_duration_seconds_count", {"status": "Error"}) is None
