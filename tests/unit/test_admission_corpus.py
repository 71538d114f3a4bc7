"""The two admission corpora, without a cluster: `tests/invalid` covers every theme of issue #14
with several cases, each naming the field it expects in the API server's message; `tests/valid`
parses into the models; and what the API server refuses for a value's format, the models refuse
too (so a resource stored before a rule existed still gets a clear Ready=False)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel, ValidationError

from dockyard.models import BuildRunSpec, BuildTaskSpec, RegistrySpec, ReplicationSpec, WebhookSpec

ROOT = Path(__file__).resolve().parents[2]
INVALID = sorted((ROOT / "tests" / "invalid").glob("*.yaml"))
VALID = sorted((ROOT / "tests" / "valid").glob("*.yaml"))
SPECS: dict[str, type[BaseModel]] = {
    "Registry": RegistrySpec,
    "Webhook": WebhookSpec,
    "Replication": ReplicationSpec,
    "BuildTask": BuildTaskSpec,
    "BuildRun": BuildRunSpec,
}
THEMES = {
    "image-reference": "image references, repository names, Dockerfile target and platform",
    "context-path": "dockerfile and contextSubPath leaving the build context",
    "shape": "cron schedules, URLs, git revisions, addresses, other formats",
    "header-injection": "CR/LF and reserved names in webhook headers",
    "child-value": "names and values Kubernetes or the object stores refuse on the children",
    "transition": "updates that cannot work (oldSelf), empty task files",
    "cross-field": "rules between fields (exactly one of, tier requirements)",
}
# Admission-only: rules between fields, between an object's old and new state, and on metadata.name
# (the models parse `spec` alone). Everything else the API server refuses, the models refuse too.
ADMISSION_ONLY_THEMES = {"cross-field", "transition"}
ADMISSION_ONLY = {
    "registry-name-with-dots",
    "registry-name-too-long",
    "registry-name-starts-with-digit",
    "webhook-name-too-long",
    "buildtask-name-too-long",
}


def _header(path: Path, key: str) -> list[str]:
    prefix = f"# {key}:"
    return [line[len(prefix) :].strip() for line in path.read_text().splitlines() if line.startswith(prefix)]


def _documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def test_every_theme_has_several_cases() -> None:
    themes = Counter(_header(path, "theme")[0] for path in INVALID)
    assert set(themes) == set(THEMES)
    assert all(count >= 5 for count in themes.values()), themes


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_invalid_case_names_a_field(path: Path) -> None:
    assert len(_header(path, "theme")) == 1
    expected = _header(path, "expect")
    assert expected and expected[0].startswith(("spec", "metadata.name")), expected


def test_object_names_are_distinct_across_files() -> None:
    """Both corpora run in one namespace; a transition repeats its object within one file only."""
    for corpus in (INVALID, VALID):
        owners: dict[tuple[str, str], str] = {}
        for path in corpus:
            for doc in _documents(path):
                key = (doc["kind"], doc["metadata"]["name"])
                assert owners.setdefault(key, path.name) == path.name, f"{key} in {owners[key]} and {path.name}"


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.stem)
def test_valid_manifest_parses_into_the_models(path: Path) -> None:
    for doc in _documents(path):
        SPECS[doc["kind"]].model_validate(doc.get("spec") or {})


@pytest.mark.parametrize(
    "path",
    [p for p in INVALID if p.stem not in ADMISSION_ONLY and _header(p, "theme")[0] not in ADMISSION_ONLY_THEMES],
    ids=lambda p: p.stem,
)
def test_invalid_value_is_refused_by_the_models_too(path: Path) -> None:
    doc = _documents(path)[-1]
    with pytest.raises(ValidationError):
        SPECS[doc["kind"]].model_validate(doc.get("spec") or {})
