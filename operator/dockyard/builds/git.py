"""Git sources: which commit a revision names right now (the build pod's fetch container then checks
exactly it out into the workspace: `gitfetch.py`).

`resolve_revision(url, revision)` reads the remote's ref advertisement over git's smart HTTP
protocol (`GET <url>/info/refs?service=git-upload-pack`, protocol v0, the same request `git
ls-remote` and go-git make first) and picks the revision in it:

- a full 40-hex SHA names itself: `(None, sha)`, lower-cased. The remote is still asked, so an
  unreachable remote or rejected credentials fail before a Job exists, as for any other revision,
  and its capabilities say how the fetcher can reach the commit (`clone_ref`). That the commit exists
  is *not* checked: the advertisement lists only ref tips, and asking for an arbitrary commit needs a
  fetch negotiation that some servers refuse for non-tips. A missing commit fails in the fetcher;
- `HEAD` → the remote's HEAD, with the branch it points to as `ref` when the server says so
  (the `symref=HEAD:refs/heads/…` capability), else `None`;
- `refs/…` → exactly that ref;
- anything else → `refs/heads/<revision>`, then `refs/tags/<revision>` (the order go-git and
  Kaniko's `--git=branch=` use). Abbreviated SHAs are branch names here, as in Kaniko.

Annotated tags resolve to the commit they point to (the advertisement's peeled `^{}` line), so
`commit` is always what the fetcher checks out. Nothing is cached: each call reads the remote once,
which is what a commit trigger's poll needs.

Errors, none of which ever contains credentials (URLs are shown without their user info, and any
text that came back from the network is scrubbed of the username and password):

    GitError
    ├── GitUnreachable         network error, timeout, 5xx/429 or another unexpected status:
    │   │                      worth retrying later
    │   └── GitProtocolError   the server answered, but not in git's smart HTTP protocol (a dumb
    │                          HTTP server, a login page, a malformed advertisement, ERR from git)
    ├── GitAuthFailed          401/403: credentials missing or rejected (the user must act)
    ├── RepositoryNotFound     404 (some hosts answer 404 for a private repository the credentials
    │                          cannot see)
    └── RevisionNotFound       the remote answered and has no such branch, tag or ref
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable
from urllib.parse import unquote, urlsplit

import httpx

FULL_SHA = re.compile(r"[0-9a-fA-F]{40}")
OBJECT_ID = re.compile(rb"[0-9a-f]{40}|[0-9a-f]{64}")
ABBREVIATED_SHA = re.compile(r"[0-9a-fA-F]{4,39}")
ADVERTISEMENT_TYPE = "application/x-git-upload-pack-advertisement"
USER_AGENT = "git/dockyard"  # some hosts answer a dumb-protocol page unless the agent starts with git/


class GitError(Exception):
    """A git remote could not tell which commit a revision names."""


class GitUnreachable(GitError):
    """The remote did not answer usefully: network error, timeout or server error."""


class GitProtocolError(GitUnreachable):
    """The server answered, but not in git's smart HTTP protocol."""


class GitAuthFailed(GitError):
    """The remote wants credentials, or rejected the ones given."""


class RepositoryNotFound(GitError):
    """The remote has no repository at this URL (or does not show it with these credentials)."""


class RevisionNotFound(GitError):
    """The repository has no branch, tag or ref of this name."""


@dataclasses.dataclass(frozen=True)
class ResolvedRevision:
    """A revision as the remote has it now: the full ref name it matched (None for a SHA, or a HEAD
    whose branch the server does not name) and the commit (a tag is peeled to its commit).

    `clone_ref` matters only without `ref`: where the fetcher finds `commit` if the server refuses
    it by id. None → the server advertised `allow-reachable-sha1-in-want` (as GitHub does); `HEAD` →
    every branch is fetched and the commit looked up in them (`gitfetch.py`). A commit reachable
    from no branch then fails in the fetch container."""

    ref: str | None
    commit: str
    clone_ref: str | None = None


@dataclasses.dataclass(frozen=True)
class Advertisement:
    """What `info/refs` lists: ref name → object id, peeled tags (tag name → the commit an annotated
    tag points to), symbolic refs from the capabilities (HEAD → refs/heads/main) and the capabilities."""

    refs: dict[str, str]
    peeled: dict[str, str]
    symrefs: dict[str, str]
    capabilities: frozenset[str]

    def commit_of(self, name: str) -> str | None:
        return self.peeled.get(name) or self.refs.get(name)


