"""Runs Dockyard's Argo CD health checks (helm/dockyard/argocd/<group>/<Kind>/health.lua) through a
real Lua 5.1 interpreter (lupa), the language level of Argo CD's gopher-lua: the script sees the
object as the global `obj` and returns `{status=..., message=...}`.

`python hack/argocd_health.py` runs every `health_test.yaml` the way Argo CD's own
resource_customizations tests do and prints one line per case; it exits 1 on a mismatch."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
CHECKS = ROOT / "helm" / "dockyard" / "argocd"
GROUP = "dockyard.dev"
HEALTH_STATUSES = ("Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown")


def check_dirs() -> list[Path]:
    """One directory per kind, as Argo CD lays them out: <group>/<Kind>/health.lua."""
    return sorted(p.parent for p in (CHECKS / GROUP).glob("*/health.lua"))


def evaluate(script: str, obj: dict[str, Any]) -> dict[str, str]:
    """The health a script returns for `obj` (a fresh interpreter per call: scripts keep no state)."""
    from lupa import lua51

    runtime = lua51.LuaRuntime(unpack_returned_tuples=True)
    runtime.globals().obj = runtime.table_from(obj, recursive=True)
    result = runtime.execute(script)
    if result is None:
        raise ValueError("the health script returned nothing")
    health = {str(k): str(v) for k, v in dict(result).items()}
    if health.get("status") not in HEALTH_STATUSES:
        raise ValueError(f"the health script returned an unknown status: {health}")
    return health


def cases(directory: Path) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(input path, object, expected healthStatus) for each case of a kind's health_test.yaml."""
    tests = yaml.safe_load((directory / "health_test.yaml").read_text())["tests"]
    for test in tests:
        obj = yaml.safe_load((directory / test["inputPath"]).read_text())
        yield test["inputPath"], obj, test["healthStatus"]


def scrubbed(obj: dict[str, Any]) -> dict[str, Any]:
    """A live object as testdata: without the server's bookkeeping and the test's namespace name."""
    metadata = {
        k: v
        for k, v in obj["metadata"].items()
        if k not in ("managedFields", "uid", "resourceVersion", "creationTimestamp", "namespace")
    }
    metadata["namespace"] = "default"
    for owner in metadata.get("ownerReferences") or []:
        owner["uid"] = "00000000-0000-0000-0000-000000000000"
    return {**obj, "metadata": metadata}


def main() -> int:
    failed = 0
    for directory in check_dirs():
        script = (directory / "health.lua").read_text()
        for path, obj, expected in cases(directory):
            got = evaluate(script, obj)
            ok = got["status"] == expected["status"] and got.get("message") == expected.get("message")
            failed += not ok
            print(f"{'ok  ' if ok else 'FAIL'} {directory.name}/{path}: {got['status']}: {got.get('message')}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
