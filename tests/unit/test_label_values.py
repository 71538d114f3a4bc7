"""Names that become label values (`dockyard.dev/build-run`, `dockyard.dev/build-task`): always a
valid label value, distinct names on distinct values, and the same value where the label is
written (a run, a Job) as where it is selected."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from dockyard.builds.manifests.job import child_metadata
from dockyard.builds.triggers.causes import TimerCause, build_trigger_run
from dockyard.core.meta import Owner
from dockyard.core.names import BUILD_RUN_LABEL, BUILD_TASK_LABEL, BuildRunNames, label_value

LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
PACKAGE = Path(__file__).resolve().parents[2] / "operator" / "dockyard"
# 62 characters then '-': `name[:63]` would end in '-', which the API refuses as a label value.
CUT_AT_A_DASH = "a" * 62 + "-tail"
CUT_AT_A_DOT = "b" * 62 + ".tail"


def test_label_values_are_valid_and_distinct() -> None:
    for name in (CUT_AT_A_DASH, CUT_AT_A_DOT, "x" * 253, "short"):
        value = label_value(name)
        assert len(value) <= 63 and LABEL_VALUE.match(value), value
    assert label_value("short") == "short", "a name that fits is its own label"
    assert label_value("c" * 63) == "c" * 63
    # Two long names with the same first 63 characters get different values.
    assert label_value("d" * 63 + "-one") != label_value("d" * 63 + "-two")


def test_a_long_run_labels_its_job_like_the_watch_expects() -> None:
    run = "r" * 62 + ".attempt-2"
    owner = Owner("dockyard.dev/v1alpha1", "BuildRun", run, "team", "u-1")
    labels = child_metadata(owner, BuildRunNames(run).job, "build")["labels"]
    assert labels[BUILD_RUN_LABEL] == BuildRunNames(run).label == label_value(run)
    assert all(LABEL_VALUE.match(v) and len(v) <= 63 for v in labels.values()), labels


def test_a_trigger_run_labels_its_task_with_the_label_value() -> None:
    task = {"metadata": {"name": CUT_AT_A_DASH, "namespace": "team", "uid": "u-1"}}
    run = build_trigger_run(task, TimerCause("nightly", datetime(2026, 12, 1, 2, tzinfo=UTC)))
    value = run["metadata"]["labels"][BUILD_TASK_LABEL]
    assert value == label_value(CUT_AT_A_DASH) and LABEL_VALUE.match(value)


def test_no_name_is_cut_into_a_label_by_slicing() -> None:
    """Every writer and selector goes through `label_value`: a `[:63]` cut elsewhere would label
    and select differently."""
    sliced = [
        f"{path.relative_to(PACKAGE)}:{number}"
        for path in PACKAGE.rglob("*.py")
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if re.search(r"\[:\s*63\]", line) and not line.lstrip().startswith(("#", '"'))
    ]
    assert sliced == [], sliced
