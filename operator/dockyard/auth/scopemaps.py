"""ACR scope-map actions as the token service's grants.

| ACR action       | grant (token `access` actions)           | enforced by distribution                    |
|------------------|------------------------------------------|---------------------------------------------|
| content/read     | `pull`                                   | manifests, blobs and tag listing of the repo |
| content/write    | `push` (+ `pull`, as ACR's "use with read") | uploads, manifest puts, cross-repo mounts |
| content/delete   | `delete`                                 | manifest (by digest or tag in 3.x) and blob deletes |
| metadata/read    | `metadata_read`; on `*` also `registry:catalog:*` | only the catalog (on `*`); tag listing needs content/read |
| metadata/write   | `metadata_write`                         | nothing: untag is a manifest DELETE, which needs content/delete |

`metadata_read`/`metadata_write` are never turned into `pull`/`delete`: a metadata-only token must not
read or delete content. They are carried in the token for a future request gate (distribution
ignores actions it does not know).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from dockyard.auth.grants import Grant, RegistryAction
from dockyard.models.access import SYSTEM_SCOPE_MAPS

ACTION_GRANTS: Final[dict[str, RegistryAction]] = {
    "content/read": "pull",
    "content/write": "push",
    "content/delete": "delete",
    "metadata/read": "metadata_read",
    "metadata/write": "metadata_write",
}
UNENFORCED: Final[dict[str, str]] = {
    "metadata/read": "lists the catalog only on repository '*'; tag listing comes with content/read",
    "metadata/write": "grants nothing distribution enforces (untag is a manifest delete: content/delete)",
}
"""What each partly enforced action really allows, for the ScopeMap's status."""


def split_action(entry: str) -> tuple[str, str]:
    """`repositories/team/*/content/read` -> (`team/*`, `content/read`); ValueError if malformed."""
    if not entry.startswith("repositories/"):
        raise ValueError(f"not a repository action: {entry!r}")
    body = entry[len("repositories/") :]
    repository, _, verb = body.rpartition("/")
    repository, _, noun = repository.rpartition("/")
    action = f"{noun}/{verb}"
    if not repository or action not in ACTION_GRANTS:
        raise ValueError(f"not a repository action: {entry!r}")
    return repository, action


def grants_for(entries: Iterable[str]) -> tuple[Grant, ...]:
    """One grant per repository pattern, its actions merged (entries add up, as in ACR)."""
    by_pattern: dict[str, set[RegistryAction]] = {}
    catalog: set[str] = set()
    for entry in entries:
        repository, action = split_action(entry)
        by_pattern.setdefault(repository, set()).add(ACTION_GRANTS[action])
        if action == "metadata/read" and repository == "*":
            catalog.add(repository)
    return tuple(
        Grant(repositories=pattern, actions=tuple(sorted(actions)), catalog=pattern in catalog)
        for pattern, actions in sorted(by_pattern.items())
    )


def system_scope_map_actions(name: str) -> tuple[str, ...] | None:
    """ACR's built-in map as scope-map entries on every repository, or None for another name."""
    actions = SYSTEM_SCOPE_MAPS.get(name)
    return None if actions is None else tuple(f"repositories/*/{action}" for action in actions)


def unenforced(entries: Iterable[str]) -> list[str]:
    """Sentences for the entries that grant less than their ACR name says."""
    notes = []
    for entry in entries:
        repository, action = split_action(entry)
        if action == "metadata/read" and repository == "*":
            continue
        if action in UNENFORCED:
            notes.append(f"{entry}: {UNENFORCED[action]}")
    return notes
