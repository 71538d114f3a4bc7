"""pytest imports test modules by their basename (tests/ has no packages, `pythonpath` holds both
folders): two test files with one name in tests/unit and tests/integration make the whole run fail
at collection. Caught here, before the suite runs."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def test_every_test_module_has_its_own_name() -> None:
    names = Counter(path.name for path in TESTS.rglob("*.py") if path.name != "__init__.py")
    assert [name for name, count in names.items() if count > 1] == []
