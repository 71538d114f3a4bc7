"""Argo CD never shows drift caused by Dockyard: every example is applied (server-side, as Argo CD
does with ServerSideApply=true), the operator reconciles it, and a server-side dry-run apply of
the same manifests changes nothing — same spec, labels, annotations, generation and field
ownership — while every field the manifests set reads back as written (what Argo CD's
client-side diff compares)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from conftest import running_operator
from kubernetes.dynamic import DynamicClient

from realregistry import ROOT, until

pytestmark = pytest.mark.integration
MANAGER = "argocd-controller"


def _manifests() -> list[dict[str, Any]]:
    docs = [d for p in sorted((ROOT / "examples").glob("*.yaml")) for d in yaml.safe_load_all(p.read_text()) if d]
    assert {d["kind"] for d in docs} >= {"Registry", "Webhook", "Replication", "BuildTask", "BuildRun", "Secret"}
    return docs


def _apply(cluster: Any, namespace: str, docs: list[dict[str, Any]], *extra: str) -> list[dict[str, Any]]:
    out = cluster.kubectl(
        "apply",
        "--server-side",
        f"--field-manager={MANAGER}",
        "-n",
        namespace,
        "-o",
        "json",
        *extra,
        "-f",
        "-",
        input=yaml.safe_dump_all(docs),
    ).stdout
    parsed = json.loads(out)
    return list(parsed["items"]) if parsed.get("kind") == "List" else [parsed]


def _live(cluster: Any, namespace: str, doc: dict[str, Any]) -> dict[str, Any]:
    kind = doc["kind"].lower() + ("" if doc["kind"] == "Secret" else ".dockyard.dev")
    out = cluster.kubectl(
        "get", kind, doc["metadata"]["name"], "-n", namespace, "-o", "json", "--show-managed-fields"
    ).stdout
    return dict(json.loads(out))


def _reconciled(obj: dict[str, Any]) -> bool:
    status = obj.get("status") or {}
    if obj["kind"] == "BuildRun":
        return bool(status.get("status"))
    return status.get("observedGeneration") == obj["metadata"]["generation"]


def _subset_differences(want: Any, have: Any, path: str = "") -> list[str]:
    if isinstance(want, dict):
        if not isinstance(have, dict):
            return [path]
        return [d for k, v in want.items() for d in _subset_differences(v, have.get(k), f"{path}.{k}")]
    if isinstance(want, list):
        if not isinstance(have, list) or len(want) != len(have):
            return [path]
        return [
            d
            for i, (w, h) in enumerate(zip(want, have, strict=True))
            for d in _subset_differences(w, h, f"{path}[{i}]")
        ]
    return [] if want == have else [f"{path}: {want!r} != {have!r}"]


@pytest.fixture(scope="module")
def applied(cluster: Any) -> Iterator[tuple[Any, str, list[dict[str, Any]]]]:
    cluster.kubectl("apply", "--server-side", "-f", "crds")
    cluster.kubectl(
        "wait", "--for=condition=Established", "--timeout=60s", "crd", "-l", "app.kubernetes.io/part-of=dockyard"
    )
    namespace = f"t-no-drift-{os.getpid()}"
    cluster.kubectl("create", "namespace", namespace)
    docs = _manifests()
    try:
        with running_operator(cluster, "-n", namespace):
            _apply(cluster, namespace, docs)
            # Replications have no handler on this branch yet: they are applied and compared, not awaited
            awaited = [d for d in docs if d["kind"] not in ("Secret", "Replication")]
            for doc in awaited:
                until(lambda doc=doc: _reconciled(_live(cluster, namespace, doc)), f"{doc['kind']} reconciled", 90)
            time.sleep(8)  # a few drift-repair rounds (DOCKYARD_DRIFT_INTERVAL_SECONDS=3 in the suite)
            yield cluster, namespace, docs
    finally:
        cluster.kubectl("delete", "namespace", namespace, "--wait=false", "--ignore-not-found", check=False)


def _dry_run_apply(api: Any, namespace: str, doc: dict[str, Any]) -> dict[str, Any]:
    """The object a server-side apply of `doc` would leave (the API's dryRun=All; kubectl's apply
    output drops managedFields)."""
    resource = DynamicClient(api).resources.get(api_version=doc["apiVersion"], kind=doc["kind"])
    applied = resource.server_side_apply(body=doc, namespace=namespace, field_manager=MANAGER, dry_run="All")
    return dict(api.sanitize_for_serialization(applied.to_dict()))


def _consistent_pair(
    cluster: Any, api: Any, namespace: str, doc: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The live object and the dry-run apply of `doc` over that same version. A BuildRun keeps
    moving (queued, then its run ID, then its Job's progress), so a status write may land between
    the two reads; the pair is read again until both saw one resourceVersion (a no-op apply keeps it)."""
    for _ in range(10):
        live = _live(cluster, namespace, doc)
        again = _dry_run_apply(api, namespace, doc)
        if again["metadata"]["resourceVersion"] == live["metadata"]["resourceVersion"]:
            return live, again
        time.sleep(1)
    return live, again  # still moving after 10 tries: compared as read, so the assertions report it


def test_server_side_dry_run_apply_changes_nothing(api: Any, applied: tuple[Any, str, list[dict[str, Any]]]) -> None:
    cluster, namespace, docs = applied
    for doc in docs:
        live, again = _consistent_pair(cluster, api, namespace, doc)
        where = f"{doc['kind']} {doc['metadata']['name']}"
        assert (
            again["metadata"]["generation" if "generation" in live["metadata"] else "resourceVersion"]
            == (live["metadata"]["generation" if "generation" in live["metadata"] else "resourceVersion"])
        ), where
        assert again.get("spec", again.get("data")) == live.get("spec", live.get("data")), where
        for field in ("labels", "annotations", "managedFields"):
            assert again["metadata"].get(field) == live["metadata"].get(field), f"{where}: {field}"


def test_every_field_the_examples_set_reads_back_as_written(applied: tuple[Any, str, list[dict[str, Any]]]) -> None:
    cluster, namespace, docs = applied
    for doc in docs:
        live = _live(cluster, namespace, doc)
        want = {k: v for k, v in doc.items() if k not in ("metadata", "stringData")}
        assert not _subset_differences(want, live), f"{doc['kind']} {doc['metadata']['name']}"
        only_spec_owner = {
            m["manager"] for m in live["metadata"]["managedFields"] if "f:spec" in (m.get("fieldsV1") or {})
        }
        assert only_spec_owner <= {MANAGER}, (
            f"{doc['kind']} {doc['metadata']['name']}: spec written by {only_spec_owner}"
        )
