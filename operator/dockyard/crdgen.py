"""Generate the CustomResourceDefinitions in `crds/` from the models.

Pydantic's JSON schema is turned into a Kubernetes structural schema: references inlined, optional
fields without `null`, no titles, every property described. `python -m dockyard.crdgen DIR` writes one
file per kind; `render_all()` is what the test compares the committed files with.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from dockyard.models import KINDS, VERSION, KindInfo
from dockyard.models.base import GROUP, defaults_of
from dockyard.models.formats import RULES_KEY

_DROPPED_KEYS = {"title", "$defs"}
_LIST_KEYS = ("x-kubernetes-validations", "required", RULES_KEY)


def structural_schema(model: type[BaseModel]) -> dict[str, Any]:
    raw = model.model_json_schema(by_alias=True, mode="validation")
    schema: dict[str, Any] = _convert(raw, raw.get("$defs", {}))
    return schema


def _convert(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, list):
        return [_convert(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    node = _inline(node, defs)
    if RULES_KEY in node:  # the value's format first, then the field's own rules
        node = dict(node)
        rules = node.pop(RULES_KEY)
        node["x-kubernetes-validations"] = [*rules, *node.get("x-kubernetes-validations", [])]
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROPPED_KEYS:
            continue
        if key == "default" and value is None:
            continue
        if key == "const":  # not part of Kubernetes' structural schema subset
            out["enum"] = [value]
            continue
        if key in ("properties", "additionalProperties") and isinstance(value, dict):
            out[key] = (
                {name: _convert(sub, defs) for name, sub in value.items()}
                if key == "properties"
                else _convert(value, defs)
            )
        elif key in ("items", "anyOf", "allOf"):
            out[key] = _convert(value, defs)
        else:
            out[key] = value
    if out.get("type") == "object":  # pydantic writes a dict's max_length as maxLength
        for length, count in (("maxLength", "maxProperties"), ("minLength", "minProperties")):
            if length in out:
                out[count] = out.pop(length)
        out = _ordered(out)
    if out.get("type") == "object" and not out.get("properties") and "additionalProperties" not in out:
        out["x-kubernetes-preserve-unknown-fields"] = True
    return _ordered(out)


_KEY_ORDER = ("type", "description", "format", "enum", "default")


def _ordered(node: dict[str, Any]) -> dict[str, Any]:
    """Schema keywords in a stable, readable order; property order stays as declared."""
    first = [key for key in _KEY_ORDER if key in node]
    rest = sorted(key for key in node if key not in _KEY_ORDER)
    return {key: node[key] for key in (*first, *rest)}


def _inline(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """Resolve `$ref`, `allOf: [one]` and `anyOf: [X, null]` into one schema node, merging the
    siblings (description, default, validations) of the referring node into it."""
    while True:
        if "$ref" in node:
            target = defs[node["$ref"].rsplit("/", 1)[-1]]
            node = _merge(target, {k: v for k, v in node.items() if k != "$ref"})
        elif "allOf" in node and len(node["allOf"]) == 1:
            node = _merge(node["allOf"][0], {k: v for k, v in node.items() if k != "allOf"})
        elif "anyOf" in node and any(option == {"type": "null"} for option in node["anyOf"]):
            options = [option for option in node["anyOf"] if option != {"type": "null"}]
            rest = {k: v for k, v in node.items() if k != "anyOf"}
            node = _merge(options[0], rest) if len(options) == 1 else {**rest, "anyOf": options}
        else:
            return node


def _merge(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in overlay.items():
        if key in _LIST_KEYS and key in merged:
            merged[key] = [*merged[key], *[v for v in value if v not in merged[key]]]
        else:
            merged[key] = value
    return merged


def build_crd(info: KindInfo) -> dict[str, Any]:
    spec_schema = structural_schema(info.spec)
    status_schema = structural_schema(info.status)
    root: dict[str, Any] = {
        "type": "object",
        "description": info.description,
        "properties": {
            "apiVersion": {"type": "string", "description": "APIVersion of this object: dockyard.dev/v1alpha1."},
            "kind": {"type": "string", "description": f"Kind of this object: {info.kind}."},
            "metadata": (
                {"type": "object", "properties": {"name": info.name_format.schema()}}
                if info.name_format
                else {"type": "object"}
            ),
            "spec": spec_schema,
            "status": status_schema,
        },
    }
    if info.spec_optional:
        spec_schema["default"] = defaults_of(info.spec)
    else:
        root["required"] = ["spec"]
    columns = []
    for column in info.columns:
        entry: dict[str, Any] = {
            "name": column.name,
            "type": column.type,
            "jsonPath": column.json_path,
            "description": column.description,
        }
        if column.priority:
            entry["priority"] = column.priority
        if column.format:
            entry["format"] = column.format
        columns.append(entry)
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": info.crd_name, "labels": {"app.kubernetes.io/part-of": "dockyard"}},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": info.kind,
                "listKind": f"{info.kind}List",
                "plural": info.plural,
                "singular": info.singular,
                "shortNames": list(info.short_names),
                "categories": list(info.categories),
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": root},
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": columns,
                }
            ],
        },
    }


class _NoAliasDumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True


def render(info: KindInfo) -> str:
    header = "# Generated from operator/dockyard/models by `make crds`; do not edit.\n"
    body = yaml.dump(build_crd(info), Dumper=_NoAliasDumper, sort_keys=False, width=100, allow_unicode=True)
    return header + body


def file_name(info: KindInfo) -> str:
    return f"{GROUP}_{info.plural}.yaml"


def render_all() -> dict[str, str]:
    return {file_name(info): render(info) for info in KINDS}


def main(argv: list[str]) -> int:
    target = Path(argv[1] if len(argv) > 1 else "crds")
    target.mkdir(parents=True, exist_ok=True)
    for name, text in render_all().items():
        (target / name).write_text(text)
        print(f"wrote {target / name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
