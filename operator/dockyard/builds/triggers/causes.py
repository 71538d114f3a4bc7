"""A cause → the BuildRun it starts. Pure.

The run's name is derived from the cause alone, so whoever creates it a second time (a restart
after a crash, a redelivered webhook, a poll and a webhook for the same commit) is refused by the
API server:

    timer   <task>-<timer>-<YYYYMMDDHHMM>   the scheduled minute, UTC
    commit  <task>-<first 12 hex of the SHA>
    image   <task>-base-<first 12 hex of the base's new digest>

shortened to 63 characters (a label value) with a hash of the whole when longer. Timer names may
hold capitals and `_`, which object names may not: such names get a hash of the original, so `A_b`
and `a-b` stay distinct.

The run is owned by its task (deleted with it) and labelled with it, records its cause in
`spec.triggeredBy` and its type in `spec.trigger`, and a commit run builds exactly its commit.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Final

from dockyard.core.names import BUILD_TASK_LABEL, label_value, shortened
from dockyard.models import API_VERSION

NAME_LIMIT: Final = 63
TASK_KIND: Final = "BuildTask"
RUN_KIND: Final = "BuildRun"


@dataclass(frozen=True)
class TimerCause:
    timer: str
    occurrence: datetime

    trigger: ClassVar[str] = "Timer"

    def describe(self) -> str:
        return f"timer {self.timer} ({self.occurrence.strftime('%Y-%m-%dT%H:%MZ')})"

    def record(self) -> dict[str, str]:
        return {"timerName": self.timer, "scheduleOccurrence": self.occurrence.strftime("%Y-%m-%dT%H:%M:%SZ")}

    def suffix(self) -> str:
        return f"{_slug(self.timer)}-{self.occurrence.strftime('%Y%m%d%H%M')}"


@dataclass(frozen=True)
class CommitCause:
    commit: str
    branch: str | None
    delivery: str | None = None
    """`<host>:<delivery id>` for a webhook; None for a poll."""

    trigger: ClassVar[str] = "Commit"

    def describe(self) -> str:
        where = f" on {self.branch}" if self.branch else ""
        via = f" ({self.delivery.partition(':')[0]} webhook)" if self.delivery else ""
        return f"commit {self.commit[:12]}{where}{via}"

    def record(self) -> dict[str, str]:
        record = {"commit": self.commit}
        if self.branch:
            record["branch"] = self.branch
        if self.delivery:
            record["delivery"] = self.delivery[:255]
        return record

    def suffix(self) -> str:
        return self.commit[:12]


@dataclass(frozen=True)
class ImageUpdateCause:
    base: str
    """registry/repository:tag of the base image."""
    digest: str

    trigger: ClassVar[str] = "ImageUpdate"

    def describe(self) -> str:
        return f"base image {self.base} updated to {self.digest[:19]}"

    def record(self) -> dict[str, str]:
        return {"baseImage": self.base[:512], "baseImageDigest": self.digest[:128]}

    def suffix(self) -> str:
        return f"base-{self.digest.partition(':')[2][:12] or self.digest[:12]}"


Cause = TimerCause | CommitCause | ImageUpdateCause


def _slug(name: str) -> str:
    slug = re.sub(r"[^a-z0-9-]", "-", name.lower()).strip("-") or "timer"
    if slug != name:
        slug = f"{slug}-{hashlib.sha256(name.encode()).hexdigest()[:6]}"
    return slug


def run_name(task: str, cause: Cause) -> str:
    return shortened(f"{task}-{cause.suffix()}", NAME_LIMIT)


def build_trigger_run(task: Mapping[str, Any], cause: Cause) -> dict[str, Any]:
    meta = task["metadata"]
    return {
        "apiVersion": API_VERSION,
        "kind": RUN_KIND,
        "metadata": {
            "name": run_name(meta["name"], cause),
            "namespace": meta["namespace"],
            "labels": {BUILD_TASK_LABEL: label_value(meta["name"])},
            "ownerReferences": [
                {"apiVersion": API_VERSION, "kind": TASK_KIND, "name": meta["name"], "uid": meta["uid"]}
            ],
        },
        "spec": {"taskRef": {"name": meta["name"]}, "trigger": cause.trigger, "triggeredBy": cause.record()},
    }
