"""BuildTask triggers: a kopf timer on every task with timers, a commit or a base-image trigger ticks its
triggers (`builds/triggers/service.py`); push webhooks arrive on the event intake
(`builds/triggers/endpoint.py`, wired in `main.py`), pushes of base images in Dockyard registries
on the event bus (`builds/triggers/images.py`, a subscriber wired in `main.py`). Each tick is short and idempotent: it decides,
creates at most one run per due cause (named after the cause), records the cause in the task's
status, and never sleeps."""

from __future__ import annotations

from typing import Any, Final

import kopf

from dockyard.builds.triggers.service import triggers_from
from dockyard.models import GROUP, VERSION

TICK_SECONDS: Final = 5.0
"""A timer's run starts at most this late; a poll at most this much after it is due."""


def _has_triggers(spec: kopf.Spec, **_: Any) -> bool:
    triggers = spec.get("triggers") or {}
    return bool(triggers.get("timers") or triggers.get("sourceCommit") or triggers.get("baseImageUpdate"))


@kopf.timer(GROUP, VERSION, "buildtasks", id="triggers", interval=TICK_SECONDS, when=_has_triggers)
def tick_triggers(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    triggers_from(memo).tick(body)


@kopf.on.delete(GROUP, VERSION, "buildtasks", id="forget-triggers", optional=True)
def forget_task(uid: str, memo: kopf.Memo, **_: Any) -> None:
    triggers_from(memo).forget(uid)
