"""The value formats of `dockyard.models.formats`: what the Python checks accept and refuse (the
API server's CEL twins are exercised by the corpora in tests/integration/test_api.py), and that
every rule a model declares reaches the generated CRD."""

from __future__ import annotations

import re
import typing
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from dockyard import crdgen
from dockyard.models import KINDS, BuildTaskSpec, RegistrySpec, WebhookSpec, cron
from dockyard.models import formats as f
from dockyard.models.builds import Triggers

SHA = "sha256:" + "ab" * 32


def _ok(pattern: str, value: str) -> bool:
    return f.pattern_check(pattern, "bad")(value) is None


@pytest.mark.parametrize(
    "value",
    [
        "registry:3",
        "registry:3.0.0",
        "library/registry",
        "docker.io/library/registry:3@" + SHA,
        "registry@" + SHA,
        "localhost:5000/app",
        "localhost/app:v1",
        "registry.example.com:5000/team_a/hello__world:v1.0.0-rc.1",
        "[2001:db8::1]:5000/app:v1",
        "ghcr.io/osscontainertools/kaniko:v1.25.0-debug",
        "app:Latest_2",
    ],
)
def test_image_references_accepted(value: str) -> None:
    assert f.image_reference_problem(value) is None


@pytest.mark.parametrize(
    "value",
    [
        "docker.io/Library/registry:3",  # uppercase repository
        "Team/app",  # an uppercase first component is neither a host nor a repository
        "registry:3 --insecure",
        "registry:3.0.0+build5",
        "registry:",
        "registry@sha256:short",
        "app:" + "x" * 129,
        "-app",
        "app//x",
        "app_:v1",
        "registry:3\n",
    ],
)
def test_image_references_refused(value: str) -> None:
    assert f.image_reference_problem(value) == f.IMAGE_REFERENCE_MESSAGE


@pytest.mark.parametrize(
    "value",
    [
        "app:{{.Run.ID}}",
        "{{.Run.Registry}}/hello-world:{{.Run.ID}}",
        "{{.Values.repository}}:{{ .Values.tag }}",
        "samples/hello-world:{{.Run.ID}}-{{.Run.Date}}",
        "app-{{.Values.flavour}}/x:{{- .Run.ID -}}",
        "helloworld:{{.Build.ID}}",
        "localhost:5000/hello-world",
        "app",
    ],
)
def test_push_images_accepted(value: str) -> None:
    assert _ok(f.PUSH_IMAGE, value)


@pytest.mark.parametrize(
    "value",
    [
        "app@" + SHA,
        "App:v1",
        "app:v1 --no-push",
        "app:{{ now }}",
        "app:{{.Secrets.token}}",
        "app:{{.Run.ID}",
        "app:1.0+build",
        "app:",
    ],
)
def test_push_images_refused(value: str) -> None:
    assert not _ok(f.PUSH_IMAGE, value)


def test_repositories_have_no_tag() -> None:
    assert _ok(f.REPOSITORY, "registry.example.com:5000/team/app/cache")
    assert not _ok(f.REPOSITORY, "app/cache:latest")
    assert _ok(f.REPOSITORY_PATH, "dockyard/sources")
    assert not _ok(f.REPOSITORY_PATH, "localhost:5000/dockyard/sources")


@pytest.mark.parametrize(
    "value, ok",
    [
        ("Dockerfile", True),
        ("docker/Dockerfile.prod", True),
        ("./services/api", True),
        ("a..b/Dockerfile", True),
        ("../Dockerfile", False),
        ("docker/../../Dockerfile", False),
        ("services/..", False),
        ("/kaniko/.docker/config.json", False),
        (" Dockerfile", False),
        ("Docker\nfile", False),
    ],
)
def test_context_paths(value: str, ok: bool) -> None:
    assert (f.context_path_problem(value) is None) is ok


