"""The ledger's rules (`replication/ledger.py`): last writer wins with a deterministic tiebreak,
tombstones that a full comparison never undoes."""

from __future__ import annotations

import itertools

import pytest

from dockyard.replication.ledger import (
    HOME,
    Version,
    decide,
    digest_delete,
    digest_key,
    key_digest,
    parse_stamp,
    plan_full_sync,
    superseded,
    untag,
)

A, B, C = "sha256:" + "a" * 64, "sha256:" + "b" * 64, "sha256:" + "c" * 64


@pytest.mark.parametrize(
    ("text", "nanoseconds"),
    [
        ("2026-12-01T14:26:09.123456789Z", 1796135169123456789),
        ("2026-12-01T14:26:09Z", 1796135169000000000),
        ("2026-12-01T15:26:09.5+01:00", 1796135169500000000),
        ("2026-12-01T14:26:09.1234567891234Z", 1796135169123456789),
        ("", 0),
        ("yesterday", 0),
    ],
)
def test_parse_stamp(text: str, nanoseconds: int) -> None:
    assert parse_stamp(text) == nanoseconds


def test_distributions_nanosecond_stamps_order_like_time() -> None:
    assert parse_stamp("2026-12-01T14:26:09.000000001Z") > parse_stamp("2026-12-01T14:26:09Z")


def test_newer_push_wins() -> None:
    old, new = Version(1, HOME, A), Version(2, "west", B)
    assert decide(old, new, current_pending=False).apply
    assert not decide(new, old, current_pending=False).apply


def test_tie_on_time_is_broken_by_replica_name_then_digest() -> None:
    home, west = Version(5, HOME, B), Version(5, "west", A)
    assert decide(home, west, False).apply and not decide(west, home, False).apply
    low, high = Version(5, "west", A), Version(5, "west", B)
    assert decide(low, high, False).apply and not decide(high, low, False).apply


def test_every_arrival_order_converges_on_one_winner() -> None:
    versions = [Version(7, "east", A), Version(7, "west", B), Version(6, HOME, C), Version(7, "east", B)]
    winners = set()
    for order in itertools.permutations(versions):
        current = None
        for incoming in order:
            if decide(current, incoming, False).apply:
                current = incoming
        winners.add(current)
    assert winners == {Version(7, "west", B)}


def test_conflict_when_a_push_loses_or_beats_a_copy_still_in_flight() -> None:
    east, west = Version(1, "east", A), Version(2, "west", B)
    assert decide(west, east, current_pending=False).conflict  # the older push arrived second
    assert decide(east, west, current_pending=True).conflict  # both live at once
    assert not decide(east, west, current_pending=False).conflict  # an ordinary later re-push
    assert not decide(Version(1, "west", A), Version(2, "west", B), True).conflict  # same replica
    assert not decide(Version(1, "east", A), Version(2, "west", A), True).conflict  # same digest


def test_untag_names_the_digest_and_never_weakens_a_manifest_delete() -> None:
    assert untag(Version(1, HOME, A), 2, "west") == Version(2, "west", A, deleted=True, untag=True)
    assert untag(None, 2, "west") == Version(2, "west", "", deleted=True, untag=True)
    deleted = Version(2, HOME, A, deleted=True)
    assert untag(deleted, 3, HOME) is None


def test_digest_delete_tombstones_only_older_tags_on_that_digest() -> None:
    entries = {
        ("app", "v1"): Version(1, HOME, A),
        ("app", "v2"): Version(1, HOME, A),
        ("app", "v3"): Version(1, HOME, B),
        ("app", "later"): Version(9, "west", A),
        ("other", "v1"): Version(1, HOME, A),
    }
    tombstones = digest_delete(entries, "app", A, 5, "east")
    assert tombstones == {
        ("app", "v1"): Version(5, "east", A, deleted=True),
        ("app", "v2"): Version(5, "east", A, deleted=True),
        ("app", "@" + A): Version(5, "east", A, deleted=True),  # the manifest itself, tagged or not
    }


def test_a_digest_key_cannot_be_a_tag() -> None:
    assert digest_key("app", A) == ("app", "@" + A)
    assert key_digest(digest_key("app", A)) == A
    assert key_digest(("app", "v1")) is None


def test_a_manifest_delete_tombstones_an_untagged_digest_once_and_never_an_older_delete() -> None:
    pushed = {digest_key("app", A): Version(1, "west", A)}
    assert digest_delete(pushed, "app", A, 5, HOME) == {digest_key("app", A): Version(5, HOME, A, deleted=True)}
    # unknown to the ledger (pushed before it, or its event lost): tombstoned all the same
    assert digest_delete({}, "app", A, 5, HOME) == {digest_key("app", A): Version(5, HOME, A, deleted=True)}
    newer = {digest_key("app", A): Version(9, "west", A)}  # pushed again after the delete
    assert digest_delete(newer, "app", A, 5, HOME) == {}


