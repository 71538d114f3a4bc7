"""Git sources: pkt-line and ref-advertisement parsing, the revision rules, the HTTP answers mapped to
errors (through httpx.MockTransport)."""

from __future__ import annotations

import base64

import httpx
import pytest

from dockyard.builds.git import (
    GitAuthFailed,
    GitProtocolError,
    GitUnreachable,
    RepositoryNotFound,
    ResolvedRevision,
    RevisionNotFound,
    info_refs_url,
    parse_advertisement,
    parse_pkt_lines,
    resolve_revision,
    select_revision,
)

MAIN = "1" * 40
DEV = "2" * 40
TAG_OBJECT = "3" * 40
TAGGED = "4" * 40
LIGHT = "5" * 40
PULL = "6" * 40
CAPS = b"multi_ack thin-pack side-band side-band-64k ofs-delta shallow no-progress include-tag symref=HEAD:refs/heads/main agent=git/2.39.5"


def basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def pkt(payload: bytes) -> bytes:
    return b"%04x" % (len(payload) + 4) + payload


def advertisement(*lines: bytes, header: bool = True, caps: bytes = CAPS) -> bytes:
    body = b""
    if header:
        body += pkt(b"# service=git-upload-pack\n") + b"0000"
    first, *rest = lines
    body += pkt(first + b"\0" + caps + b"\n")
    for line in rest:
        body += pkt(line + b"\n")
    return body + b"0000"


REPO = advertisement(
    MAIN.encode() + b" HEAD",
    DEV.encode() + b" refs/heads/dev",
    MAIN.encode() + b" refs/heads/main",
    PULL.encode() + b" refs/pull/7/head",
    LIGHT.encode() + b" refs/tags/light",
    TAG_OBJECT.encode() + b" refs/tags/v1.0",
    TAGGED.encode() + b" refs/tags/v1.0^{}",
    # a branch and a tag of the same name: the branch wins for a short name
    DEV.encode() + b" refs/heads/both",
    LIGHT.encode() + b" refs/tags/both",
)


def test_pkt_lines_split_payloads_and_flushes() -> None:
    assert parse_pkt_lines(b"0006a\n0000" + b"0009hello0000") == [b"a\n", None, b"hello", None]
    assert parse_pkt_lines(b"") == []


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"<!DOCTYPE html>", "not a pkt-line"),
        (b"0010short", "truncated"),
        (b"0001", "special packet"),
        (b"00", "not a pkt-line"),
    ],
)
def test_malformed_pkt_lines_are_protocol_errors(data: bytes, why: str) -> None:
    with pytest.raises(GitProtocolError, match=why):
        parse_pkt_lines(data)


def test_advertisement_lists_refs_peeled_tags_symrefs_and_capabilities() -> None:
    parsed = parse_advertisement(REPO)
    assert parsed.refs["HEAD"] == MAIN
    assert parsed.refs["refs/tags/v1.0"] == TAG_OBJECT
    assert parsed.peeled == {"refs/tags/v1.0": TAGGED}
    assert parsed.symrefs == {"HEAD": "refs/heads/main"}
    assert "side-band-64k" in parsed.capabilities
    assert parsed.commit_of("refs/tags/v1.0") == TAGGED  # an annotated tag names its commit
    assert parsed.commit_of("refs/tags/light") == LIGHT


def test_advertisement_without_service_header_and_with_version_1() -> None:
    bare = parse_advertisement(advertisement(MAIN.encode() + b" refs/heads/main", header=False))
    assert bare.refs == {"refs/heads/main": MAIN}
    v1 = parse_advertisement(pkt(b"version 1\n") + advertisement(MAIN.encode() + b" refs/heads/main", header=False))
    assert v1.refs == {"refs/heads/main": MAIN}


def test_empty_repository_has_capabilities_and_no_refs() -> None:
    empty = parse_advertisement(advertisement(b"0" * 40 + b" capabilities^{}", caps=b"agent=git/2.39.5"))
    assert empty.refs == {}
    assert empty.capabilities == frozenset({"agent=git/2.39.5"})
    with pytest.raises(RevisionNotFound, match="no HEAD"):
        select_revision(empty, "HEAD")
    with pytest.raises(RevisionNotFound, match="no refs/heads/main or refs/tags/main"):
        select_revision(empty, "main")