def parse_pkt_lines(data: bytes) -> list[bytes | None]:
    """Split pkt-lines: a 4-hex length (counting itself) then the payload; `0000` (flush) → None.
    The delimiter packets of protocol v2 (`0001`, `0002`) are errors here: v0 has none."""
    lines: list[bytes | None] = []
    position = 0
    while position < len(data):
        head = data[position : position + 4]
        if len(head) < 4 or not re.fullmatch(rb"[0-9a-fA-F]{4}", head):
            raise GitProtocolError(f"not a pkt-line at byte {position}: {head[:4]!r}")
        length = int(head, 16)
        if length == 0:
            lines.append(None)
            position += 4
            continue
        if length < 4:
            raise GitProtocolError(f"unexpected special packet {head.decode()} at byte {position} (protocol v2?)")
        if position + length > len(data):
            raise GitProtocolError(f"truncated pkt-line at byte {position}: {length} bytes announced")
        lines.append(data[position + 4 : position + length])
        position += length
    return lines


def parse_advertisement(data: bytes) -> Advertisement:
    """The ref advertisement of `info/refs?service=git-upload-pack` (protocol v0, or v1 with its
    `version 1` line), with or without the `# service=` header and its flush."""
    lines = parse_pkt_lines(data)
    index = 0
    if index < len(lines) and (lines[index] or b"").startswith(b"# service="):
        service = (lines[index] or b"").strip().removeprefix(b"# service=")
        if service != b"git-upload-pack":
            raise GitProtocolError(f"the server advertises service {service.decode(errors='replace')!r}")
        index += 1
        if index < len(lines) and lines[index] is None:
            index += 1
    if index < len(lines) and (lines[index] or b"").startswith(b"version "):
        version = (lines[index] or b"").strip().removeprefix(b"version ")
        if version != b"1":
            raise GitProtocolError(f"the server speaks protocol version {version.decode(errors='replace')}")
        index += 1

    refs: dict[str, str] = {}
    peeled: dict[str, str] = {}
    capabilities: frozenset[str] = frozenset()
    first = True
    for packet in lines[index:]:
        if packet is None:
            break
        if packet.startswith(b"ERR "):
            raise GitProtocolError(f"the server refused: {packet[4:].strip().decode(errors='replace')}")
        line = packet
        if first:  # capabilities follow a NUL on the first line only
            line, _, caps = packet.partition(b"\0")
            capabilities = frozenset(caps.decode(errors="replace").split())
            first = False
        object_id, _, name_bytes = line.rstrip(b"\n").partition(b" ")
        if not OBJECT_ID.fullmatch(object_id) or not name_bytes:
            raise GitProtocolError(f"malformed ref line: {line[:100]!r}")
        name = name_bytes.decode(errors="replace")
        if name == "capabilities^{}":  # an empty repository: capabilities, no refs
            continue
        if name.endswith("^{}"):
            peeled[name.removesuffix("^{}")] = object_id.decode()
        else:
            refs.setdefault(name, object_id.decode())
    symrefs = dict(
        capability.removeprefix("symref=").split(":", 1)
        for capability in capabilities
        if capability.startswith("symref=") and ":" in capability
    )
    return Advertisement(refs=refs, peeled=peeled, symrefs=symrefs, capabilities=capabilities)


def select_revision(advertisement: Advertisement, revision: str, *, where: str = "the repository") -> ResolvedRevision:
    """The commit `revision` names in `advertisement`, by the rules in the module docstring."""
    clone_ref = None if "allow-reachable-sha1-in-want" in advertisement.capabilities else "HEAD"
    if FULL_SHA.fullmatch(revision):
        return ResolvedRevision(ref=None, commit=revision.lower(), clone_ref=clone_ref)
    if revision == "HEAD":
        commit = advertisement.commit_of("HEAD")
        if commit is None:
            raise RevisionNotFound(f"{where} has no HEAD (an empty repository?)")
        target = advertisement.symrefs.get("HEAD")
        if target is not None and advertisement.commit_of(target) == commit:
            return ResolvedRevision(ref=target, commit=commit)
        return ResolvedRevision(ref=None, commit=commit, clone_ref="HEAD")
    short = [f"refs/heads/{revision}", f"refs/tags/{revision}"]
    candidates = [revision] if revision.startswith("refs/") else short
    for name in candidates:
        commit = advertisement.commit_of(name)
        if commit is not None:
            return ResolvedRevision(ref=name, commit=commit)
    hint = ""
    if ABBREVIATED_SHA.fullmatch(revision):
        hint = "; abbreviated commit SHAs are not resolved, give the full 40-character SHA"
    tried = " or ".join(candidates)
    raise RevisionNotFound(f"{where} has no {tried}{hint}")


