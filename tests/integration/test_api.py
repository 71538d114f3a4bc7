"""The CRDs on a real API server: examples and the valid corpus (`tests/valid`) are accepted, the
invalid corpus (`tests/invalid`) is rejected with a message that names the offending field,
immutable fields stay put, and `kubectl explain` and the printer columns work."""

from __future__ import annotations

import json
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from dockyard import crdgen
from dockyard.models import KINDS

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
INVALID = sorted((ROOT / "tests" / "invalid").glob("*.yaml"))
VALID = sorted((ROOT / "tests" / "valid").glob("*.yaml"))


def _expectations(path: Path) -> list[str]:
    return [line.split(":", 1)[1].strip() for line in path.read_text().splitlines() if line.startswith("# expect:")]


def _apply(cluster: Any, namespace: str, manifest: str) -> subprocess.CompletedProcess[str]:
    return cluster.kubectl("apply", "-n", namespace, "-f", "-", input=manifest, check=False)


@pytest.fixture(scope="module")
def crds(cluster: Any) -> list[str]:
    cluster.kubectl("apply", "--server-side", "-f", str(ROOT / "crds"))
    names = [info.crd_name for info in KINDS]
    cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", *[f"crd/{n}" for n in names])
    return names


@pytest.fixture(scope="module")
def corpus_namespace(cluster: Any) -> Iterator[str]:
    """One namespace for both corpora: their object names are distinct (a unit test checks it), and a
    namespace per manifest would cost more than the manifests."""
    name = f"t-corpus-{secrets.token_hex(3)}"
    cluster.kubectl("create", "namespace", name)
    try:
        yield name
    finally:
        cluster.kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found", check=False)


def test_corpora_are_large_enough() -> None:
    assert len(INVALID) >= 120 and len(VALID) >= 10
    for path in INVALID:
        assert _expectations(path), f"{path.name} has no '# expect:' lines"


def test_every_crd_is_installed_and_established(cluster: Any, crds: list[str]) -> None:
    out = json.loads(cluster.kubectl("get", "crd", "-o", "json").stdout)
    established = {
        item["metadata"]["name"]
        for item in out["items"]
        if any(c["type"] == "Established" and c["status"] == "True" for c in item["status"]["conditions"])
    }
    assert set(crds) <= established


def test_examples_are_accepted(cluster: Any, crds: list[str], namespace: str) -> None:
    result = cluster.kubectl("apply", "-n", namespace, "-f", str(ROOT / "examples"), check=False)
    assert result.returncode == 0, result.stderr
    listed = json.loads(cluster.kubectl("get", "dockyard", "-n", namespace, "-o", "json").stdout)
    kinds = {item["kind"] for item in listed["items"]}
    assert kinds == {info.kind for info in KINDS}