def test_sha256_object_ids_parse() -> None:
    parsed = parse_advertisement(advertisement(b"a" * 64 + b" refs/heads/main", caps=b"object-format=sha256"))
    assert parsed.refs == {"refs/heads/main": "a" * 64}


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (pkt(b"# service=git-receive-pack\n") + b"0000", "git-receive-pack"),
        (pkt(b"version 2\n") + pkt(b"ls-refs\n") + b"0000", "protocol version 2"),
        (pkt(b"ERR access denied\n"), "the server refused: access denied"),
        (advertisement(b"xyz refs/heads/main"), "malformed ref line"),
        (advertisement(MAIN.encode()), "malformed ref line"),
    ],
)
def test_bad_advertisements_are_protocol_errors(data: bytes, why: str) -> None:
    with pytest.raises(GitProtocolError, match=why):
        parse_advertisement(data)


@pytest.mark.parametrize(
    ("revision", "expected"),
    [
        ("main", ResolvedRevision("refs/heads/main", MAIN)),
        ("dev", ResolvedRevision("refs/heads/dev", DEV)),
        ("v1.0", ResolvedRevision("refs/tags/v1.0", TAGGED)),
        ("light", ResolvedRevision("refs/tags/light", LIGHT)),
        ("both", ResolvedRevision("refs/heads/both", DEV)),
        ("refs/tags/both", ResolvedRevision("refs/tags/both", LIGHT)),
        ("refs/pull/7/head", ResolvedRevision("refs/pull/7/head", PULL)),
        ("HEAD", ResolvedRevision("refs/heads/main", MAIN)),
        # a full SHA names itself, lower-cased; this server cannot send a commit by id: clone HEAD
        ("A" * 40, ResolvedRevision(None, "a" * 40, clone_ref="HEAD")),
        (DEV, ResolvedRevision(None, DEV, clone_ref="HEAD")),  # also when it is a tip: a SHA names no ref
    ],
)
def test_revision_rules(revision: str, expected: ResolvedRevision) -> None:
    assert select_revision(parse_advertisement(REPO), revision) == expected


def test_head_without_symref_has_no_ref() -> None:
    parsed = parse_advertisement(
        advertisement(MAIN.encode() + b" HEAD", MAIN.encode() + b" refs/heads/main", caps=b"ofs-delta")
    )
    assert select_revision(parsed, "HEAD") == ResolvedRevision(None, MAIN, clone_ref="HEAD")


def test_a_sha_is_fetched_by_id_where_the_server_allows_it() -> None:
    parsed = parse_advertisement(
        advertisement(MAIN.encode() + b" refs/heads/main", caps=b"allow-tip-sha1-in-want allow-reachable-sha1-in-want")
    )
    assert select_revision(parsed, DEV) == ResolvedRevision(None, DEV, clone_ref=None)
    tips_only = parse_advertisement(advertisement(MAIN.encode() + b" refs/heads/main", caps=b"allow-tip-sha1-in-want"))
    assert select_revision(tips_only, DEV) == ResolvedRevision(None, DEV, clone_ref="HEAD")


@pytest.mark.parametrize(
    ("revision", "message"),
    [
        ("nope", "no refs/heads/nope or refs/tags/nope$"),
        ("refs/heads/nope", "no refs/heads/nope$"),
        ("heads/main", "no refs/heads/heads/main or refs/tags/heads/main$"),  # not git's rev-parse shorthand
        ("abc1234", "abbreviated commit SHAs are not resolved"),
    ],
)
def test_missing_revisions(revision: str, message: str) -> None:
    with pytest.raises(RevisionNotFound, match=message):
        select_revision(parse_advertisement(REPO), revision)


@pytest.mark.parametrize(
    "url",
    ["https://git.example/org/app.git", "https://git.example/org/app.git/", "https://git.example/org/app"],
)
def test_info_refs_url_with_and_without_dot_git(url: str) -> None:
    expected = url.rstrip("/") + "/info/refs?service=git-upload-pack"
    assert str(info_refs_url(url)) == expected


