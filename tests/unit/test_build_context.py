"""The quick-build context: `.dockerignore` with Docker's rules (cases from Docker's documentation
and from moby/patternmatcher's own tests), deterministic packing, and an unpack that refuses to
write outside its directory."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
from pathlib import Path

import pytest

from dockyard.builds.context import ContextError, context_files, pack_context, unpack_context
from dockyard.builds.dockerignore import DockerIgnore, IgnoreFileError, read_patterns

# (pattern, path, excluded) — moby/patternmatcher's match cases, answered by MatchesOrParentMatches.
PATTERN_CASES = [
    ("**", "file", True),
    ("**", "dir/file", True),
    ("**/", "dir/file", True),
    ("**/**", "dir/file", True),
    ("dir/**", "dir/file", True),
    ("dir/**", "dir/dir2/file", True),
    ("**/dir", "dir", True),
    ("**/dir", "dir/file", True),
    ("**/dir2/*", "dir/dir2/file", True),
    ("**/dir2/**", "dir/dir2/dir3/file", True),
    ("**file", "file", True),
    ("**file", "dir/file", True),
    ("**/file", "dir/dir/file", True),
    ("**/file*", "dir/dir/file.txt", True),
    ("**/file*txt", "dir/dir/file.txt", True),
    ("**/**/*.txt", "dir/dir/file.txt", True),
    ("**/**/*.txt2", "dir/dir/file.txt", False),
    ("**/*.txt", "file.txt", True),
    ("a**/*.txt", "a/dir/dir/file.txt", True),
    ("a/*.txt", "a/dir/file.txt", False),
    ("a/*.txt", "a/file.txt", True),
    ("a/*.txt**", "a/file.txt", True),
    ("a[b-d]e", "ae", False),
    ("a[b-d]e", "ace", True),
    ("a[b-d]e", "aae", False),
    ("a[^b-d]e", "aze", True),
    (".*", ".foo", True),
    (".*", "foo", False),
    ("abc.def", "abcdef", False),
    ("abc.def", "abc.def", True),
    ("abc?def", "abcZdef", True),
    ("abc?def", "abcdef", False),
    ("**/foo/bar", "foo/bar", True),
    ("**/foo/bar", "dir/dir2/foo/bar", True),
    ("abc/**", "abc", False),
    ("abc/**", "abc/def/ghi", True),
    ("**/.foo", ".foo", True),
    ("**/.foo", "bar.foo", False),
    ("a(b)c/def", "a(b)c/def", True),
    ("a(b)c/def", "a(b)c/xyz", False),
    ("a.|)$(}+{bc", "a.|)$(}+{bc", True),
    ("dist/*.whl", "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", True),
    # a directory pattern excludes everything below it; `*` never crosses a slash
    ("node_modules", "node_modules/a/b.js", True),
    ("*.md", "docs/a.md", False),
    ("**/*.md", "docs/a.md", True),
]


@pytest.mark.parametrize(("pattern", "path", "excluded"), PATTERN_CASES)
def test_pattern_matching_follows_moby(pattern: str, path: str, excluded: bool) -> None:
    assert DockerIgnore([pattern]).excludes(path) is excluded


def test_docs_example_comments_and_one_level_wildcards() -> None:
    # docs.docker.com/build/concepts/context/#dockerignore-files
    ignore = DockerIgnore.parse("# comment\n*/temp*\n*/*/temp*\ntemp?\n")
    assert ignore.excludes("somedir/temporary.txt")
    assert ignore.excludes("somedir/temp")
    assert ignore.excludes("somedir/subdir/temporary.txt")
    assert ignore.excludes("tempa") and ignore.excludes("tempb")
    assert not ignore.excludes("temporary.txt")  # `*/temp*` needs one directory level
    assert not ignore.excludes("a/b/c/temp")
    assert not ignore.excludes("# comment")


@pytest.mark.parametrize(
    ("text", "included", "excluded"),
    [
        ("*.md\n!README.md\n", ["README.md"], ["CHANGES.md"]),
        ("*.md\n!README*.md\nREADME-secret.md\n", ["README.md", "README-x.md"], ["README-secret.md", "a.md"]),
        ("*.md\nREADME-secret.md\n!README*.md\n", ["README.md", "README-secret.md"], ["a.md"]),
    ],
)
def test_docs_example_exceptions_apply_in_order(text: str, included: list[str], excluded: list[str]) -> None:
    ignore = DockerIgnore.parse(text)
    assert [p for p in included if ignore.excludes(p)] == []
    assert [p for p in excluded if not ignore.excludes(p)] == []


def test_reading_cleans_patterns_like_docker() -> None:
    text = "\ufeff  /foo/bar/  \n./baz\n!  /keep//me/\n# not a pattern\n  # a pattern\n\n\t\na/../b\n"
    assert read_patterns(text) == ["foo/bar", "baz", "!keep/me", "# a pattern", "b"]


def test_an_exception_inside_an_excluded_directory_reincludes_the_file() -> None:
    ignore = DockerIgnore.parse("vendor\n!vendor/keep.txt\n")
    assert ignore.excludes("vendor/drop.txt")
    assert not ignore.excludes("vendor/keep.txt")
    assert ignore.could_reinclude("vendor")
    assert not DockerIgnore.parse("vendor\n").could_reinclude("vendor")


def test_a_wildcard_exception_does_not_reach_into_an_excluded_directory(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {"Dockerfile": "FROM scratch\n", ".dockerignore": "vendor\n!**/*.go\n", "vendor/x.go": "", "main.go": ""},
    )
    files = context_files(root)
    assert "main.go" in files and "vendor/x.go" not in files


def test_a_lone_exclamation_mark_is_refused() -> None:
    with pytest.raises(IgnoreFileError):
        DockerIgnore.parse("!\n")


def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def _names(data: bytes) -> list[str]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        return tar.getnames()


def test_pack_honours_dockerignore_and_always_sends_dockerfile_and_ignore_file(tmp_path: Path) -> None:
    root = _tree(
        tmp_path / "app",
        {
            "Dockerfile": "FROM scratch\n",
            ".dockerignore": "Dockerfile\n.dockerignore\n*.log\nbuild\n!build/keep.txt\n",
            "main.py": "print()\n",
            "debug.log": "x",
            "build/out.bin": "x",
            "build/keep.txt": "x",
            ".git/HEAD": "ref: refs/heads/main\n",
            "src/app/mod.py": "",
        },
    )
    os.symlink("main.py", root / "link.py")
    names = _names(pack_context(root))
    assert names == sorted(names)
    assert set(names) == {
        ".dockerignore",
        "Dockerfile",
        "build",
        "build/keep.txt",
        "link.py",
        "main.py",
        "src",
        "src/app",
        "src/app/mod.py",
    }


def test_git_can_be_reincluded(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"Dockerfile": "FROM scratch\n", ".dockerignore": "!.git\n", ".git/HEAD": "x"})
    assert ".git/HEAD" in context_files(root)


def test_a_dockerfile_specific_ignore_file_wins(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "docker/app.Dockerfile": "FROM scratch\n",
            "docker/app.Dockerfile.dockerignore": "secret.txt\n",
            ".dockerignore": "main.py\n",
            "main.py": "",
            "secret.txt": "",
        },
    )
    files = context_files(root, "docker/app.Dockerfile")
    assert "main.py" in files and "secret.txt" not in files


def test_pack_is_deterministic_whatever_the_times_and_order(tmp_path: Path) -> None:
    files = {"Dockerfile": "FROM scratch\n", "b/x.txt": "x", "a.txt": "a"}
    first = _tree(tmp_path / "one", files)
    second = _tree(tmp_path / "two", dict(reversed(files.items())))
    os.utime(second / "a.txt", (1, 1))
    digest = hashlib.sha256(pack_context(first)).hexdigest()
    assert hashlib.sha256(pack_context(second)).hexdigest() == digest
    with tarfile.open(fileobj=io.BytesIO(pack_context(first)), mode="r:gz") as tar:
        assert {(m.uid, m.gid, m.uname, m.mtime) for m in tar.getmembers()} == {(0, 0, "", 315532800)}
    (first / "a.txt").write_text("changed")
    assert hashlib.sha256(pack_context(first)).hexdigest() != digest


def test_a_missing_dockerfile_is_an_error(tmp_path: Path) -> None:
    _tree(tmp_path, {"main.py": ""})
    with pytest.raises(ContextError, match="Dockerfile: no such file"):
        pack_context(tmp_path)
    with pytest.raises(ContextError, match="inside the context"):
        pack_context(tmp_path, "../Dockerfile")


def test_pack_then_unpack_round_trips(tmp_path: Path) -> None:
    root = _tree(tmp_path / "src", {"Dockerfile": "FROM scratch\n", "a/b.txt": "hello"})
    os.symlink("a/b.txt", root / "link")
    (root / "run.sh").write_text("#!/bin/sh\n")
    (root / "run.sh").chmod(0o755)
    into = tmp_path / "out"
    unpack_context(pack_context(root), into)
    assert (into / "a" / "b.txt").read_text() == "hello"
    assert os.readlink(into / "link") == "a/b.txt"
    assert os.access(into / "run.sh", os.X_OK)


def _evil(*members: tuple[tarfile.TarInfo, bytes]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for info, data in members:
            info.size = len(data) if info.isfile() else 0
            tar.addfile(info, io.BytesIO(data) if info.isfile() else None)
    return gzip.compress(raw.getvalue())


def _member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    return info


@pytest.mark.parametrize(
    "archive",
    [
        _evil((_member("../escape.txt"), b"x")),
        _evil((_member("/tmp/absolute.txt"), b"x")),
        _evil((_member("a/../../escape.txt"), b"x")),
        _evil((_member("link", tarfile.SYMTYPE, "/etc"), b"")),
        _evil((_member("link", tarfile.SYMTYPE, "../.."), b"")),
        _evil((_member("dir/link", tarfile.SYMTYPE, "../../x"), b"")),
        _evil((_member("hard", tarfile.LNKTYPE, "../outside"), b"")),
        _evil((_member("dev", tarfile.CHRTYPE), b"")),
    ],
    ids=["dotdot", "absolute", "nested-dotdot", "abs-symlink", "up-symlink", "nested-symlink", "hardlink", "device"],
)
def test_unpack_refuses_anything_that_leaves_the_directory(tmp_path: Path, archive: bytes) -> None:
    into = tmp_path / "into"
    with pytest.raises(ContextError, match="refused"):
        unpack_context(archive, into)
    assert not (tmp_path / "escape.txt").exists()
    assert [p.name for p in into.iterdir()] == []


def test_unpack_refuses_writing_through_a_link_inside(tmp_path: Path) -> None:
    """A link that stays inside, then a file written through it: the link is fine, the file too,
    and nothing lands outside."""
    archive = _evil(
        (_member("sub", tarfile.DIRTYPE), b""), (_member("l", tarfile.SYMTYPE, "sub"), b""), (_member("l/f"), b"x")
    )
    unpack_context(archive, tmp_path / "into")
    assert (tmp_path / "into" / "sub" / "f").read_bytes() == b"x"


def test_unpack_stops_at_the_size_limit(tmp_path: Path) -> None:
    archive = _evil((_member("big"), b"x" * 1000))
    with pytest.raises(ContextError, match="larger than 100 bytes"):
        unpack_context(archive, tmp_path / "into", limit=100)


def test_unpack_refuses_what_is_not_a_tar_gz(tmp_path: Path) -> None:
    with pytest.raises(ContextError, match="not a readable"):
        unpack_context(b"not gzip", tmp_path / "into")


@pytest.fixture(params=[True, False], ids=["filters", "no-filters"])
def filters(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    """Unpacking with tarfile's `data` filter, and without it (Python 3.11.0-3.11.3, e.g. Debian
    bookworm's 3.11.2, which the build pod's fetcher may run on)."""
    import dockyard.builds.context as context

    if request.param and not context.HAS_FILTERS:
        pytest.skip("this Python has no tarfile extraction filters")
    monkeypatch.setattr(context, "HAS_FILTERS", request.param)
    return bool(request.param)


@pytest.mark.parametrize(
    "archive",
    [
        _evil((_member("../escape.txt"), b"x")),
        _evil((_member("link", tarfile.SYMTYPE, "../.."), b"")),
        _evil((_member("hard", tarfile.LNKTYPE, "../outside"), b"")),
        # Each link stays inside by its text; together they point at the parent.
        _evil((_member("s", tarfile.SYMTYPE, "."), b""), (_member("t", tarfile.SYMTYPE, "s/.."), b"")),
        _evil(
            (_member("s", tarfile.SYMTYPE, "."), b""),
            (_member("t", tarfile.SYMTYPE, "s/.."), b""),
            (_member("t/escape.txt"), b"x"),
        ),
    ],
    ids=["dotdot", "up-symlink", "hardlink", "link-chain", "write-through-chain"],
)
def test_unpack_refuses_escapes_with_and_without_filters(tmp_path: Path, archive: bytes, filters: bool) -> None:
    into = tmp_path / "into"
    with pytest.raises(ContextError, match="refused"):
        unpack_context(archive, into)
    assert not (tmp_path / "escape.txt").exists()


def test_unpack_without_filters_keeps_content_and_drops_dangerous_modes(tmp_path: Path, filters: bool) -> None:
    run, setuid = _member("run.sh"), _member("suid")
    run.mode, setuid.mode = 0o775, 0o4777
    archive = _evil(
        (_member("sub", tarfile.DIRTYPE), b""),
        (_member("sub/a.txt"), b"a"),
        (_member("l", tarfile.SYMTYPE, "sub/a.txt"), b""),
        (_member("h", tarfile.LNKTYPE, "sub/a.txt"), b""),
        (run, b"#!/bin/sh\n"),
        (setuid, b"x"),
    )
    into = tmp_path / "into"
    assert unpack_context(archive, into) == ["sub", "sub/a.txt", "l", "h", "run.sh", "suid"]
    assert (into / "l").read_text() == "a" and os.readlink(into / "l") == "sub/a.txt"
    assert (into / "h").read_text() == "a"
    assert os.stat(into / "run.sh").st_mode & 0o777 == 0o755
    assert os.stat(into / "suid").st_mode & 0o7777 == 0o755
