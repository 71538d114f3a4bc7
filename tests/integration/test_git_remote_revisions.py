"""resolve_revision against a real git server (git http-backend behind tests/integration/gitserver.py):
branches, annotated and lightweight tags, full SHAs, HEAD, missing revisions and repositories, wrong
and missing credentials; and a real `git clone` through the same server checks out the resolved
commit the way Kaniko's git context names it."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from gitserver import GitServer, host_address

from dockyard.builds.git import (
    GitAuthFailed,
    GitUnreachable,
    RepositoryNotFound,
    ResolvedRevision,
    RevisionNotFound,
    kaniko_git_context,
    resolve_revision,
)

pytestmark = pytest.mark.integration

USER, PASSWORD = "builder", "s3cret-t0ken"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[GitServer]:
    with GitServer(tmp_path / "repos") as running:
        yield running


@pytest.fixture
def private(tmp_path: Path) -> Iterator[GitServer]:
    with GitServer(tmp_path / "private", username=USER, password=PASSWORD) as running:
        yield running


def test_branches_tags_head_and_shas(server: GitServer) -> None:
    first = server.make_repo("app", {"Dockerfile": "FROM scratch\n"})
    annotated_object = server.tag("app", "v1", message="release v1")
    server.tag("app", "light")
    second = server.commit("app", {"README.md": "hello\n"})
    feature = server.commit("app", {"feature.txt": "x\n"}, branch="feature")
    assert len({first, second, feature}) == 3 and annotated_object != first
    url = server.url("app")

    assert resolve_revision(url, "main") == ResolvedRevision("refs/heads/main", second)
    assert resolve_revision(url, "feature") == ResolvedRevision("refs/heads/feature", feature)
    assert resolve_revision(url, "v1") == ResolvedRevision("refs/tags/v1", first)  # peeled to the commit
    assert resolve_revision(url, "light") == ResolvedRevision("refs/tags/light", first)
    assert resolve_revision(url, "refs/tags/v1") == ResolvedRevision("refs/tags/v1", first)
    assert resolve_revision(url, "HEAD") == ResolvedRevision("refs/heads/main", second)
    assert resolve_revision(url, first) == ResolvedRevision(None, first, clone_ref="HEAD")
    assert resolve_revision(url.removesuffix(".git"), "main") == ResolvedRevision("refs/heads/main", second)
    assert resolve_revision(url + "/", "main") == ResolvedRevision("refs/heads/main", second)

    with pytest.raises(RevisionNotFound, match="has no refs/heads/nope or refs/tags/nope"):
        resolve_revision(url, "nope")
    with pytest.raises(RepositoryNotFound):
        resolve_revision(server.url("missing"), "main")


def test_a_branch_that_moves_resolves_to_its_new_commit(server: GitServer) -> None:
    first = server.make_repo("moving", {"a": "1\n"}, branch="trunk")
    assert resolve_revision(server.url("moving"), "trunk").commit == first
    second = server.commit("moving", {"a": "2\n"})
    assert resolve_revision(server.url("moving"), "trunk") == ResolvedRevision("refs/heads/trunk", second)


def test_credentials(private: GitServer) -> None:
    commit = private.make_repo("secret", {"Dockerfile": "FROM scratch\n"})
    url = private.url("secret")
    assert resolve_revision(url, "main", username=USER, password=PASSWORD).commit == commit
    user_info = url.replace("http://", f"http://{USER}:{PASSWORD}@")
    assert resolve_revision(user_info, "main").commit == commit

    with pytest.raises(GitAuthFailed, match="needs credentials"):
        resolve_revision(url, "main")
    with pytest.raises(GitAuthFailed, match="rejected the credentials") as raised:
        resolve_revision(url, "main", username=USER, password="wrong-password")
    assert "wrong-password" not in str(raised.value)
    with pytest.raises(GitAuthFailed) as raised:  # also for a full SHA: the remote is asked
        resolve_revision(url.replace("http://", "http://x:wrong-password@"), commit)
    assert "wrong-password" not in str(raised.value)
    assert private.requests[-1][2] == "x"


def test_unreachable_server(server: GitServer) -> None:
    server.make_repo("app", {"a": "1\n"})
    url = server.url("app")
    port = server.port
    server.__exit__(None, None, None)
    with pytest.raises(GitUnreachable, match=f"cannot reach http://127.0.0.1:{port}/app.git"):
        resolve_revision(url, "main", timeout=2)


def test_git_clone_checks_out_what_kaniko_would(server: GitServer, private: GitServer, tmp_path: Path) -> None:
    """`git clone` through the server (protocol v2, as git 2.39 speaks by default), then the
    checkout Kaniko's context asks for: the ref's commit, even after the branch moved on."""
    built = server.make_repo("app", {"Dockerfile": "FROM scratch\nCOPY app /\n", "app": "v1\n"})
    server.commit("app", {"app": "v2\n"})
    resolved = ResolvedRevision("refs/heads/main", built)
    context, env = kaniko_git_context(server.url("app"), resolved)
    assert env == {"GIT_PULL_METHOD": "http"}
    location, ref, commit = context.removeprefix("git://").split("#")
    checkout = tmp_path / "checkout"
    run("git", "clone", "--quiet", "--branch", ref.removeprefix("refs/heads/"), f"http://{location}", str(checkout))
    run("git", "-C", str(checkout), "checkout", "--quiet", commit)
    assert (checkout / "app").read_text() == "v1\n"

    secret = private.make_repo("secret", {"app": "private\n"})
    url = private.url("secret").replace("http://", f"http://{USER}:{PASSWORD}@")
    run("git", "clone", "--quiet", url, str(tmp_path / "clone-private"))
    assert run("git", "-C", str(tmp_path / "clone-private"), "rev-parse", "HEAD") == secret
    refused = subprocess.run(
        ["git", "clone", "--quiet", url.replace(PASSWORD, "wrong"), str(tmp_path / "refused")],
        capture_output=True,
        text=True,
        env={"GIT_TERMINAL_PROMPT": "0", "PATH": "/usr/bin:/bin"},
    )
    assert refused.returncode != 0 and "Authentication failed" in refused.stderr + refused.stdout


def test_pod_address_is_the_hosts_and_serves(server: GitServer) -> None:
    commit = server.make_repo("app", {"a": "1\n"})
    address = host_address()
    assert not address.startswith("127.")
    assert server.pod_url("app") == f"http://{address}:{server.port}/app.git"
    assert resolve_revision(server.pod_url("app"), "main").commit == commit


def run(*command: str) -> str:
    done = subprocess.run(
        command, capture_output=True, text=True, env={"GIT_TERMINAL_PROMPT": "0", "PATH": "/usr/bin:/bin"}
    )
    assert done.returncode == 0, f"{' '.join(command)}: {done.stderr}"
    return done.stdout.strip()


def test_resolution_agrees_with_git_ls_remote(server: GitServer) -> None:
    server.make_repo("app", {"a": "1\n"})
    server.tag("app", "v1", message="annotated")
    server.commit("app", {"b": "2\n"}, branch="dev")
    server.tag("app", "v2")
    listed = dict(reversed(line.split("\t")) for line in run("git", "ls-remote", server.url("app")).splitlines())
    for revision, ref in [("main", "refs/heads/main"), ("dev", "refs/heads/dev"), ("v2", "refs/tags/v2")]:
        assert resolve_revision(server.url("app"), revision) == ResolvedRevision(ref, listed[ref])
    assert resolve_revision(server.url("app"), "v1") == ResolvedRevision("refs/tags/v1", listed["refs/tags/v1^{}"])
    assert listed["refs/tags/v1"] != listed["refs/tags/v1^{}"]


def test_a_sha_is_fetched_by_id_where_the_server_allows_it(tmp_path: Path) -> None:
    with GitServer(tmp_path / "repos", fetch_by_id=True) as server:
        first = server.make_repo("app", {"a": "1\n"})
        server.commit("app", {"a": "2\n"})
        resolved = resolve_revision(server.url("app"), first)
        assert resolved == ResolvedRevision(None, first, clone_ref=None)
        context, _ = kaniko_git_context(server.url("app"), resolved)
        assert context == f"git://127.0.0.1:{server.port}/app.git#{first}"
        checkout = tmp_path / "checkout"
        run("git", "init", "--quiet", str(checkout))
        run("git", "-C", str(checkout), "fetch", "--quiet", "--depth=1", server.url("app"), first)
        assert run("git", "-C", str(checkout), "rev-parse", "FETCH_HEAD") == first
