"""kubectl's output habits for the plugin, all pure: `-o json|yaml` prints the objects (a `List`
when there are several, as kubectl does), `-o wide` adds columns, the default is a table with
upper-case headers and three spaces between columns, and `-A` adds a NAMESPACE column first."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Final

import yaml

OUTPUTS: Final = ("json", "yaml", "wide")


def format_objects(objects: Sequence[Mapping[str, Any]], output: str, *, single: bool = False) -> str:
    """`-o json` / `-o yaml` of one object (`single`) or a kubectl-style `List`."""
    document: Any = (
        dict(objects[0]) if single and len(objects) == 1 else {"apiVersion": "v1", "kind": "List", "items": objects}
    )
    if output == "json":
        return json.dumps(document, indent=4, default=str)
    return yaml.safe_dump(json.loads(json.dumps(document, default=str)), sort_keys=False).rstrip("\n")


def format_table(rows: Sequence[Sequence[str]], headers: Sequence[str]) -> str:
    """Columns padded to their widest cell; trailing blanks trimmed."""
    table = [tuple(headers), *(tuple(str(cell) for cell in row) for row in rows)]
    widths = [max(len(row[i]) for row in table) for i in range(len(headers))]
    return "\n".join("   ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in table)


def with_namespace(
    rows: Sequence[Sequence[str]], headers: Sequence[str], namespaces: Sequence[str]
) -> tuple[list[list[str]], list[str]]:
    """`-A`: NAMESPACE as the first column."""
    return [[ns, *row] for ns, row in zip(namespaces, rows, strict=True)], ["NAMESPACE", *headers]


def condition(obj: Mapping[str, Any], type_: str) -> Mapping[str, Any] | None:
    for item in (obj.get("status") or {}).get("conditions") or []:
        if item.get("type") == type_:
            return dict(item)
    return None


def ready_text(obj: Mapping[str, Any]) -> str:
    """`True`, `False (Reason)`, or `-` before the operator reported."""
    ready = condition(obj, "Ready")
    if ready is None:
        return "-"
    return "True" if ready.get("status") == "True" else f"{ready.get('status')} ({ready.get('reason')})"
