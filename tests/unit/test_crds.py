"""The committed CRDs are exactly what the models generate, and the schemas are structural and
documented so that `kubectl explain` describes every field."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from dockyard import crdgen
from dockyard.models import (
    KINDS,
    BuildRunSpec,
    BuildTaskSpec,
    RegistrySpec,
    ReplicationSpec,
    ScopeMapSpec,
    TokenSpec,
    WebhookSpec,
)

ROOT = Path(__file__).resolve().parents[2]
SPEC_MODELS = {
    "Registry": RegistrySpec,
    "Webhook": WebhookSpec,
    "Replication": ReplicationSpec,
    "BuildTask": BuildTaskSpec,
    "BuildRun": BuildRunSpec,
    "ScopeMap": ScopeMapSpec,
    "Token": TokenSpec,
}


def _schema_nodes(node: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(node, dict):
        yield path, node
        for name, sub in node.get("properties", {}).items():
            yield from _schema_nodes(sub, f"{path}.{name}")
        if isinstance(node.get("items"), dict):
            yield from _schema_nodes(node["items"], f"{path}[]")
        if isinstance(node.get("additionalProperties"), dict):
            yield from _schema_nodes(node["additionalProperties"], f"{path}{{}}")


def _root(info: Any) -> dict[str, Any]:
    return crdgen.build_crd(info)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def test_committed_crds_match_the_models() -> None:
    generated = crdgen.render_all()
    committed = {p.name: p.read_text() for p in (ROOT / "crds").glob("*.yaml")}
    assert sorted(committed) == sorted(generated), "run `make crds`"
    for name, text in generated.items():
        assert committed[name] == text, f"crds/{name} is stale: run `make crds`"


def test_helm_chart_uses_the_same_crd_files() -> None:
    chart_crds = ROOT / "helm" / "dockyard" / "crds"
    for name in crdgen.render_all():
        assert (chart_crds / name).resolve() == (ROOT / "crds" / name).resolve()


@pytest.mark.parametrize("info", KINDS, ids=lambda info: info.kind)
def test_every_field_is_described(info: Any) -> None:
    undocumented = [
        path
        for path, node in _schema_nodes(_root(info)["properties"]["spec"], "spec")
        if not node.get("description") and not path.endswith(("[]", "{}"))
    ]
    undocumented += [
        path
        for path, node in _schema_nodes(_root(info)["properties"]["status"], "status")
        if not node.get("description") and not path.endswith(("[]", "{}"))
    ]
    assert undocumented == []


@pytest.mark.parametrize("info", KINDS, ids=lambda info: info.kind)
def test_schema_is_structural(info: Any) -> None:
    text = yaml.safe_dump(_root(info))
    assert "$ref" not in text and "$defs" not in text and "title:" not in text
    for path, node in _schema_nodes(_root(info)):
        assert "type" in node or node.get("x-kubernetes-int-or-string"), f"{path} has no type"
        for option in node.get("anyOf", []):
            assert option.get("type") != "null", f"{path} is nullable"


@pytest.mark.parametrize("info", KINDS, ids=lambda info: info.kind)
def test_names_columns_and_status_subresource(info: Any) -> None:
    crd = crdgen.build_crd(info)
    version = crd["spec"]["versions"][0]
    assert crd["spec"]["names"]["categories"] == ["dockyard"]
    assert crd["spec"]["names"]["shortNames"]
    assert version["subresources"] == {"status": {}}
    assert {"Ready", "Age"} <= {c["name"] for c in version["additionalPrinterColumns"]} or info.kind == "BuildRun"


def test_registry_columns_show_sku_login_server_and_ready() -> None:
    columns = crdgen.build_crd(KINDS[0])["spec"]["versions"][0]["additionalPrinterColumns"]
    assert [c["name"] for c in columns if not c.get("priority")] == ["SKU", "Login Server", "Ready", "Age"]


def test_defaults_live_in_the_schema() -> None:
    spec = _root(KINDS[0])["properties"]["spec"]
    assert spec["properties"]["sku"]["default"] == "Standard"
    assert spec["properties"]["tls"]["default"] == {"mode": "SelfSigned", "minimumVersion": "tls1.2"}
    assert spec["default"]["sku"] == "Standard"
    assert spec["properties"]["tls"]["properties"]["minimumVersion"]["default"] == "tls1.2"
    assert spec["properties"]["storage"]["properties"]["reclaimPolicy"]["default"] == "Retain"


def test_nested_validations_are_merged_not_replaced() -> None:
    build = _root(KINDS[4])["properties"]["spec"]["properties"]["build"]
    messages = [rule["message"] for rule in build["x-kubernetes-validations"]]
    assert any("immutable" in m for m in messages)
    assert any("exactly one of dockerBuild" in m for m in messages)


def _example_documents() -> Iterator[dict[str, Any]]:
    for path in sorted((ROOT / "examples").glob("*.yaml")):
        yield from (doc for doc in yaml.safe_load_all(path.read_text()) if doc)


def test_every_kind_has_an_example() -> None:
    kinds = {doc["kind"] for doc in _example_documents() if doc["apiVersion"].startswith("dockyard.dev/")}
    assert kinds == {info.kind for info in KINDS}


@pytest.mark.parametrize(
    "doc",
    [d for d in _example_documents() if d["apiVersion"].startswith("dockyard.dev/")],
    ids=lambda d: f"{d['kind']}/{d['metadata']['name']}",
)
def test_examples_parse_into_the_models(doc: dict[str, Any]) -> None:
    spec = SPEC_MODELS[doc["kind"]].model_validate(doc["spec"])
    assert spec.model_dump(by_alias=True, exclude_none=True, exclude_defaults=True)
