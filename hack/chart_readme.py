"""The chart README's values table, generated from values.schema.json (descriptions) and
values.yaml (defaults): `python hack/chart_readme.py` rewrites the table between the README's
markers; `--check` exits 1 when the README is stale (a test runs that)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

CHART = Path(__file__).resolve().parents[1] / "helm" / "dockyard"
BEGIN = "<!-- values:begin (hack/chart_readme.py) -->"
END = "<!-- values:end -->"


def documented(schema: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """(dotted value path, its schema) for each value a user sets: objects with declared properties
    are descended into, everything else (free-form maps, lists, scalars) is one value."""
    for name, node in schema.get("properties", {}).items():
        path = f"{prefix}{name}"
        if node.get("type") == "object" and "properties" in node and node.get("additionalProperties") is False:
            yield from documented(node, f"{path}.")
        else:
            yield path, node


def default(values: dict[str, Any], path: str) -> Any:
    node: Any = values
    for part in path.split("."):
        node = node[part]
    return node


def table() -> str:
    schema = json.loads((CHART / "values.schema.json").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    rows = ["| value | default | meaning |", "|---|---|---|"]
    for path, node in documented(schema):
        shown = json.dumps(default(values, path))
        rows.append(f"| `{path}` | `{shown}` | {node.get('description', '')} |")
    return "\n".join(rows)


def rendered(readme: str) -> str:
    head, rest = readme.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{table()}\n{END}{tail}"


def main() -> int:
    path = CHART / "README.md"
    current = path.read_text()
    wanted = rendered(current)
    if "--check" in sys.argv[1:]:
        if current != wanted:
            print("helm/dockyard/README.md is stale: run python hack/chart_readme.py", file=sys.stderr)
            return 1
        return 0
    path.write_text(wanted)
    return 0


if __name__ == "__main__":
    sys.exit(main())
