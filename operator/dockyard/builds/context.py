"""The quick-build context: a directory packed by the CLI, unpacked by the build pod.

`pack_context` guarantees:
- what Docker would send: `.dockerignore` (or BuildKit's `<Dockerfile>.dockerignore` beside the
  Dockerfile, which wins) applied with Docker's rules (`dockyard.builds.dockerignore`); the
  Dockerfile and the ignore file are always included. Like `az acr build`, `.git` stays out unless
  the ignore file re-includes it (`!.git`).
- deterministic: entries sorted, owner 0:0 without names, one fixed mtime, gzip without a name or
  time, so the same directory gives the same bytes and the same digest (the upload is skipped
  when the registry has that blob already).
- symlinks are kept as links, never followed; sockets, FIFOs and devices are left out.

`unpack_context` guarantees: nothing is written outside `into` (absolute names, `..`, links
pointing out or absolute are refused, tarfile's `data` filter on top), no device or special file,
at most `limit` bytes and `MAX_ENTRIES` entries; an error names the offending entry. On a Python
without extraction filters (3.11.0-3.11.3: Debian bookworm's python3 is 3.11.2) `_safe_member` does
what the `data` filter does: each path and link target is resolved on the disk as it is, and must
stay inside `into`; modes lose setuid/setgid/sticky and group/other write; owners are not kept.
"""

from __future__ import annotations

import copy
import gzip
import io
import os
import posixpath
import stat
import tarfile
from pathlib import Path, PurePosixPath
from typing import Final

from dockyard.builds.dockerignore import DockerIgnore, IgnoreFileError, read_patterns

MTIME: Final = 315532800
"""1980-01-01T00:00:00Z: every entry's time (zip's epoch; tools that dislike 0 accept it)."""
MAX_CONTEXT_BYTES: Final = 1024**3
"""Largest context (sum of file sizes) packed or unpacked."""
MAX_ENTRIES: Final = 200_000
DEFAULT_EXCLUDES: Final = (".git",)
"""Left out before the ignore file's own patterns, as `az acr build` does; `!.git` brings it back."""


class ContextError(Exception):
    """A context that cannot be packed or unpacked; the message says which file and why."""


def _ignore_file(directory: Path, dockerfile: str) -> tuple[str | None, str]:
    """(relative path of the ignore file in use, its text)."""
    for candidate in (f"{dockerfile}.dockerignore", ".dockerignore"):
        path = directory / candidate
        if path.is_file():
            return candidate, path.read_text(encoding="utf-8", errors="replace")
    return None, ""


def context_files(directory: Path, dockerfile: str = "Dockerfile") -> list[str]:
    """The slash paths (relative, sorted) that go into the context: files, links and directories."""
    directory = directory.resolve()
    if not directory.is_dir():
        raise ContextError(f"{directory}: not a directory")
    dockerfile = _relative_dockerfile(directory, dockerfile)
    ignore_name, ignore_text = _ignore_file(directory, dockerfile)
    try:
        ignore = DockerIgnore([*DEFAULT_EXCLUDES, *read_patterns(ignore_text)])
    except IgnoreFileError as error:
        raise ContextError(f"{ignore_name}: {error}") from error
    always = {dockerfile} | ({ignore_name} if ignore_name else set())
    chosen: set[str] = set()

    def walk(folder: Path, prefix: str) -> None:
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as error:
            raise ContextError(f"{prefix or '.'}: cannot read ({error.strerror})") from error
        for entry in entries:
            relative = f"{prefix}{entry.name}"
            excluded = ignore.excludes(relative)
            if entry.is_dir(follow_symlinks=False):
                if not excluded:
                    chosen.add(relative)
                inside = relative + "/"
                if not excluded or ignore.could_reinclude(relative) or any(a.startswith(inside) for a in always):
                    walk(Path(entry.path), inside)
            elif (entry.is_file(follow_symlinks=False) or entry.is_symlink()) and (not excluded or relative in always):
                chosen.add(relative)
                # A file re-included inside an excluded directory brings its parents along.
                parent = posixpath.dirname(relative)
                while parent:
                    chosen.add(parent)
                    parent = posixpath.dirname(parent)

    walk(directory, "")
    if dockerfile not in chosen or not (directory / dockerfile).is_file():
        raise ContextError(f"{dockerfile}: no such file in {directory}")
    if len(chosen) > MAX_ENTRIES:
        raise ContextError(f"{directory}: more than {MAX_ENTRIES} entries")
    return sorted(chosen)


def _relative_dockerfile(directory: Path, dockerfile: str) -> str:
    path = Path(dockerfile)
    absolute = (path if path.is_absolute() else directory / path).resolve()
    try:
        return absolute.relative_to(directory).as_posix()
    except ValueError:
        raise ContextError(f"{dockerfile}: the Dockerfile must be inside the context {directory}") from None