@pytest.mark.parametrize(
    "value",
    [
        "0 */6 * * *",
        "30 9 * * Mon-Fri",
        "30 9 * * mon-fri",
        "0 0 1 Jan,Apr,Jul,Oct *",
        "0 0 ? * SUN",
        "*/15 * * * *",
        "0-59/5 0-23/2 1-31/3 1-12/4 0-7/2",
        "0 12 1-7 * 1",
        "  5 4 * * 7  ",
        "00 09 * * *",
    ],
)
def test_cron_schedules_accepted(value: str) -> None:
    assert cron.cron_problem(value) is None


@pytest.mark.parametrize(
    "value",
    [
        "61 * * * *",
        "0 24 * * *",
        "*/0 * * * *",
        "0 0 0 * *",
        "0 0 32 * *",
        "0 0 1 13 *",
        "0 0 * * 8",
        "0 0 * * * *",
        "0 0 * *",
        "0 9 * * Mon-Fry",
        "0-60 * * * *",
        "@daily",
        "every hour",
    ],
)
def test_cron_schedules_refused(value: str) -> None:
    assert cron.cron_problem(value) == cron.CRON_MESSAGE


@pytest.mark.parametrize(
    "value, ok",
    [
        ("https://github.com/org/app.git", True),
        ("http://gitea.gitea.svc:3000/org/app.git", True),
        ("https://hooks.example.com:8443/acr?x=a%20b", True),
        ("https://user@git.example.com/x", True),
        ("https://github.com/org/my app.git", False),
        ("https:///org/app.git", False),
        ("https://hooks.example.com:99999/x", False),
        ("https://hooks.example.com:0/x", False),
        ("https://hooks.example.com:https/x", False),
        ("ftp://example.com/x", False),
        ("git@github.com:org/app.git", False),
        ("/acr/events", False),
        ("https://example.com/\u00a0x", False),
    ],
)
def test_http_urls(value: str, ok: bool) -> None:
    assert (f.http_url_problem(value) is None) is ok


@pytest.mark.parametrize(
    "value, ok",
    [
        ("main", True),
        ("release/v1.2", True),
        ("v1.0.0", True),
        ("0123456789abcdef0123456789abcdef01234567", True),
        ("release 1.2", False),
        ("main..feature", False),
        ("feature/", False),
        ("topic.lock", False),
        ("HEAD@{1}", False),
        ("a:b", False),
        ("0123abc", False),
    ],
)
def test_git_revisions(value: str, ok: bool) -> None:
    assert (f.revision_problem(value) is None) is ok


@pytest.mark.parametrize(
    "name, problem",
    [
        ("Authorization", None),
        ("X-Team", None),
        ("Accept", None),
        ("Content-Type", "reserved"),
        ("x-dockyard-signature-256", "reserved"),
        ("HOST", "reserved"),
        ("X Team", "shape"),
    ],
)
def test_header_names(name: str, problem: str | None) -> None:
    found = f.header_name_problem(name)
    if problem is None:
        assert found is None
    elif problem == "reserved":
        assert found is not None and "is set by Dockyard" in found
    else:
        assert found == f.HEADER_NAME_MESSAGE


@pytest.mark.parametrize(
    "value, ok",
    [("Bearer abc", True), ("team\twest", True), ("", True), ("a\r\nX-Admin: 1", False), ("a\nb", False), ("é", False)],
)
def test_header_values(value: str, ok: bool) -> None:
    assert _ok(f.HEADER_VALUE, value) is ok


@pytest.mark.parametrize(
    "value, ok",
    [("10Gi", True), ("1.5Ti", True), ("500G", True), ("0", False), ("0Gi", False), ("0.0", False), ("100GB", False)],
)
def test_storage_sizes(value: str, ok: bool) -> None:
    assert (f.storage_size_problem(value) is None) is ok