def info_refs_url(url: str) -> httpx.URL:
    """`<url>/info/refs?service=git-upload-pack`; `url` may end in `.git` or `/` or neither."""
    parsed = httpx.URL(url)
    return parsed.copy_with(path=parsed.path.rstrip("/") + "/info/refs", query=b"service=git-upload-pack")


def display_url(url: str) -> str:
    """`url` without user info, fit for messages."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=host).geturl()


def resolve_revision(
    url: str,
    revision: str,
    *,
    username: str | None = None,
    password: str | None = None,
    timeout: float = 15,
    client: httpx.Client | None = None,
) -> ResolvedRevision:
    """Ask the remote at `url` (http or https) which commit `revision` names now. Credentials are
    `username`/`password` (a token as password, or as username with an empty password), else the
    URL's user info. `timeout` bounds each network operation (connect, each read), as in httpx.
    Raises a `GitError` (see the module docstring), or ValueError for a URL that is not http(s)."""
    where = display_url(url)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"git sources are read over http(s) only, not {where!r}")
    hidden = [text for text in (username, password, *_userinfo(url)) if text]
    auth = httpx.BasicAuth(username or "", password or "") if username or password else None
    owned = client is None
    http = client if client is not None else httpx.Client()
    try:
        response = http.get(
            info_refs_url(url),
            auth=auth if auth is not None else httpx.USE_CLIENT_DEFAULT,
            headers={"User-Agent": USER_AGENT, "Accept": f"{ADVERTISEMENT_TYPE}, */*"},
            timeout=timeout,
            follow_redirects=True,
        )
    except httpx.HTTPError as error:
        detail = _scrub(str(error) or type(error).__name__, hidden)
        raise GitUnreachable(f"cannot reach {where}: {type(error).__name__}: {detail}") from None
    finally:
        if owned:
            http.close()

    has_credentials = bool(hidden)
    if response.status_code == 401:
        if has_credentials:
            raise GitAuthFailed(f"{where} rejected the credentials (HTTP 401)")
        raise GitAuthFailed(f"{where} needs credentials (HTTP 401): set the source's auth secret")
    if response.status_code == 403:
        raise GitAuthFailed(f"{where} refused access (HTTP 403)")
    if response.status_code == 404:
        raise RepositoryNotFound(
            f"{where}: no repository there (HTTP 404), or a private one the credentials cannot see"
        )
    if response.status_code != 200:
        raise GitUnreachable(f"{where} answered HTTP {response.status_code}")
    content_type = response.headers.get("Content-Type", "").split(";")[0].strip()
    if content_type != ADVERTISEMENT_TYPE:
        raise GitProtocolError(
            f"{where} is not a git smart HTTP server (Content-Type {content_type or 'missing'!r}; "
            "the dumb HTTP protocol is not supported)"
        )
    try:
        advertisement = parse_advertisement(response.content)
    except GitProtocolError as error:
        raise GitProtocolError(f"{where}: {_scrub(str(error), hidden)}") from None
    return select_revision(advertisement, revision, where=where)


def _userinfo(url: str) -> list[str]:
    parts = urlsplit(url)
    raw = [text for text in (parts.username, parts.password) if text]
    return raw + [unquote(text) for text in raw if unquote(text) != text]


def _scrub(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


def resolve_git_revision(url: str, revision: str, username: str | None, password: str | None) -> tuple[str | None, str]:
    """`resolve_revision` as the run reconciler calls it: (the ref that holds the commit, the commit
    the fetcher checks out); see `ResolvedRevision.clone_ref` for why a bare commit may come with HEAD."""
    resolved = resolve_revision(url, revision, username=username, password=password)
    return resolved.ref or resolved.clone_ref, resolved.commit
