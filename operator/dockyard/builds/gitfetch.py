"""A git source in the workspace: the commit the operator resolved, checked out by the fetch
container (`fetch.py --git-url`) with dulwich, git's protocol in pure Python.

    fetch_commit(url, commit, into, ref=…, sub_path=…, username=…, password=…)

How the commit is reached, fewest bytes first:

1. by its id, one commit deep (`want <commit>`, `deepen 1`): servers that advertise
   `allow-reachable-sha1-in-want` (GitHub) allow it, and so does `git http-backend` (dulwich asks
   for protocol v2, where upload-pack serves a commit it has by id; over v0's stateless HTTP it
   checks that the commit is reachable from a ref, not that it is a ref's tip);
2. a server that refuses that: the whole history of `ref` (the branch or tag the operator resolved
   the revision from; `HEAD` or none → every branch), and the commit looked up in it, as Kaniko's
   git context did (`#refs/heads/main#<commit>`). A branch that moved on since still holds the
   commit; one rewritten so that the commit is gone fails, naming the commit.

What lands in `into` is the build context Kaniko's git context gave: without `sub_path` the
repository's work tree with its `.git` (shallow, HEAD detached at the commit), so `git rev-parse
HEAD` in a step answers the commit; with `sub_path` only that directory's files (the `.git` of the
clone lies outside the context there too; the objects stay in a temporary directory that is
removed). Files are written as git checks them out (modes, symbolic links); names that git itself
refuses to check out (`.git`, `..`) are skipped. Submodules are not fetched (Kaniko's default).

Credentials: `username`/`password` (from the task's auth Secret, as environment variables of the
fetch container), else the URL's user info; sent as HTTP basic auth, also over plain http where
the source's URL says http (as Kaniko's `GIT_PULL_METHOD=http` did). Messages never contain them:
the URL is shown without its user info, and text from the network is scrubbed of both.
"""

from __future__ import annotations

import posixpath
import shutil
import stat
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Final
from urllib.parse import unquote, urlsplit, urlunsplit

import urllib3.exceptions
from dulwich.client import GitClient, HttpGitClient, HTTPUnauthorized
from dulwich.errors import GitProtocolError, HangupException, NotGitRepository
from dulwich.index import build_index_from_tree
from dulwich.object_store import tree_lookup_path
from dulwich.objects import Commit, ObjectID, Tree
from dulwich.refs import Ref
from dulwich.repo import Repo

from dockyard.builds.git import FULL_SHA, display_url

TIMEOUT_SECONDS: Final = 60
"""Per network operation (connect, each read), as dulwich's urllib3 pool takes it."""


class GitFetchError(Exception):
    """The commit could not be fetched or checked out; the message names the URL without
    credentials and says why."""


def _client_and_path(url: str, username: str | None, password: str | None) -> tuple[HttpGitClient, str]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise GitFetchError(f"git sources are fetched over http(s) only, not {display_url(url)!r}")
    if not username and not password and (parts.username or parts.password):
        username, password = unquote(parts.username or ""), unquote(parts.password or "")
    host = parts.netloc.rpartition("@")[2]
    base = urlunsplit((parts.scheme, host, "/", "", ""))
    client = HttpGitClient(
        base,
        username=username or None,
        password=password if username or password else None,
        timeout=TIMEOUT_SECONDS,
        quiet=True,
    )
    return client, parts.path.lstrip("/")