def test_quantities_compare_across_units() -> None:
    assert f.parse_quantity("1Gi") > f.parse_quantity("512Mi")
    assert f.parse_quantity("1500m") < f.parse_quantity("2")
    assert f.parse_quantity("1e3") == f.parse_quantity("1k")
    assert f.parse_quantity(2) == 2.0


@pytest.mark.parametrize(
    "requests, limits, problem",
    [
        ({"cpu": "100m", "memory": "128Mi"}, {"cpu": 1, "memory": "128Mi"}, None),
        ({"hugepages-2Mi": "64Mi"}, None, None),
        ({"nvidia.com/gpu": 1}, {"nvidia.com/gpu": "1"}, None),
        ({"nvidia.com/gpu": 1}, None, "an extended resource needs a limit"),
        ({"hugepages-2Mi": "32Mi"}, {"hugepages-2Mi": "64Mi"}, "cannot be overcommitted"),
        ({"memory": "1Gi"}, {"memory": "512Mi"}, "requests.memory must not exceed limits.memory"),
        ({"gpu": "1"}, None, "resource gpu is not a container resource"),
        ({"cpu": "-1"}, None, "is not a Kubernetes quantity"),
        (None, {"cpu": -2}, "cannot be negative"),
        (None, {"memory": "1GB"}, "is not a Kubernetes quantity"),
    ],
)
def test_resources(requests: Any, limits: Any, problem: str | None) -> None:
    found = f.resources_problem(requests, limits)
    assert found is None if problem is None else (found is not None and problem in found)


@pytest.mark.parametrize(
    "check, value, ok",
    [
        (f.s3_bucket_problem, "fabrikam-prod.images-2026", True),
        (f.s3_bucket_problem, "My_Images", False),
        (f.s3_bucket_problem, "192.168.10.20", False),
        (f.s3_bucket_problem, "images..prod", False),
        (f.s3_bucket_problem, "xn--images", False),
        (f.s3_bucket_problem, "images-s3alias", False),
        (f.gcs_bucket_problem, "images.example.com", True),
        (f.gcs_bucket_problem, "my_images-1", True),
        (f.gcs_bucket_problem, "my-google-images", False),
        (f.gcs_bucket_problem, "goog-images", False),
        (f.gcs_bucket_problem, "x" * 64, False),
        (f.pattern_check(f.AZURE_ACCOUNT, "bad"), "contosoregistry01", True),
        (f.pattern_check(f.AZURE_ACCOUNT, "bad"), "contoso-images", False),
        (f.pattern_check(f.AZURE_CONTAINER, "bad"), "registry-images-2026", True),
        (f.pattern_check(f.AZURE_CONTAINER, "bad"), "images--prod", False),
    ],
)
def test_object_store_names(check: Any, value: str, ok: bool) -> None:
    assert (check(value) is None) is ok


def test_node_selectors() -> None:
    assert f.node_selector_problem({"topology.kubernetes.io/region": "westeurope", "dedicated": ""}) is None
    problem = f.node_selector_problem({"node pool": "gpu"})
    assert problem is not None and "key node pool" in problem
    problem = f.node_selector_problem({"pool": "west europe"})
    assert problem is not None and "value 'west europe' of pool" in problem
    assert f.node_selector_problem({"example.com/" + "k" * 64: "a"}) is not None


@pytest.mark.parametrize(
    "value, cidr",
    [
        ("203.0.113.7", "203.0.113.7/32"),
        ("198.51.100.0/24", "198.51.100.0/24"),
        ("198.51.100.9/24", "198.51.100.0/24"),
        ("2001:db8::1", "2001:db8::1/128"),
    ],
)
def test_ip_rules_are_cidrs_after_parsing(value: str, cidr: str) -> None:
    spec = RegistrySpec.model_validate({"sku": "Premium", "networkRuleSet": {"ipRules": [{"value": value}]}})
    assert spec.network_rule_set is not None
    assert spec.network_rule_set.ip_rules[0].value == cidr


