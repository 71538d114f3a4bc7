"""What the runs did, on the operator's registry:

- `dockyard_build_runs_finished_total{status,run_type}` — runs that ended: `status` Succeeded,
  Failed, Canceled, Error or Timeout; `run_type` QuickBuild, QuickRun, AutoBuild or AutoRun;
- `dockyard_build_run_duration_seconds{status}` — start to end of the runs that started.

Counted when this process writes a run's final status (once per run: a finished run is never
finished again).
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram

_DURATION_BUCKETS = (10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0, 7200.0, 14400.0, 28800.0)


@dataclass(frozen=True)
class BuildMetrics:
    finished: Counter
    duration: Histogram

    def observe_finish(self, status: str, run_type: str | None, seconds: float | None) -> None:
        self.finished.labels(status=status, run_type=run_type or "").inc()
        if seconds is not None:
            self.duration.labels(status=status).observe(max(seconds, 0.0))


def register_build_metrics(registry: CollectorRegistry | None) -> BuildMetrics:
    return BuildMetrics(
        finished=Counter(
            "dockyard_build_runs_finished",
            "Runs that ended, by status and run type.",
            ["status", "run_type"],
            registry=registry,
        ),
        duration=Histogram(
            "dockyard_build_run_duration_seconds",
            "How long runs took, start to end, by status.",
            ["status"],
            buckets=_DURATION_BUCKETS,
            registry=registry,
        ),
    )
