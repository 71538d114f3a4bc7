"""The tag ledger's rules: which state of `repository:tag` wins, pure and deterministic.

Every replica accepts pushes and deletes, so two replicas can disagree about a tag. The ledger
keeps one `Version` per (registry, repository, tag) and a newer one replaces it iff its key
`(stamp, origin, digest, deleted)` is greater: last writer wins on the registry's event timestamp,
ties broken by replica name, then digest. Every process that sees the same events decides the same.

A delete leaves a tombstone (a `Version` with `deleted=True`, naming the digest it removed), never
a gap: a periodic full comparison that finds the tag still in a lagging replica deletes it there
instead of copying it back (zot's failure mode). Versions found only by a full comparison (content
that predates the ledger, or whose event was lost) get stamp 0: any real event beats them.

A push that loses (its event is older than what the ledger holds), or that wins over another
replica's different digest still being copied, is a conflict: counted, and the loser's replica gets
the winner re-asserted by the ordinary copy job.

A manifest pushed by digest only (an untagged image, an index's child, an artifact reached by
digest) is replicated too, as ACR does: its entry's key is `(repository, "@<digest>")` (a tag
never contains `@`), present or tombstoned by the same rules; digests never conflict. A manifest
delete always leaves such a tombstone, so the manifest goes from every replica even when no tag
named it. Registries cannot list untagged manifests, so a full comparison checks exactly the
digest entries the ledger holds (one HEAD per entry and replica) and never adopts new ones.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

HOME: str = ""
"""The replica id of the home registry (sorts before every location)."""

Key = tuple[str, str]
"""(repository, tag), or (repository, "@<digest>") for a manifest pushed by digest only."""

DIGEST_MARK: str = "@"


def digest_key(repository: str, digest: str) -> Key:
    """The ledger key of a manifest known by its digest alone."""
    return (repository, DIGEST_MARK + digest)


def key_digest(key: Key) -> str | None:
    """The digest a digest key names; None for a tag's key."""
    return key[1][len(DIGEST_MARK) :] if key[1].startswith(DIGEST_MARK) else None


@dataclass(frozen=True)
class Version:
    """One state of a tag: a digest, or a tombstone (`deleted`) naming the digest removed ("" when
    unknown); `untag` when only the tag was removed (the manifest stays), else the manifest was
    deleted. `stamp` is the event time in nanoseconds since the epoch (0: found by comparison)."""

    stamp: int
    origin: str
    digest: str
    deleted: bool = False
    untag: bool = False

    @property
    def order(self) -> tuple[int, str, str, bool]:
        return (self.stamp, self.origin, self.digest, self.deleted)

    def beats(self, other: Version | None) -> bool:
        return other is None or self.order > other.order


def parse_stamp(timestamp: str) -> int:
    """An event's RFC 3339 timestamp (nanosecond precision, as distribution writes it) in ns; 0
    when it cannot be read (such an event loses to every dated one)."""
    match = _RFC3339.match(timestamp.strip())
    if match is None:
        return 0
    whole, fraction, zone = match.groups()
    zone = "+00:00" if zone in (None, "Z", "z") else zone
    seconds = int(datetime.fromisoformat(whole + zone).timestamp())
    return seconds * 1_000_000_000 + int(((fraction or "") + "000000000")[:9])


_RFC3339 = re.compile(r"^(\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d:\d\d)(?:\.(\d+))?([Zz]|[+-]\d\d:\d\d)?$")


@dataclass(frozen=True)
class Decision:
    apply: bool
    conflict: bool


def decide(current: Version | None, incoming: Version, current_pending: bool) -> Decision:
    """Whether `incoming` replaces `current`, and whether the two pushes conflict: different
    replicas, different digests, and either the incoming one loses or the one it beats was still
    being copied (both were live at once)."""
    wins = incoming.beats(current)
    conflict = (
        current is not None
        and not current.deleted
        and not incoming.deleted
        and current.origin != incoming.origin
        and current.digest != incoming.digest
        and (not wins or current_pending)
    )
    return Decision(apply=wins, conflict=conflict)


