"""What the triggers did, on the operator's registry:

- `dockyard_build_trigger_runs_total{trigger,outcome}` — runs started by `Timer`, `Commit` or `ImageUpdate`:
  `created`, or `existing` (the cause already had its run: a restart or a redelivery);
- `dockyard_build_trigger_polls_total{outcome}` — commit polls: `new` (a run), `unchanged`,
  `baseline` (the first head seen), `error` (the remote could not be read);
- `dockyard_build_trigger_base_image_checks_total{source,outcome}` — a base image's digest seen by
  an `event` (a push to a Dockyard registry) or a `poll`, per watching task: `due` (a run),
  `unchanged`, `self` (the task pushes that image), `coalesced` (an update run is pending),
  `untracked`; polls also `throttled` (429), `error`, `missing` (no such tag);
- `dockyard_git_webhooks_total{host,outcome}` — push webhooks: `accepted` (a run), `duplicate`
  (redelivered), `ignored` (another branch or event, a disabled trigger), `unauthorized` (401: no
  such task or webhook trigger, no or a wrong signature), `invalid` (400), `unavailable` (503).
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter


@dataclass(frozen=True)
class TriggerMetrics:
    runs: Counter
    polls: Counter
    webhooks: Counter
    base_images: Counter


def register_trigger_metrics(registry: CollectorRegistry | None) -> TriggerMetrics:
    return TriggerMetrics(
        runs=Counter(
            "dockyard_build_trigger_runs",
            "Runs started by triggers, by trigger type and outcome (created, existing).",
            ["trigger", "outcome"],
            registry=registry,
        ),
        polls=Counter(
            "dockyard_build_trigger_polls",
            "Commit polls of git remotes, by outcome (new, unchanged, baseline, error).",
            ["outcome"],
            registry=registry,
        ),
        webhooks=Counter(
            "dockyard_git_webhooks",
            "Push webhooks from git hosts, by host and outcome.",
            ["host", "outcome"],
            registry=registry,
        ),
        base_images=Counter(
            "dockyard_build_trigger_base_image_checks",
            "New digests of watched base images, by source (event, poll) and outcome.",
            ["source", "outcome"],
            registry=registry,
        ),
    )
