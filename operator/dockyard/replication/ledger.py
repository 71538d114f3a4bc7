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
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

HOME: str = ""
"""The replica id of the home registry (sorts before every location)."""

Key = tuple[str, str]
"""(repository, tag)."""


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
    has on `digest` whose version is older than the delete."""
    tombstones = {}
    for key, version in entries.items():
        if key[0] != repository or version.deleted or version.digest != digest:
            continue
        tombstone = Version(stamp, origin, digest, deleted=True)
        if tombstone.beats(version):
            tombstones[key] = tombstone
    return tombstones


@dataclass(frozen=True)
class FullSyncPlan:
    """What a full comparison found: ledger entries to add, (replica, key) pairs to repair, keys
    where replicas disagreed with no ledger entry to decide, and per replica the keys in sync."""

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
    digest if the home has it, else the digest of the first replica by name that has it."""
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
        if version is None:
            holders = [(r, observed[r][key]) for r in order if key in observed.get(r, {})]
            origin, digest = holders[0]
            version = Version(0, origin, digest)
            adopt[key] = version
            if len({d for _, d in holders}) > 1:
                disagreements.append(key)
        for replica in order:
            have = observed.get(replica, {}).get(key)
            if version.deleted:
                stale = have is not None and (not version.digest or have == version.digest)
            else:
                stale = have != version.digest
            if stale:
                repairs.append((replica, key))
                out_of_sync[replica] += 1
            elif not version.deleted:
                in_sync[replica] += 1
    return FullSyncPlan(adopt, repairs, disagreements, in_sync, out_of_sync)