def answering(status: int, content: bytes = b"", content_type: str = "application/x-git-upload-pack-advertisement"):
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(status, content=content, headers={"Content-Type": content_type})

    return httpx.Client(transport=httpx.MockTransport(handle)), seen


def test_resolve_asks_info_refs_with_credentials_and_a_git_agent() -> None:
    client, seen = answering(200, REPO)
    resolved = resolve_revision(
        "https://git.example/org/app.git", "v1.0", username="bot", password="s3cret", client=client
    )
    assert resolved == ResolvedRevision("refs/tags/v1.0", TAGGED)
    (request,) = seen
    assert str(request.url) == "https://git.example/org/app.git/info/refs?service=git-upload-pack"
    assert request.headers["Authorization"] == basic("bot", "s3cret")
    assert request.headers["User-Agent"].startswith("git/")
    assert "Git-Protocol" not in request.headers  # v0: the advertisement lists the refs


def test_resolve_a_full_sha_still_asks_the_remote() -> None:
    client, seen = answering(401)
    with pytest.raises(GitAuthFailed, match="needs credentials"):
        resolve_revision("https://git.example/org/app.git", MAIN, client=client)
    assert len(seen) == 1


def test_url_user_info_is_used_and_never_shown() -> None:
    client, seen = answering(401)
    with pytest.raises(GitAuthFailed) as raised:
        resolve_revision("https://bot:t%40ken@git.example/org/app.git", "main", client=client)
    assert seen[0].headers["Authorization"] == basic("bot", "t@ken")
    assert "rejected the credentials" in str(raised.value)
    assert "t@ken" not in str(raised.value) and "t%40ken" not in str(raised.value) and "bot" not in str(raised.value)


@pytest.mark.parametrize(
    ("status", "error", "message"),
    [
        (401, GitAuthFailed, "rejected the credentials"),
        (403, GitAuthFailed, "refused access"),
        (404, RepositoryNotFound, "no repository there"),
        (500, GitUnreachable, "HTTP 500"),
        (429, GitUnreachable, "HTTP 429"),
    ],
)
def test_statuses_map_to_errors_without_credentials(status: int, error: type[Exception], message: str) -> None:
    client, _ = answering(status)
    with pytest.raises(error, match=message) as raised:
        resolve_revision("https://git.example/org/app.git", "main", username="bot", password="hunter2", client=client)
    assert "hunter2" not in str(raised.value)


def test_dumb_http_and_html_answers_are_protocol_errors() -> None:
    client, _ = answering(200, f"{MAIN}\trefs/heads/main\n".encode(), content_type="text/plain")
    with pytest.raises(GitProtocolError, match="not a git smart HTTP server"):
        resolve_revision("https://git.example/org/app.git", "main", client=client)
    client, _ = answering(200, b"<html>login</html>")
    with pytest.raises(GitProtocolError, match="not a pkt-line"):
        resolve_revision("https://git.example/org/app.git", "main", client=client)


def test_network_errors_are_unreachable_without_credentials() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"cannot connect to {request.url} as {request.headers['Authorization']}")

    client = httpx.Client(transport=httpx.MockTransport(refuse))
    with pytest.raises(GitUnreachable, match="cannot reach https://git.example/org/app.git: ConnectError") as raised:
        resolve_revision("https://bot:hunter2@git.example/org/app.git", "main", client=client)
    assert "hunter2" not in str(raised.value)


def test_revision_not_found_names_the_repository() -> None:
    client, _ = answering(200, REPO)
    with pytest.raises(RevisionNotFound, match=r"^https://git.example/org/app.git has no refs/heads/x or refs/tags/x$"):
        resolve_revision("https://git.example/org/app.git", "x", client=client)


def test_resolve_refuses_other_schemes_before_asking() -> None:
    client, seen = answering(200, REPO)
    with pytest.raises(ValueError, match="http"):
        resolve_revision("ssh://git@github.com/acme/app.git", "main", client=client)
    assert not seen