def test_a_digest_tombstone_is_superseded_only_by_a_newer_tag_on_that_digest() -> None:
    tombstone = Version(5, HOME, A, deleted=True)
    assert superseded({("app", "v1"): Version(9, "west", A)}, "app", tombstone)
    assert not superseded({("app", "v1"): Version(1, "west", A)}, "app", tombstone)  # older: deleted with it
    assert not superseded({("app", "v1"): Version(9, "west", B)}, "app", tombstone)
    assert not superseded({("other", "v1"): Version(9, "west", A)}, "app", tombstone)
    assert not superseded({digest_key("app", A): Version(9, "west", A)}, "app", tombstone)


def test_full_sync_copies_an_untagged_digest_where_missing_and_never_counts_it_as_a_tag() -> None:
    key = digest_key("app", A)
    ledger = {key: Version(3, "west", A), ("app", "v1"): Version(3, HOME, B)}
    observed = {HOME: {("app", "v1"): B}, "west": {key: A}}
    plan = plan_full_sync(ledger, observed, [HOME, "west"])
    assert plan.repairs == [(HOME, key), ("west", ("app", "v1"))]
    assert plan.adopt == {} and plan.disagreements == []
    assert plan.in_sync == {HOME: 1, "west": 0} and plan.out_of_sync == {HOME: 0, "west": 1}


def test_full_sync_deletes_a_tombstoned_digest_and_adopts_none_it_was_not_told_of() -> None:
    gone, stray = digest_key("app", A), digest_key("app", C)
    ledger = {gone: Version(5, HOME, A, deleted=True)}
    plan = plan_full_sync(ledger, {HOME: {}, "west": {gone: A, stray: C}}, [HOME, "west"])
    assert plan.repairs == [("west", gone)] and plan.adopt == {}
    # a tag pushed on that digest after the delete keeps the manifest everywhere
    ledger[("app", "v2")] = Version(9, "west", A)
    observed = {HOME: {gone: A, ("app", "v2"): A}, "west": {gone: A, ("app", "v2"): A}}
    assert plan_full_sync(ledger, observed, [HOME, "west"]).repairs == []


def test_full_sync_never_resurrects_a_tombstone() -> None:
    ledger = {("app", "v1"): Version(5, HOME, A, deleted=True)}
    observed = {HOME: {}, "west": {("app", "v1"): A}}
    plan = plan_full_sync(ledger, observed, [HOME, "west"])
    assert plan.adopt == {}
    assert plan.repairs == [("west", ("app", "v1"))]  # deleted there too, not copied back home


def test_full_sync_leaves_content_a_tombstone_did_not_delete() -> None:
    ledger = {("app", "v1"): Version(5, HOME, A, deleted=True)}
    plan = plan_full_sync(ledger, {HOME: {}, "west": {("app", "v1"): B}}, [HOME, "west"])
    assert plan.repairs == []


def test_full_sync_repairs_stale_replicas_and_adopts_unknown_tags() -> None:
    ledger = {("app", "v1"): Version(5, "west", B)}
    observed = {
        HOME: {("app", "v1"): A, ("app", "new"): C, ("lib", "x"): A},
        "west": {("app", "v1"): B, ("lib", "x"): B},
        "east": {},
    }
    plan = plan_full_sync(ledger, observed, [HOME, "west", "east"])
    assert plan.adopt == {("app", "new"): Version(0, HOME, C), ("lib", "x"): Version(0, HOME, A)}
    assert plan.disagreements == [("lib", "x")]
    assert sorted(plan.repairs) == sorted(
        [
            (HOME, ("app", "v1")),
            ("east", ("app", "v1")),
            ("west", ("app", "new")),
            ("east", ("app", "new")),
            ("west", ("lib", "x")),
            ("east", ("lib", "x")),
        ]
    )
    assert plan.in_sync == {HOME: 2, "east": 0, "west": 1}
    assert plan.out_of_sync == {HOME: 1, "east": 3, "west": 2}


def test_adopted_versions_lose_to_any_real_event() -> None:
    adopted = plan_full_sync({}, {HOME: {("app", "v1"): A}, "west": {}}, [HOME, "west"]).adopt[("app", "v1")]
    assert decide(adopted, Version(1, "west", B), False).apply
