"""The git fetch of the build pod (`gitfetch.py`): the context directory, which tips are fetched when
a server refuses a commit by id, the fallback itself (a stand-in client that refuses as servers do),
and credentials kept out of the URL dulwich sees and of every message. The real server's side is
tests/integration/test_git_remote_revisions.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from dulwich.errors import GitProtocolError
from dulwich.objects import Blob, Commit, ObjectID, Tree
from dulwich.refs import Ref
from dulwich.repo import Repo

from dockyard.builds.gitfetch import (
    GitFetchError,
    _client_and_path,
    context_directory,
    fetch_commit,
    fetch_objects,
    wants_of,
)

MAIN, DEV, TAG = (ObjectID(c.encode() * 40) for c in "123")
REFS = {Ref(b"HEAD"): MAIN, Ref(b"refs/heads/main"): MAIN, Ref(b"refs/heads/dev"): DEV, Ref(b"refs/tags/v1"): TAG}


@pytest.mark.parametrize(
    ("sub_path", "directory"),
    [(None, None), ("", None), (".", None), ("/", None), ("app", "app"), ("/a/b/", "a/b"), ("a/./b/../c", "a/c")],
)
def test_the_context_directory(sub_path: str | None, directory: str | None) -> None:
    assert context_directory(sub_path) == directory


@pytest.mark.parametrize("sub_path", ["..", "../x", "a/../../x"])
def test_a_context_directory_outside_the_repository_is_refused(sub_path: str) -> None:
    with pytest.raises(GitFetchError, match="leaves the repository"):
        context_directory(sub_path)


def test_the_tips_fetched_when_a_commit_is_refused_by_id() -> None:
    assert wants_of("refs/heads/dev", REFS) == [DEV]
    assert wants_of("refs/tags/v1", REFS) == [TAG]
    # HEAD, no ref, or a ref deleted since the resolution: every branch (and HEAD)
    assert wants_of("HEAD", REFS) == wants_of(None, REFS) == wants_of("refs/heads/gone", REFS) == [MAIN, DEV]


class Refusing:
    """A client whose server refuses wants by id, as upload-pack does for a commit it will not serve
    (`not our ref`): the fetch by id fails, the fetch through the ref gets the objects."""

    def __init__(self, source: Repo, refuse_by_id: bool) -> None:
        self.source, self.refuse_by_id, self.calls = source, refuse_by_id, []

    def fetch(self, path: str, target: Repo, determine_wants: Any, depth: int | None = None) -> None:
        refs = {Ref(name): ObjectID(sha) for name, sha in self.source.get_refs().items()}
        wants = determine_wants(refs)
        self.calls.append((wants, depth))
        if depth is not None and self.refuse_by_id:
            raise GitProtocolError(f"upload-pack: not our ref {wants[0].decode()}")
        for sha in self.source.object_store:
            target.object_store.add_object(self.source.object_store[sha])


def _repo(tmp_path: Path) -> tuple[Repo, ObjectID]:
    repo = Repo.init_bare(str(tmp_path / "source"), mkdir=True)
    blob = Blob.from_string(b"v1\n")
    tree = Tree()
    tree.add(b"app", 0o100644, blob.id)
    commit = Commit()
    commit.tree, commit.message = tree.id, b"one"
    commit.author = commit.committer = b"T <t@example.com>"
    commit.author_time = commit.commit_time = 0
    commit.author_timezone = commit.commit_timezone = 0
    for obj in (blob, tree, commit):
        repo.object_store.add_object(obj)
    repo.refs[Ref(b"refs/heads/main")] = commit.id
    return repo, ObjectID(commit.id)


@pytest.mark.parametrize("refuse_by_id", [False, True])
def test_a_commit_refused_by_id_is_fetched_through_its_ref(tmp_path: Path, refuse_by_id: bool) -> None:
    source, commit = _repo(tmp_path)
    client = Refusing(source, refuse_by_id)
    target = Repo.init_bare(str(tmp_path / "target"), mkdir=True)
    fetch_objects(client, "app.git", target, commit.decode(), "refs/heads/main")  # type: ignore[arg-type]
    assert commit in target.object_store
    expected = [([commit], 1), ([commit], None)] if refuse_by_id else [([commit], 1)]
    assert client.calls == expected


def test_credentials_go_to_the_client_never_in_its_url() -> None:
    client, path = _client_and_path("https://bot:t%40ken@git.example/org/app.git", None, None)
    assert path == "org/app.git"
    assert client.get_url("org/app.git") == "https://git.example/org/app.git"  # what messages may show
    assert (client._username, client._password) == ("bot", "t@ken")  # basic auth, URL-decoded
    secret_first, _ = _client_and_path("https://bot:url@git.example/app.git", "env-user", "env-token")
    assert (secret_first._username, secret_first._password) == ("env-user", "env-token")


def test_other_schemes_and_short_shas_are_refused_before_any_request(tmp_path: Path) -> None:
    with pytest.raises(GitFetchError, match="http"):
        fetch_commit("ssh://git@git.example/app.git", "a" * 40, tmp_path)
    with pytest.raises(GitFetchError, match="full commit SHA"):
        fetch_commit("https://git.example/app.git", "abc1234", tmp_path)