def test_schema_defaults_are_applied_by_the_api_server(cluster: Any, crds: list[str], namespace: str) -> None:
    manifest = "apiVersion: dockyard.dev/v1alpha1\nkind: Registry\nmetadata: {name: defaults}\n"
    assert _apply(cluster, namespace, manifest).returncode == 0
    spec = json.loads(cluster.kubectl("get", "registry", "defaults", "-n", namespace, "-o", "json").stdout)["spec"]
    assert spec["sku"] == "Standard"
    assert spec["tls"] == {"mode": "SelfSigned", "minimumVersion": "tls1.2"}
    assert spec["adminUser"] == {"enabled": False}
    assert spec["storage"]["reclaimPolicy"] == "Retain"


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_invalid_manifest_is_rejected_naming_the_field(
    cluster: Any, crds: list[str], corpus_namespace: str, path: Path
) -> None:
    """A manifest of two documents is a transition: the first is created, the second refused."""
    result = _apply(cluster, corpus_namespace, path.read_text())
    assert result.returncode != 0, f"{path.name} was accepted"
    message = result.stderr
    assert "is invalid" in message, message
    for expected in _expectations(path):
        assert expected in message, f"{path.name}: {expected!r} not in {message!r}"


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.stem)
def test_valid_manifest_is_accepted(cluster: Any, crds: list[str], corpus_namespace: str, path: Path) -> None:
    result = cluster.kubectl("apply", "--dry-run=server", "-n", corpus_namespace, "-f", str(path), check=False)
    assert result.returncode == 0, f"{path.name} was refused: {result.stderr}"
    documents = [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    assert result.stdout.count("(server dry run)") == len(documents), result.stdout


def _doc(kind: str, name: str, spec: dict[str, Any]) -> str:
    return yaml.safe_dump(
        {"apiVersion": "dockyard.dev/v1alpha1", "kind": kind, "metadata": {"name": name}, "spec": spec}
    )


def test_webhook_registry_is_immutable(cluster: Any, crds: list[str], namespace: str) -> None:
    spec = {"registryRef": {"name": "one"}, "serviceUri": "https://hooks.example.com/x", "actions": ["push"]}
    assert _apply(cluster, namespace, _doc("Webhook", "hook", spec)).returncode == 0
    moved = _apply(cluster, namespace, _doc("Webhook", "hook", {**spec, "registryRef": {"name": "two"}}))
    assert moved.returncode != 0
    assert "spec.registryRef" in moved.stderr and "registryRef is immutable" in moved.stderr


def test_storage_backend_cannot_change_in_place(cluster: Any, crds: list[str], namespace: str) -> None:
    assert _apply(cluster, namespace, _doc("Registry", "reg", {"sku": "Premium"})).returncode == 0
    moved = _apply(
        cluster, namespace, _doc("Registry", "reg", {"sku": "Premium", "storage": {"gcs": {"bucket": "images"}}})
    )
    assert moved.returncode != 0
    assert "spec.storage" in moved.stderr and "storage backend cannot be changed in place" in moved.stderr


def test_tier_can_change_in_place(cluster: Any, crds: list[str], namespace: str) -> None:
    assert _apply(cluster, namespace, _doc("Registry", "tiered", {"sku": "Basic"})).returncode == 0
    assert _apply(cluster, namespace, _doc("Registry", "tiered", {"sku": "Premium"})).returncode == 0
    sku = cluster.kubectl("get", "registry", "tiered", "-n", namespace, "-o", "jsonpath={.spec.sku}").stdout
    assert sku == "Premium"


def test_status_is_a_subresource(cluster: Any, crds: list[str], namespace: str) -> None:
    assert _apply(cluster, namespace, _doc("Registry", "status-sub", {})).returncode == 0
    patch = json.dumps({"status": {"loginServer": "status-sub.ns:5000"}})
    cluster.kubectl("patch", "registry", "status-sub", "-n", namespace, "--type=merge", "-p", patch)
    plain = cluster.kubectl("get", "registry", "status-sub", "-n", namespace, "-o", "json").stdout
    assert "loginServer" not in plain
    cluster.kubectl(
        "patch", "registry", "status-sub", "-n", namespace, "--subresource=status", "--type=merge", "-p", patch
    )
    assert (
        cluster.kubectl("get", "registry", "status-sub", "-n", namespace, "-o", "jsonpath={.status.loginServer}").stdout
        == "status-sub.ns:5000"
    )


def test_printer_columns_and_short_names(cluster: Any, crds: list[str], namespace: str) -> None:
    assert _apply(cluster, namespace, _doc("Registry", "columns", {"sku": "Premium"})).returncode == 0
    table = cluster.kubectl("get", "reg", "-n", namespace).stdout.splitlines()
    assert table[0].split()[:5] == ["NAME", "SKU", "LOGIN", "SERVER", "READY"]
    assert table[1].split()[:2] == ["columns", "Premium"]


@pytest.mark.parametrize(
    "field,phrase",
    [
        ("registry.spec.sku", "Service tier"),
        ("registry.spec.storage.reclaimPolicy", "Retain keeps"),
        ("webhook.spec.scope", "repo:tag"),
        ("replication.spec.regionEndpointEnabled", "global endpoint"),
        ("buildtask.spec.triggers.timers.schedule", "Cron schedule in UTC"),
        ("buildrun.status.outputImages", "Images pushed"),
    ],
)
def test_kubectl_explain_documents_fields(cluster: Any, crds: list[str], field: str, phrase: str) -> None:
    out = cluster.kubectl("explain", field).stdout
    assert phrase in " ".join(out.split())


def test_generated_crds_are_what_is_installed(cluster: Any, crds: list[str]) -> None:
    for info in KINDS:
        installed = json.loads(cluster.kubectl("get", "crd", info.crd_name, "-o", "json").stdout)
        wanted = crdgen.build_crd(info)
        assert installed["spec"]["versions"][0]["schema"] == wanted["spec"]["versions"][0]["schema"]


def test_transitions_that_stay_allowed(cluster: Any, crds: list[str], namespace: str) -> None:
    """The transition rules refuse only what cannot work: a volume grows, a run is canceled, a timer
    list is reordered with unnamed timers keeping distinct positional names."""
    grow = {"storage": {"persistentVolume": {"size": "10Gi"}}}
    assert _apply(cluster, namespace, _doc("Registry", "grows", grow)).returncode == 0
    grown = _apply(cluster, namespace, _doc("Registry", "grows", {"storage": {"persistentVolume": {"size": "1Ti"}}}))
    assert grown.returncode == 0, grown.stderr
    run = {
        "build": {
            "registryRef": {"name": "contoso"},
            "source": {"archive": {"url": "https://example.com/ctx.tar.gz"}},
            "dockerBuild": {"images": ["app:v1"]},
        }
    }
    assert _apply(cluster, namespace, _doc("BuildRun", "cancels", run)).returncode == 0
    canceled = _apply(cluster, namespace, _doc("BuildRun", "cancels", {**run, "cancel": True}))
    assert canceled.returncode == 0, canceled.stderr
    task = {
        "registryRef": {"name": "contoso"},
        "source": {"git": {"url": "https://github.com/org/app.git"}},
        "dockerBuild": {"images": ["app:v1"]},
        "triggers": {"timers": [{"schedule": "0 1 * * *"}, {"name": "t1", "schedule": "0 2 * * *"}]},
    }
    refused = _apply(cluster, namespace, _doc("BuildTask", "timers", task))
    assert refused.returncode != 0 and "is called t<N> after its position" in refused.stderr
    task["triggers"] = {"timers": [{"name": "t1", "schedule": "0 2 * * *"}, {"schedule": "0 1 * * *"}]}
    accepted = _apply(cluster, namespace, _doc("BuildTask", "timers", task))
    assert accepted.returncode == 0, accepted.stderr