def pack_context(directory: Path, dockerfile: str = "Dockerfile") -> bytes:
    """The context as a deterministic tar.gz (see the module doc)."""
    directory = directory.resolve()
    raw = io.BytesIO()
    total = 0
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for relative in context_files(directory, dockerfile):
            path = directory / relative
            info = tarfile.TarInfo(relative)
            status = path.lstat()
            info.mode = stat.S_IMODE(status.st_mode)
            info.mtime, info.uid, info.gid, info.uname, info.gname = MTIME, 0, 0, "", ""
            if stat.S_ISLNK(status.st_mode):
                info.type, info.linkname = tarfile.SYMTYPE, os.readlink(path)
                tar.addfile(info)
            elif stat.S_ISDIR(status.st_mode):
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = status.st_size
                total += info.size
                if total > MAX_CONTEXT_BYTES:
                    raise ContextError(f"{directory}: larger than {MAX_CONTEXT_BYTES} bytes; add a .dockerignore")
                with path.open("rb") as handle:
                    tar.addfile(info, handle)
    packed = io.BytesIO()
    with gzip.GzipFile(fileobj=packed, mode="wb", mtime=0, filename="") as compressed:
        compressed.write(raw.getvalue())
    return packed.getvalue()


HAS_FILTERS: Final = hasattr(tarfile, "data_filter")
"""Extraction filters (PEP 706): Python 3.11.4 and later."""
_FILTER_ERRORS: Final[tuple[type[Exception], ...]] = (
    (tarfile.FilterError,) if HAS_FILTERS else ()  # type: ignore[attr-defined,unused-ignore]
)


def unpack_context(data: bytes, into: Path, *, limit: int = MAX_CONTEXT_BYTES) -> list[str]:
    """Extract a packed context into `into` (created if missing); returns the names extracted."""
    into.mkdir(parents=True, exist_ok=True)
    names: list[str] = []
    total = 0
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            for member in tar:
                _check_member(member)
                total += member.size
                if total > limit:
                    raise ContextError(f"{member.name}: the context is larger than {limit} bytes")
                if len(names) >= MAX_ENTRIES:
                    raise ContextError(f"more than {MAX_ENTRIES} entries")
                if HAS_FILTERS:
                    tar.extract(member, into, filter="data")
                else:
                    tar.extract(_safe_member(member, into), into)
                names.append(member.name)
    except ContextError:
        raise
    except _FILTER_ERRORS as error:
        raise ContextError(f"refused: {error}") from error
    except (tarfile.TarError, EOFError, OSError) as error:
        raise ContextError(f"not a readable tar.gz context: {error}") from error
    return names


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root + os.sep)


def _safe_member(member: tarfile.TarInfo, into: Path) -> tarfile.TarInfo:
    """The `data` filter's checks and changes, for a Python without it: a copy of `member` safe to
    extract into `into` as the disk is now, or ContextError."""
    root = os.path.realpath(into)
    target = os.path.realpath(os.path.join(root, member.name))
    if not _inside(target, root):
        raise ContextError(f"{member.name}: refused, the path leaves the context directory")
    if member.issym() or member.islnk():
        base = os.path.dirname(os.path.join(root, member.name)) if member.issym() else root
        linked = os.path.realpath(os.path.join(base, member.linkname))
        if not _inside(linked, root):
            raise ContextError(f"{member.name}: refused, a link pointing outside the context ({member.linkname})")
    safe = copy.copy(member)
    safe.uid, safe.gid, safe.uname, safe.gname = 0, 0, "", ""
    mode = member.mode & ~(stat.S_ISUID | stat.S_ISGID | stat.S_ISVTX | stat.S_IWGRP | stat.S_IWOTH)
    if member.isfile() or member.islnk():
        mode |= stat.S_IRUSR | stat.S_IWUSR
        if not mode & stat.S_IXUSR:
            mode &= ~(stat.S_IXGRP | stat.S_IXOTH)
    elif member.isdir():
        mode |= stat.S_IRWXU
    safe.mode = mode
    return safe


def _check_member(member: tarfile.TarInfo) -> None:
    name = PurePosixPath(member.name)
    if name.is_absolute() or ".." in name.parts:
        raise ContextError(f"{member.name}: refused, the name leaves the context directory")
    if not (member.isfile() or member.isdir() or member.issym() or member.islnk()):
        raise ContextError(f"{member.name}: refused, not a file, directory or link")
    if member.issym() or member.islnk():
        target = PurePosixPath(member.linkname)
        base = name.parent if member.issym() else PurePosixPath()
        resolved = posixpath.normpath(str(base / target))
        if target.is_absolute() or resolved == ".." or resolved.startswith("../"):
            raise ContextError(f"{member.name}: refused, a link pointing outside the context ({member.linkname})")