def _scrub(text: str, secrets: Iterable[str | None]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return " ".join(text.split())


def context_directory(sub_path: str | None) -> str | None:
    """`contextSubPath` as a directory of the repository, normalized; None for its root."""
    path = posixpath.normpath((sub_path or "").strip("/") or ".")
    if path == ".." or path.startswith("../"):
        raise GitFetchError(f"contextSubPath {sub_path!r} leaves the repository")
    return None if path == "." else path


def wants_of(ref: str | None, refs: Mapping[Ref, ObjectID]) -> list[ObjectID]:
    """The tips to fetch whole when the commit cannot be asked for by id: the ref the revision was
    resolved from, else (`HEAD`, none, or a ref gone since) every branch and HEAD."""
    if ref and ref != "HEAD" and Ref(ref.encode()) in refs:
        return [refs[Ref(ref.encode())]]
    return sorted({sha for name, sha in refs.items() if name.startswith(b"refs/heads/") or name == b"HEAD"})


def fetch_objects(client: GitClient, path: str, repo: Repo, commit: str, ref: str | None) -> None:
    """The commit's objects into `repo`: by id and one deep, else the history of `ref`."""
    wanted = ObjectID(commit.encode())

    def by_id(refs: Mapping[Ref, ObjectID], depth: int | None = None) -> list[ObjectID]:
        return [wanted]

    def through_ref(refs: Mapping[Ref, ObjectID], depth: int | None = None) -> list[ObjectID]:
        return wants_of(ref, refs)

    try:
        client.fetch(path, repo, determine_wants=by_id, depth=1)
        if wanted in repo.object_store:
            return
    except (GitProtocolError, HangupException):
        pass  # refused by id (`not our ref`, no shallow support): the ref's history instead
    client.fetch(path, repo, determine_wants=through_ref)


def _context_tree(repo: Repo, commit: str, directory: str | None, where: str) -> ObjectID:
    try:
        found = repo[ObjectID(commit.encode())]
    except KeyError:
        raise GitFetchError(f"{where} has no commit {commit} reachable from its branches and tags") from None
    if not isinstance(found, Commit):
        raise GitFetchError(f"{where}: {commit} is not a commit")
    root = ObjectID(found.tree)
    if directory is None:
        return root
    try:
        mode, tree = tree_lookup_path(repo.object_store.__getitem__, root, directory.encode())
    except (KeyError, NotADirectoryError, TypeError):
        mode, tree = 0, root
    if not stat.S_ISDIR(mode) or not isinstance(repo.object_store[tree], Tree):
        raise GitFetchError(f"{where}: contextSubPath {directory!r} is not a directory at commit {commit[:12]}")
    return ObjectID(tree)


def fetch_commit(
    url: str,
    commit: str,
    into: Path,
    *,
    ref: str | None = None,
    sub_path: str | None = None,
    username: str | None = None,
    password: str | None = None,
) -> list[str]:
    """Fetch `commit` from the repository at `url` and check it out into `into` (see the module
    docstring); returns the top-level names written. Raises GitFetchError."""
    where = display_url(url)
    if not FULL_SHA.fullmatch(commit):
        raise GitFetchError(f"{commit!r} is not a full commit SHA")
    commit = commit.lower()
    secrets = [username, password, *(unquote(s) for s in (urlsplit(url).username, urlsplit(url).password) if s)]
    client, path = _client_and_path(url, username, password)
    directory = context_directory(sub_path)
    into.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="dockyard-git-")) if directory is not None else None
    try:
        repo = Repo.init_bare(str(scratch)) if scratch is not None else Repo.init(str(into))
        with repo:
            try:
                fetch_objects(client, path, repo, commit, ref)
            except HTTPUnauthorized:
                raise GitFetchError(f"{where} needs credentials or rejected them (HTTP 401)") from None
            except NotGitRepository:
                raise GitFetchError(f"{where}: no git repository there") from None
            except (GitProtocolError, HangupException, urllib3.exceptions.HTTPError, OSError) as error:
                detail = _scrub(str(error) or type(error).__name__, secrets)
                raise GitFetchError(f"fetching {where} failed: {type(error).__name__}: {detail}") from None
            tree = _context_tree(repo, commit, directory, where)
            index = (scratch / "index") if scratch is not None else Path(repo.index_path())
            build_index_from_tree(str(into), str(index), repo.object_store, tree)
            if scratch is None:
                (Path(repo.controldir()) / "HEAD").write_text(commit + "\n")  # detached, as a checkout of a SHA
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    return sorted(entry.name for entry in into.iterdir())
