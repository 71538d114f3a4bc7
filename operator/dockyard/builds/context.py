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
at most `limit` bytes and `MAX_ENTRIES` entries; an error names the offending entry.
"""

from __future__ import annotations

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
                tar.extract(member, into, filter="data")
                names.append(member.name)
    except tarfile.FilterError as error:
        raise ContextError(f"refused: {error}") from error
    except (tarfile.TarError, EOFError, OSError) as error:
        raise ContextError(f"not a readable tar.gz context: {error}") from error
    return names


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
