"""resolve_revision against a real git server (git http-backend behind tests/integration/gitserver.py):
branches, annotated and lightweight tags, full SHAs, HEAD, missing revisions and repositories, wrong
and missing credentials; and the build pod's fetcher (`python -m dockyard.builds.fetch --git-url`, a
process, dulwich) checks the resolved commit out of the same server into a directory."""

from __future__ import annotations

import json
import subprocess
import sys
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


def fetcher(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The fetch container's process, as the Job runs it (`python -m dockyard.builds.fetch`)."""
    return subprocess.run(
        [sys.executable, "-m", "dockyard.builds.fetch", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", **(env or {})},
    )


def test_the_fetcher_checks_out_the_resolved_commit(server: GitServer, private: GitServer, tmp_path: Path) -> None:
    """The fetch container's process against git http-backend: the resolved commit even after the
    branch moved on, one commit deep (fetched by id), `.git` with HEAD at the commit; a contextSubPath
    alone as the context, its Dockerfile read for the base report; credentials from the environment."""
    built = server.make_repo(
        "app", {"Dockerfile": "FROM scratch\nCOPY app /\n", "app": "v1\n", "svc/api/Dockerfile": "FROM scratch\n"}
    )
    server.commit("app", {"app": "v2\n"})
    url, log = server.url("app"), tmp_path / "termination-log"
    workspace = tmp_path / "ws"
    done = fetcher(f"--git-url={url}", f"--git-commit={built}", "--git-ref=refs/heads/main", f"--into={workspace}")
    assert done.returncode == 0, done.stderr
    assert (workspace / "app").read_text() == "v1\n"
    assert run("git", "-C", str(workspace), "rev-parse", "HEAD") == built
    assert run("git", "-C", str(workspace), "rev-list", "--count", "HEAD") == "1"  # shallow: by id, one deep
    assert run("git", "-C", str(workspace), "status", "--porcelain") == ""  # the work tree is the commit's

    sub = tmp_path / "sub"
    done = fetcher(
        f"--git-url={url}",
        f"--git-commit={built}",
        "--git-ref=HEAD",
        "--git-sub-path=svc/api",
        f"--into={sub}",
        "--dockerfile=Dockerfile",
        f"--termination-log={log}",
    )
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in sub.iterdir()) == ["Dockerfile"]  # no .git, nothing above svc/api
    assert json.loads(log.read_text()) == {"baseImage": None, "reason": "the build starts from scratch"}

    secret = private.make_repo("secret", {"app": "private\n"})
    credentials = {"GIT_USERNAME": USER, "GIT_PASSWORD": PASSWORD}
    args = (f"--git-url={private.url('secret')}", f"--git-commit={secret}", "--git-ref=refs/heads/main")
    done = fetcher(*args, f"--into={tmp_path / 'private'}", env=credentials)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "private" / "app").read_text() == "private\n"
    refused = fetcher(
        *args,
        f"--into={tmp_path / 'refused'}",
        f"--termination-log={log}",
        env={**credentials, "GIT_PASSWORD": "wrong-t0ken"},
    )
    assert refused.returncode == 1 and "401" in refused.stderr
    assert "wrong-t0ken" not in refused.stderr + refused.stdout + log.read_text()
    assert log.read_text().strip() == refused.stderr.strip()


def test_a_commit_the_server_does_not_have_fails_in_the_fetcher(server: GitServer, tmp_path: Path) -> None:
    """Refused by id by the real server, then not found in the branches fetched instead (the
    fallback's path): exit 1, naming the commit, nothing left half-written in a termination log."""
    server.make_repo("app", {"a": "1\n"})
    missing, log = "0123456789" * 4, tmp_path / "termination-log"
    done = fetcher(
        f"--git-url={server.url('app')}",
        f"--git-commit={missing}",
        "--git-ref=HEAD",
        f"--into={tmp_path / 'ws'}",
        f"--termination-log={log}",
    )
    assert done.returncode == 1
    assert f"has no commit {missing} reachable from its branches and tags" in done.stderr
    assert log.read_text().strip() == done.stderr.strip()


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
        workspace = tmp_path / "ws"
        done = fetcher(f"--git-url={server.url('app')}", f"--git-commit={first}", f"--into={workspace}")
        assert done.returncode == 0, done.stderr
        assert (workspace / "a").read_text() == "1\n"
        assert run("git", "-C", str(workspace), "rev-parse", "HEAD") == first
