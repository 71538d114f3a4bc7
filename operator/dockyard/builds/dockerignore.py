"""`.dockerignore` with Docker's semantics (moby/patternmatcher and its ignorefile reader).

- Reading: lines starting with `#` are comments; surrounding spaces are trimmed; blank lines are
  skipped; a leading `!` makes an exception; each pattern is cleaned like Go's `filepath.Clean`
  (so `./a/`, `a//b/..` and `/a` all become `a`).
- Patterns are Go `filepath.Match` patterns anchored at the context root: `*` and `?` never cross
  `/`, `[a-z]` and `[^a]` are classes, `\\` escapes; `**` matches any number of directories (none
  included).
- A path is excluded when the last pattern that matches it, or one of its parent directories, is
  an exclusion; patterns are read in order, so a later `!keep` re-includes, a later `keep*` drops
  again.

Nothing here touches the file system: `DockerIgnore.excludes(path)` answers for one slash path
relative to the context, and `could_reinclude(dir)` tells a walker whether to look inside an
excluded directory.
"""

from __future__ import annotations

import posixpath
import re
import warnings
from dataclasses import dataclass
from typing import Literal

_SPECIAL = set(".+()|{}$")


class IgnoreFileError(ValueError):
    """A `.dockerignore` Docker would refuse too (e.g. a lone `!`, a bad character class)."""


def clean(path: str) -> str:
    """Go's `filepath.Clean` on slash paths, minus the leading slash (patterns are relative)."""
    cleaned = posixpath.normpath(path) if path else "."
    if cleaned.startswith("//"):
        cleaned = "/" + cleaned.lstrip("/")
    if len(cleaned) > 1 and cleaned.startswith("/"):
        cleaned = cleaned[1:]
    return cleaned


def read_patterns(text: str) -> list[str]:
    """The patterns of a `.dockerignore` file, as moby's `ignorefile.ReadAll` returns them."""
    patterns: list[str] = []
    for line in text.removeprefix("\ufeff").split("\n"):
        if line.startswith("#"):
            continue
        pattern = line.strip()
        if not pattern:
            continue
        invert = pattern.startswith("!")
        if invert:
            pattern = pattern[1:].strip()
        if pattern:
            pattern = clean(pattern)
        patterns.append("!" + pattern if invert else pattern)
    return patterns


MatchType = Literal["exact", "prefix", "suffix", "regexp"]


def _compile(pattern: str) -> tuple[MatchType, re.Pattern[str] | None]:
    """moby's `Pattern.compile`, character for character: how the pattern matches (its fast
    paths included, since `**x` as a suffix match differs from the regular expression) and the
    anchored regular expression (Go's and Python's syntax agree on everything it produces)."""
    regex = "^"
    kind: MatchType = "exact"
    i = 0
    index = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "*":
            if pattern[i + 1 : i + 2] == "*":
                i += 1
                if pattern[i + 1 : i + 2] == "/":
                    i += 1  # `**/` is `**`
                if i + 1 >= len(pattern):
                    if kind == "exact":
                        kind = "prefix"
                    else:
                        regex += ".*"
                        kind = "regexp"
                else:
                    regex += "(.*/)?"
                    kind = "regexp"
                if index == 0:
                    kind = "suffix"
            else:
                regex += "[^/]*"
                kind = "regexp"
        elif char == "?":
            regex += "[^/]"
            kind = "regexp"
        elif char in _SPECIAL:
            regex += "\\" + char
        elif char == "\\":
            if i + 1 < len(pattern):
                i += 1
                regex += "\\" + pattern[i]
                kind = "regexp"
            else:
                regex += "\\"
        elif char in "[]":
            regex += char
            kind = "regexp"
        else:
            regex += char
        i += 1
        index += 1
    if kind != "regexp":
        return kind, None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # Python's "possible nested set" for `[[`
            return kind, re.compile(regex + "$", re.DOTALL)
    except re.error as error:
        raise IgnoreFileError(f"syntax error in pattern {pattern!r}: {error}") from error


@dataclass(frozen=True)
class _Rule:
    text: str
    exclusion: bool
    kind: MatchType
    regex: re.Pattern[str] | None

    def matches(self, path: str) -> bool:
        if self.kind == "exact":
            return path == self.text
        if self.kind == "prefix":
            return path.startswith(self.text[:-2])
        if self.kind == "suffix":
            suffix = self.text[2:]
            return path.endswith(suffix) or (suffix.startswith("/") and path == suffix[1:])
        assert self.regex is not None
        return bool(self.regex.match(path))


class DockerIgnore:
    """A compiled `.dockerignore` (moby `PatternMatcher.MatchesOrParentMatches`)."""

    def __init__(self, patterns: list[str]) -> None:
        self.rules: list[_Rule] = []
        for raw in patterns:
            pattern = raw.strip()
            if not pattern:
                continue
            exclusion = pattern.startswith("!")
            if exclusion:
                if len(pattern) == 1:
                    raise IgnoreFileError('illegal exclusion pattern: "!"')
                pattern = pattern[1:]
            pattern = clean(pattern)
            self.rules.append(_Rule(pattern, exclusion, *_compile(pattern)))

    @classmethod
    def parse(cls, text: str) -> DockerIgnore:
        return cls(read_patterns(text))

    def excludes(self, path: str) -> bool:
        """Whether `path` (slash separated, relative to the context) stays out of the context."""
        parents = path.split("/")[:-1]
        matched = False
        for rule in self.rules:
            if rule.exclusion != matched:
                continue  # an exception only matters once excluded, an exclusion only before
            hit = rule.matches(path) or any(rule.matches("/".join(parents[: i + 1])) for i in range(len(parents)))
            if hit:
                matched = not rule.exclusion
        return matched

    def could_reinclude(self, directory: str) -> bool:
        """Whether Docker looks inside an excluded `directory`: only when an exception's pattern
        starts with the directory's path (moby's archive walker). A wildcard exception such as
        `!**/*.go` does not reach into an excluded directory; `!vendor/keep.go` does."""
        prefix = directory + "/"
        return any(rule.exclusion and (rule.text + "/").startswith(prefix) for rule in self.rules)
