"""Commit triggers: when a task's branch is polled next, and which pushes are to its branch. Pure.

A task watches the branch its `source.git.revision` names: `main` or `refs/heads/main` → main;
`HEAD` → the remote's default branch (for webhooks, the default branch the payload names). A tag or
a commit SHA names no branch: polls follow whatever it resolves to (a moved tag is a new commit),
webhooks never match it.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Final

from dockyard.builds.git import FULL_SHA

JITTER: Final = 0.2
"""Each poll comes `interval` ± 20 % after the previous one, so tasks created together (or an
operator restart) do not poll their hosts in lockstep."""
NO_COMMIT: Final = "0" * 40
"""The `after` of a push that deleted the branch."""


def next_poll(now: datetime, interval_seconds: float, rng: random.Random) -> datetime:
    return now + timedelta(seconds=interval_seconds * rng.uniform(1 - JITTER, 1 + JITTER))


def branch_of(ref: str | None) -> str | None:
    return ref.removeprefix("refs/heads/") if ref and ref.startswith("refs/heads/") else None


def watched_branch(revision: str, default_branch: str | None) -> str | None:
    """The branch pushes to which trigger the task; None when the revision names no branch."""
    if revision == "HEAD":
        return default_branch or None
    if revision.startswith("refs/"):
        return branch_of(revision)
    if FULL_SHA.fullmatch(revision):
        return None
    return revision


def is_push_to(revision: str, pushed_ref: str, default_branch: str | None) -> bool:
    branch = watched_branch(revision, default_branch)
    return branch is not None and pushed_ref == f"refs/heads/{branch}"
