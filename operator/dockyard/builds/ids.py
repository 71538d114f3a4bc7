"""Run IDs like ACR's (`ca1`, `ca2`, …): short, unique and increasing per registry, never reused.

The counter is a ConfigMap per registry (`<registry>-run-ids`, owned by the Registry), advanced by
a merge patch that carries the resourceVersion it read: the API server refuses the patch (409) if
anyone advanced it meanwhile, so two operators, or two threads, never hand out the same number.
Within one process a lock per registry keeps a burst of runs from spinning on conflicts. A number
is written to the run's status right after it is taken; a crash between the two burns that number
(a gap, never a duplicate), and a run that already shows an ID never takes another.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from typing import Any, Final

from dockyard.core.apiserver import ApiError
from dockyard.core.conditions import Reason
from dockyard.core.errors import Temporary
from dockyard.core.kube import Kube
from dockyard.core.meta import Owner, metadata
from dockyard.core.names import RegistryNames

PREFIX: Final = "ca"
COUNTER_KEY: Final = "next"
ATTEMPTS: Final = 50

_locks: defaultdict[tuple[str, str], threading.Lock] = defaultdict(threading.Lock)
_locks_guard = threading.Lock()


def format_run_id(number: int) -> str:
    return f"{PREFIX}{number}"


def run_number(run_id: str) -> int | None:
    """The number of a run ID (for ordering), None if it is not one of ours."""
    digits = run_id.removeprefix(PREFIX)
    return int(digits) if run_id.startswith(PREFIX) and digits.isdigit() else None


def _lock(namespace: str, registry: str) -> threading.Lock:
    with _locks_guard:
        return _locks[(namespace, registry)]


def allocate_run_id(kube: Kube, registry: Owner) -> str:
    name = RegistryNames(registry.name).run_ids
    with _lock(registry.namespace, registry.name):
        for _ in range(ATTEMPTS):
            current = kube.get("v1", "ConfigMap", registry.namespace, name)
            if current is None:
                created = kube.create(_counter(registry, name, 2))
                if created is not None:
                    return format_run_id(1)
                continue
            number = int((current.get("data") or {}).get(COUNTER_KEY, "1"))
            version = current["metadata"]["resourceVersion"]
            try:
                patched = kube.patch(
                    "v1",
                    "ConfigMap",
                    registry.namespace,
                    name,
                    {"metadata": {"resourceVersion": version}, "data": {COUNTER_KEY: str(number + 1)}},
                )
            except ApiError as error:
                if error.status == 409:
                    continue
                raise
            if patched is not None:
                return format_run_id(number)
    raise Temporary(Reason.RECONCILE_FAILED, f"could not take a run ID from ConfigMap {name}: too many conflicts")


def _counter(registry: Owner, name: str, next_number: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(registry, name, "run-ids"),
        "data": {COUNTER_KEY: str(next_number)},
    }