def test_ip_rule_garbage_is_refused() -> None:
    with pytest.raises(ValidationError, match="IPv4 or IPv6 address or CIDR"):
        RegistrySpec.model_validate({"networkRuleSet": {"ipRules": [{"value": "300.1.2.3/24"}]}})


def test_unnamed_timers_are_named_by_position() -> None:
    triggers = Triggers.model_validate(
        {"timers": [{"schedule": "0 1 * * *"}, {"name": "nightly", "schedule": "0 2 * * *"}, {"schedule": "0 3 * * *"}]}
    )
    assert [timer.name for timer in triggers.timers] == ["t1", "nightly", "t3"]


def test_a_name_taken_from_an_unnamed_timer_is_refused() -> None:
    with pytest.raises(ValidationError, match="timer names must be unique"):
        Triggers.model_validate({"timers": [{"schedule": "0 1 * * *"}, {"name": "t1", "schedule": "0 2 * * *"}]})


def test_task_file_needs_steps() -> None:
    base = {"registryRef": {"name": "r"}, "source": {"archive": {"url": "https://example.com/c.tar.gz"}}}
    with pytest.raises(ValidationError, match="has no steps"):
        BuildTaskSpec.model_validate({**base, "taskFile": ""})
    assert BuildTaskSpec.model_validate({**base, "taskFile": "steps:\n  - build: .\n"}).task_file


def test_reserved_header_is_refused_by_the_model() -> None:
    with pytest.raises(ValidationError, match="is set by Dockyard"):
        WebhookSpec.model_validate(
            {
                "registryRef": {"name": "r"},
                "serviceUri": "https://hooks.example.com/x",
                "actions": ["push"],
                "customHeaders": [{"name": "Content-Type", "value": "text/plain"}],
            }
        )


def _rules_of(annotation: Any) -> Iterator[f.Rule]:
    for argument in typing.get_args(annotation):
        if isinstance(argument, f.Rule):
            yield argument
        else:
            yield from _rules_of(argument)


def _models(model: type[BaseModel], seen: set[type[BaseModel]]) -> Iterator[type[BaseModel]]:
    if model in seen:
        return
    seen.add(model)
    yield model
    for field in model.model_fields.values():
        for argument in [field.annotation, *_flatten(field.annotation)]:
            if isinstance(argument, type) and issubclass(argument, BaseModel):
                yield from _models(argument, seen)


def _flatten(annotation: Any) -> Iterator[Any]:
    for argument in typing.get_args(annotation):
        yield argument
        yield from _flatten(argument)


def _all_rules_in(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield from node.get("x-kubernetes-validations", [])
        for value in node.values():
            yield from _all_rules_in(value)
    elif isinstance(node, list):
        for value in node:
            yield from _all_rules_in(value)


@pytest.mark.parametrize("info", KINDS, ids=lambda info: info.kind)
def test_every_declared_rule_reaches_the_crd(info: Any) -> None:
    """A field's own json_schema_extra must not drop the rules of its type (crdgen joins them)."""
    crd = crdgen.build_crd(info)
    generated = [rule["rule"] for rule in _all_rules_in(crd)]
    declared = {
        rule.rule
        for model in _models(info.spec, set())
        for field in model.model_fields.values()
        for rule in [*_rules_of(field.annotation), *(m for m in field.metadata if isinstance(m, f.Rule))]
    }
    assert declared  # every kind has at least its references' name rule
    missing = [rule for rule in declared if rule not in generated]
    assert missing == []
    assert f.RULES_KEY not in str(crd)


def test_patterns_are_anchored_for_cel() -> None:
    """CEL's matches() searches: a pattern without ^…$ would accept anything containing a match."""
    for name in dir(f):
        value = getattr(f, name)
        if name.isupper() and not name.startswith("_") and isinstance(value, str) and value.startswith("^"):
            assert value.endswith("$"), name
            re.compile(value)
