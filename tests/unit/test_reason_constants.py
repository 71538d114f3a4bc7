"""Condition types and reasons are constants (`core/conditions.py`): alerts and scripts match on
them, so a reason spelled out as a string literal somewhere else is refused here."""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "operator" / "dockyard"
CONDITION_CALLS = frozenset(
    {
        "set_condition",
        "status_patch",
        "would_change",
        "find_condition",
        "desired_status",
        "ready_condition",
        "Problem",
        "ReconcileError",
        "Temporary",
        "WaitsForUser",
        "Permanent",
        "post_event",
    }
)
EVENT_TYPES = frozenset({"Normal", "Warning"})  # Kubernetes' own Event types, not reasons
CAMEL = re.compile(r"^[A-Z][a-zA-Z0-9]+$")


def _name(func: ast.expr) -> str:
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""


def _is_reason_lookup(node: ast.expr) -> bool:
    """`x.get("reason")`, `x["reason"]`, `x.reason` and the same for `type`."""
    if isinstance(node, ast.Call) and _name(node.func) == "get" and node.args:
        first = node.args[0]
        return isinstance(first, ast.Constant) and first.value in ("reason", "type")
    if isinstance(node, ast.Subscript):
        key = node.slice
        return isinstance(key, ast.Constant) and key.value in ("reason", "type")
    return isinstance(node, ast.Attribute) and node.attr == "reason"


def literal_reasons(source: str) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and _name(node.func) in CONDITION_CALLS:
            values = [*node.args, *(k.value for k in node.keywords if k.arg in ("reason", "type"))]
            found += [
                (v.lineno, v.value)
                for v in values
                if isinstance(v, ast.Constant)
                and isinstance(v.value, str)
                and CAMEL.match(v.value)
                and v.value not in EVENT_TYPES
            ]
        if isinstance(node, ast.Compare) and any(_is_reason_lookup(side) for side in (node.left, *node.comparators)):
            for side in (node.left, *node.comparators):
                for value in ast.walk(side):
                    if isinstance(value, ast.Constant) and isinstance(value.value, str) and CAMEL.match(value.value):
                        found.append((value.lineno, value.value))
    return found


def test_no_module_spells_out_a_reason_or_condition_type() -> None:
    offenders = [
        f"{path.relative_to(PACKAGE)}:{line}: {value!r}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.name != "conditions.py"
        for line, value in literal_reasons(path.read_text())
    ]
    assert offenders == [], "use the constants of dockyard.core.conditions:\n" + "\n".join(offenders)


def test_the_check_catches_each_form() -> None:
    source = """
set_condition(c, type="Ready", status="True", reason="Reconciled", message="", observed_generation=1, now=t)
find_condition(conditions, "Ready")
Problem("QuotaExceeded", "m")
WaitsForUser("DependencyNotReady", "m")
if condition.get("reason") == "Progressing": pass
if error.reason in ("InvalidSpec",): pass
kube.post_event(body, "Warning", "ReceiverFailing", "m")
"""
    expected = ["Ready", "Reconciled", "Ready", "QuotaExceeded", "DependencyNotReady", "ReceiverFailing"]
    expected += ["Progressing", "InvalidSpec"]
    assert sorted(value for _, value in literal_reasons(source)) == sorted(expected)


def test_constants_and_event_types_pass() -> None:
    source = """
set_condition(c, type=ConditionType.READY, status="True", reason=Reason.RECONCILED, message="", now=t)
kube.post_event(body, "Normal", EventReason.READY, "m")
"""
    assert literal_reasons(source) == []