def untag(current: Version | None, stamp: int, origin: str) -> Version | None:
    """The tombstone an untag leaves, naming the digest the ledger had on the tag; None when the
    ledger already holds a manifest delete of it (distribution untags every tag of a deleted
    manifest right after deleting it: those untags must not weaken the delete)."""
    if current is not None and current.deleted and not current.untag:
        return None
    digest = current.digest if current is not None else ""
    return Version(stamp, origin, digest, deleted=True, untag=True)


def digest_delete(
    entries: Mapping[Key, Version], repository: str, digest: str, stamp: int, origin: str
) -> dict[Key, Version]:
    """The tombstones a manifest delete by digest leaves: every tag of `repository` the ledger
    has on `digest` whose version is older than the delete, and the digest's own entry (written
    even when the ledger never heard of it: an untagged manifest pushed before the ledger, or
    whose push event was lost, must go from every replica all the same)."""
    tombstone = Version(stamp, origin, digest, deleted=True)
    tombstones = {}
    for key, version in entries.items():
        if key[0] != repository or version.deleted or version.digest != digest:
            continue
        if tombstone.beats(version):
            tombstones[key] = tombstone
    own = digest_key(repository, digest)
    if own not in tombstones and tombstone.beats(entries.get(own)):
        tombstones[own] = tombstone
    return tombstones


def superseded(entries: Mapping[Key, Version], repository: str, tombstone: Version) -> bool:
    """Whether a digest's tombstone no longer removes the manifest: a tag of `repository` names
    that digest by a push newer than the delete (pushed again, maybe on another replica), and
    deleting the manifest would take that tag with it."""
    return any(
        key[0] == repository and key_digest(key) is None and not version.deleted
        and version.digest == tombstone.digest and version.beats(tombstone)
        for key, version in entries.items()
    )  # fmt: skip


@dataclass(frozen=True)
class FullSyncPlan:
    """What a full comparison found: ledger entries to add, (replica, key) pairs to repair, keys
    where replicas disagreed with no ledger entry to decide, and per replica the tags in sync and
    out of sync (digest entries are repaired like tags but not counted: the status speaks of tags)."""

    adopt: dict[Key, Version]
    repairs: list[tuple[str, Key]]
    disagreements: list[Key]
    in_sync: dict[str, int]
    out_of_sync: dict[str, int]


def plan_full_sync(
    ledger: Mapping[Key, Version], observed: Mapping[str, Mapping[Key, str]], replicas: Iterable[str]
) -> FullSyncPlan:
    """Compare what every replica holds (`observed[replica][(repo, tag)] = digest`) with the
    ledger. A tag the ledger has is repaired wherever it differs (a tombstone: wherever the tag
    still points at the deleted digest). A tag the ledger lacks is adopted with stamp 0: the home's
    digest if the home has it, else the digest of the first replica by name that has it.
    A digest key is observed (`observed[replica][(repo, "@<digest>")] = digest`) only where the
    replica holds that manifest, and only for the digest keys the ledger has; one seen without a
    ledger entry is ignored (nothing decides it)."""
    order = sorted(replicas)
    adopt: dict[Key, Version] = {}
    repairs: list[tuple[str, Key]] = []
    disagreements: list[Key] = []
    in_sync = dict.fromkeys(order, 0)
    out_of_sync = dict.fromkeys(order, 0)
    keys = set(ledger)
    for replica in order:
        keys.update(observed.get(replica, {}))
    for key in sorted(keys):
        version = ledger.get(key)
        tag = key_digest(key) is None
        if version is None and not tag:
            continue
        if version is None:
            holders = [(r, observed[r][key]) for r in order if key in observed.get(r, {})]
            origin, digest = holders[0]
            version = Version(0, origin, digest)
            adopt[key] = version
            if len({d for _, d in holders}) > 1:
                disagreements.append(key)
        kept = not tag and version.deleted and superseded(ledger, key[0], version)
        for replica in order:
            have = observed.get(replica, {}).get(key)
            if version.deleted:
                stale = not kept and have is not None and (not version.digest or have == version.digest)
            else:
                stale = have != version.digest
            if stale:
                repairs.append((replica, key))
                out_of_sync[replica] += tag
            elif not version.deleted:
                in_sync[replica] += tag
    return FullSyncPlan(adopt, repairs, disagreements, in_sync, out_of_sync)
