import pytest

from dockyard.auth.grants import Grant, Scope, allowed_actions

ADMIN = Grant(repositories="*", actions=("pull", "push", "delete"), catalog=True)
TEAM_PUSH = Grant(repositories="team/*", actions=("push",))
ONE_PULL = Grant(repositories="base/alpine", actions=("pull",))


@pytest.mark.parametrize(
    "pattern,repository,expected",
    [
        ("*", "anything/at/all", True),
        ("team/*", "team/app", True),
        ("team/*", "team/sub/app", True),
        ("team/*", "teamx/app", False),
        ("team/*", "team", False),
        ("base/alpine", "base/alpine", True),
        ("base/alpine", "base/alpine2", False),
    ],
)
def test_grant_patterns(pattern: str, repository: str, expected: bool) -> None:
    assert Grant(repositories=pattern, actions=("pull",)).matches(repository) is expected


def test_scope_parsing() -> None:
    assert Scope.parse("repository:team/app:pull,push") == Scope("repository", "team/app", ("pull", "push"))
    assert Scope.parse("registry:catalog:*") == Scope("registry", "catalog", ("*",))
    assert Scope.parse("repository(plugin):x:pull") == Scope("repository", "x", ("pull",))
    assert Scope.parse("nonsense") is None


def test_grants_add_up_and_push_implies_pull() -> None:
    scope = Scope("repository", "team/app", ("pull", "push", "delete"))
    assert allowed_actions((TEAM_PUSH,), scope) == ["pull", "push"]
    assert allowed_actions((TEAM_PUSH, ADMIN), scope) == ["pull", "push", "delete"]


def test_nothing_outside_the_grants() -> None:
    assert allowed_actions((ONE_PULL,), Scope("repository", "base/alpine", ("push",))) == []
    assert allowed_actions((ONE_PULL,), Scope("repository", "other", ("pull",))) == []
    assert allowed_actions((), Scope("repository", "x", ("pull",))) == []


def test_catalog_needs_a_catalog_grant() -> None:
    assert allowed_actions((ADMIN,), Scope("registry", "catalog", ("*",))) == ["*"]
    assert allowed_actions((TEAM_PUSH,), Scope("registry", "catalog", ("*",))) == []


def test_wildcard_request_returns_everything_granted() -> None:
    assert allowed_actions((ADMIN,), Scope("repository", "x", ("*",))) == ["delete", "pull", "push"]
