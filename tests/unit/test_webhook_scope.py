import pytest

from dockyard.auth.delegation import REPLICATOR_SUBJECT
from dockyard.events.envelope import RegistryEvent
from dockyard.webhooks.scope import EventFilter, parse_scope


def event(
    repository: str = "team/app", tag: str | None = "v1", action: str = "push", actor: str | None = "alice"
) -> RegistryEvent:
    return RegistryEvent(
        actor=actor,
        id="e1",
        timestamp="2026-11-29T09:06:05Z",
        action=action,
        repository=repository,  # type: ignore[arg-type]
        tag=tag,
        digest="sha256:abc",
    )


@pytest.mark.parametrize(("repository", "tag"), [("team/app", "v1"), ("other", None), ("a/b/c", "latest")])
def test_empty_scope_matches_everything(repository: str, tag: str | None) -> None:
    assert parse_scope("").matches(repository, tag)
    assert parse_scope("   ").matches(repository, tag)


def test_repo_star_matches_every_tag_and_untagged_events() -> None:
    scope = parse_scope("team/app:*")
    assert scope.matches("team/app", "v1")
    assert scope.matches("team/app", "latest")
    assert scope.matches("team/app", None)
    assert not scope.matches("team/app2", "v1")
    assert not scope.matches("team", "v1")


def test_repo_tag_matches_only_that_tag() -> None:
    scope = parse_scope("team/app:v1")
    assert scope.matches("team/app", "v1")
    assert not scope.matches("team/app", "v2")
    assert not scope.matches("team/app", None)
    assert not scope.matches("other/app", "v1")


def test_repo_alone_means_latest() -> None:
    scope = parse_scope("team/app")
    assert scope.matches("team/app", "latest")
    assert not scope.matches("team/app", "v1")
    assert not scope.matches("team/app", None)
    assert parse_scope("team/app") == parse_scope("team/app:latest")


@pytest.mark.parametrize(
    ("repository", "expected"),
    [
        ("team/app", True),
        ("team/a/b", True),
        ("team/", True),
        ("other/app", False),
        ("teamx/app", False),
        ("my/team/app", False),
    ],
)
def test_star_in_repository_spans_slashes(repository: str, expected: bool) -> None:
    assert parse_scope("team/*:*").matches(repository, "v1") is expected


@pytest.mark.parametrize(
    ("repository", "expected"),
    [
        ("app", True),
        ("team/app", True),
        ("team/webapp", True),
        ("team/app/cache", False),
        ("team/apps", False),
    ],
)
def test_leading_star_matches_a_suffix(repository: str, expected: bool) -> None:
    assert parse_scope("*app:*").matches(repository, None) is expected


def test_star_in_the_middle_of_a_name() -> None:
    scope = parse_scope("team/svc-*-api:v1")
    assert scope.matches("team/svc-billing-api", "v1")
    assert not scope.matches("team/svc-billing-api", "v2")
    assert not scope.matches("team/svc-billing-web", "v1")


@pytest.mark.parametrize(
    ("scope", "repository"),
    [
        ("a.b:*", "axb"),
        ("a.b:*", "a.bc"),
        ("a+b:*", "aab"),
        ("a_b-c:*", "a_b-cx"),
    ],
)
def test_regex_metacharacters_are_literal(scope: str, repository: str) -> None:
    assert not parse_scope(scope).matches(repository, "v1")


def test_dot_matches_itself() -> None:
    assert parse_scope("a.b:*").matches("a.b", "v1")


def test_tag_is_not_a_pattern() -> None:
    assert not parse_scope("team/app:v1.*").matches("team/app", "v1.2")
    assert parse_scope("team/app:v1.*").matches("team/app", "v1.*")


def test_filter_selects_only_its_actions() -> None:
    pushes = EventFilter(frozenset({"push"}), "", enabled=True)
    assert pushes.selects(event(action="push"))
    assert not pushes.selects(event(action="delete", tag=None))
    both = EventFilter(frozenset({"push", "delete"}), "", enabled=True)
    assert both.selects(event(action="delete", tag=None))


def test_filter_applies_its_scope() -> None:
    scoped = EventFilter(frozenset({"push", "delete"}), "team/*:v1", enabled=True)
    assert scoped.selects(event("team/app", "v1"))
    assert not scoped.selects(event("team/app", "v2"))
    assert not scoped.selects(event("other/app", "v1"))
    assert not scoped.selects(event("team/app", None, action="delete"))


def test_disabled_filter_selects_nothing() -> None:
    disabled = EventFilter(frozenset({"push", "delete"}), "", enabled=False)
    assert not disabled.selects(event())
    assert not disabled.selects(event(action="delete", tag=None))


def test_filter_without_location_selects_each_original_push_once() -> None:
    """Wherever it was pushed (the registry or a replica); never its copies landing elsewhere."""
    everywhere = EventFilter(frozenset({"push", "delete"}), "", enabled=True)
    assert everywhere.selects(event())
    assert everywhere.selects(event(), location="")
    assert everywhere.selects(event(), location="westeurope")
    assert everywhere.selects(event(actor=None))  # anonymous push (a registry without auth)
    assert not everywhere.selects(event(actor=REPLICATOR_SUBJECT))
    assert not everywhere.selects(event(actor=REPLICATOR_SUBJECT), location="westeurope")
    assert not everywhere.selects(event(action="delete", tag=None, actor=REPLICATOR_SUBJECT))


def test_location_filter_selects_only_that_replica() -> None:
    replica = EventFilter(frozenset({"push"}), "", enabled=True, location="westeurope")
    assert replica.selects(event(), location="westeurope")
    assert not replica.selects(event(), location="eastus")
    assert not replica.selects(event())


def test_location_filter_selects_replicated_copies_landing_there() -> None:
    replica = EventFilter(frozenset({"push"}), "", enabled=True, location="westeurope")
    assert replica.selects(event(actor=REPLICATOR_SUBJECT), location="westeurope")
    assert not replica.selects(event(actor=REPLICATOR_SUBJECT))


def test_empty_location_is_the_home_registry() -> None:
    assert EventFilter(frozenset({"push"}), "", enabled=True, location="").selects(event())


def test_glob_agrees_with_a_regex_on_many_small_cases() -> None:
    import itertools
    import re

    from dockyard.webhooks.scope import glob_match

    alphabet = "ab/"
    patterns = {"".join(p) for n in range(5) for p in itertools.product(alphabet + "*", repeat=n)}
    texts = ["".join(t) for n in range(6) for t in itertools.product(alphabet, repeat=n)]
    for pattern in patterns:
        regex = re.compile(".*".join(re.escape(part) for part in pattern.split("*")))
        parts = tuple(pattern.split("*"))
        for text in texts:
            assert glob_match(parts, text) == bool(regex.fullmatch(text)), (pattern, text)


def test_a_scope_built_to_backtrack_is_still_answered() -> None:
    scope = parse_scope("*a*a*a*a*a*a*a*a*a*a*a*a*b:*")
    assert not scope.matches("a" * 5000, "v1")
    assert scope.matches("a" * 5000 + "b", "v1")
