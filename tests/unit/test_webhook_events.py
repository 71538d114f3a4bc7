import copy
import json
from typing import Any

import pytest

from dockyard.events.envelope import RegistryEvent, events_from_envelope
from dockyard.webhooks.payload import acr_payload, encode, ping_payload

DIGEST = "sha256:bff7c2a5ef8a0a7a3b4d0ce1a0a3c8c1f1f37f6bfd2b7c1b7c8e7a4c6f8d0e12"
REGISTRY_URL = "http://127.0.0.1:15000/v2/team/app"

# A manifest pushed by tag, as distribution 2.8 posts it (skopeo copy ... docker://host/team/app:v1).
MANIFEST_PUSH: dict[str, Any] = {
    "id": "ef77bff6-7a3c-4e0c-9d3c-5b0c2f9a6d11",
    "timestamp": "2026-11-29T09:06:05.822736285Z",
    "action": "push",
    "target": {
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "size": 401,
        "digest": DIGEST,
        "length": 401,
        "repository": "team/app",
        "url": f"{REGISTRY_URL}/manifests/{DIGEST}",
        "tag": "v1",
        "references": [
            {"mediaType": "application/vnd.oci.image.config.v1+json", "size": 1470, "digest": "sha256:c0ff"},
            {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "size": 2811478, "digest": "sha256:da7a"},
        ],
    },
    "request": {
        "id": "a1cd5e0e-4a8f-4f4e-8a6c-0a3b2f9d3e77",
        "addr": "127.0.0.1:47056",
        "host": "127.0.0.1:15000",
        "method": "PUT",
        "useragent": "skopeo/1.9.3",
    },
    "actor": {},
    "source": {"addr": "vm:15000", "instanceID": "68ed3c2a-1f0e-4c55-9a0c-7b2d2c7e5d01"},
}

BLOB_PUSH: dict[str, Any] = {
    "id": "5d0e4b9c-1b2a-4d7e-9f3c-2a1b0c9d8e7f",
    "timestamp": "2026-11-29T09:06:05.700000000Z",
    "action": "push",
    "target": {
        "mediaType": "application/octet-stream",
        "size": 2811478,
        "digest": "sha256:da7a",
        "length": 2811478,
        "repository": "team/app",
        "url": f"{REGISTRY_URL}/blobs/sha256:da7a",
    },
    "request": {"id": "b2", "host": "127.0.0.1:15000", "method": "PUT", "useragent": "skopeo/1.9.3"},
    "actor": {},
    "source": {"addr": "vm:15000", "instanceID": "68ed"},
}

MANIFEST_DELETE: dict[str, Any] = {
    "id": "0b8f0c1e-6d2a-4a77-8c55-4e1f0a9b3c22",
    "timestamp": "2026-11-29T09:10:00.000000000Z",
    "action": "delete",
    "target": {"digest": DIGEST, "repository": "team/app"},
    "request": {"id": "c3", "host": "127.0.0.1:15000", "method": "DELETE", "useragent": "curl/8.5.0"},
    "actor": {},
    "source": {"addr": "vm:15000", "instanceID": "68ed"},
}

TAG_DELETE: dict[str, Any] = {
    "id": "7a2c9e4d-3b1f-4c8a-9e6d-1f0b2a3c4d55",
    "timestamp": "2026-11-29T09:10:00.000000000Z",
    "action": "delete",
    "target": {"repository": "team/app", "tag": "v1"},
    "request": {"id": "c3", "host": "127.0.0.1:15000", "method": "DELETE", "useragent": "curl/8.5.0"},
    "actor": {},
    "source": {"addr": "vm:15000", "instanceID": "68ed"},
}


def envelope(*events: dict[str, Any]) -> dict[str, Any]:
    return {"events": [copy.deepcopy(e) for e in events]}


def with_action(raw: dict[str, Any], action: str) -> dict[str, Any]:
    changed = copy.deepcopy(raw)
    changed["action"] = action
    return changed


def test_manifest_push_by_tag_is_kept_with_its_fields() -> None:
    assert events_from_envelope(envelope(MANIFEST_PUSH)) == [
        RegistryEvent(
            id="ef77bff6-7a3c-4e0c-9d3c-5b0c2f9a6d11",
            timestamp="2026-11-29T09:06:05.822736285Z",
            action="push",
            repository="team/app",
            tag="v1",
            digest=DIGEST,
            media_type="application/vnd.oci.image.manifest.v1+json",
            size=401,
            length=401,
            request_id="a1cd5e0e-4a8f-4f4e-8a6c-0a3b2f9d3e77",
            request_host="127.0.0.1:15000",
            request_method="PUT",
            useragent="skopeo/1.9.3",
        )
    ]


def test_manifest_push_by_digest_is_kept_without_a_tag() -> None:
    by_digest = copy.deepcopy(MANIFEST_PUSH)
    del by_digest["target"]["tag"]
    [event] = events_from_envelope(envelope(by_digest))
    assert (event.action, event.tag, event.digest) == ("push", None, DIGEST)
    assert event.target_name == f"team/app@{DIGEST}"


def test_manifest_push_is_recognised_by_media_type_without_a_url() -> None:
    no_url = copy.deepcopy(MANIFEST_PUSH)
    del no_url["target"]["url"]
    no_url["target"]["mediaType"] = "application/vnd.docker.distribution.manifest.v2+json"
    assert [e.action for e in events_from_envelope(envelope(no_url))] == ["push"]


def test_blob_push_is_dropped() -> None:
    assert events_from_envelope(envelope(BLOB_PUSH)) == []


@pytest.mark.parametrize("action", ["pull", "mount"])
def test_pull_and_mount_are_dropped(action: str) -> None:
    assert events_from_envelope(envelope(with_action(MANIFEST_PUSH, action), with_action(BLOB_PUSH, action))) == []


def test_manifest_delete_is_kept() -> None:
    [event] = events_from_envelope(envelope(MANIFEST_DELETE))
    assert (event.action, event.repository, event.digest, event.tag) == ("delete", "team/app", DIGEST, None)
    assert event.request_method == "DELETE"
    assert event.target_name == f"team/app@{DIGEST}"


def test_tag_delete_is_dropped() -> None:
    assert events_from_envelope(envelope(TAG_DELETE)) == []


def test_blob_delete_with_a_blob_url_is_dropped() -> None:
    blob_delete = with_action(BLOB_PUSH, "delete")
    assert events_from_envelope(envelope(blob_delete)) == []


def test_one_push_of_an_image_gives_one_event_in_order() -> None:
    blob_config = copy.deepcopy(BLOB_PUSH)
    blob_config["id"] = "another-blob"
    events = events_from_envelope(envelope(BLOB_PUSH, blob_config, MANIFEST_PUSH, MANIFEST_DELETE, TAG_DELETE))
    assert [(e.action, e.id) for e in events] == [("push", MANIFEST_PUSH["id"]), ("delete", MANIFEST_DELETE["id"])]


def test_events_without_id_or_repository_or_not_objects_are_skipped() -> None:
    no_id = copy.deepcopy(MANIFEST_PUSH)
    del no_id["id"]
    no_repository = copy.deepcopy(MANIFEST_PUSH)
    del no_repository["target"]["repository"]
    assert events_from_envelope({"events": [no_id, no_repository, "push", None]}) == []


def test_empty_envelope_has_no_events() -> None:
    assert events_from_envelope({"events": []}) == []


@pytest.mark.parametrize("bad", [None, [], "events", {}, {"events": None}, {"events": {"0": MANIFEST_PUSH}}])
def test_invalid_envelope_raises_value_error(bad: Any) -> None:
    with pytest.raises(ValueError, match="envelope"):
        events_from_envelope(bad)


def test_acr_payload_of_a_push() -> None:
    [event] = events_from_envelope(envelope(MANIFEST_PUSH))
    assert acr_payload(event) == {
        "id": "ef77bff6-7a3c-4e0c-9d3c-5b0c2f9a6d11",
        "timestamp": "2026-11-29T09:06:05.822736285Z",
        "action": "push",
        "target": {
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "size": 401,
            "digest": DIGEST,
            "length": 401,
            "repository": "team/app",
            "tag": "v1",
        },
        "request": {
            "id": "a1cd5e0e-4a8f-4f4e-8a6c-0a3b2f9d3e77",
            "host": "127.0.0.1:15000",
            "method": "PUT",
            "useragent": "skopeo/1.9.3",
        },
    }


def test_acr_payload_leaves_out_absent_values_instead_of_null() -> None:
    event = RegistryEvent(id="e1", timestamp="2026-11-29T09:10:00Z", action="delete", repository="team/app")
    payload = acr_payload(event)
    assert payload == {
        "id": "e1",
        "timestamp": "2026-11-29T09:10:00Z",
        "action": "delete",
        "target": {"repository": "team/app"},
        "request": {},
    }
    assert "null" not in json.dumps(payload)


def test_acr_payload_does_not_leak_distribution_only_fields() -> None:
    [event] = events_from_envelope(envelope(MANIFEST_PUSH))
    text = json.dumps(acr_payload(event))
    for private in ("127.0.0.1:47056", "instanceID", "references", "/v2/team/app", "actor"):
        assert private not in text


def test_ping_payload() -> None:
    assert ping_payload("p1", "2026-11-29T09:10:00Z") == {
        "id": "p1",
        "timestamp": "2026-11-29T09:10:00Z",
        "action": "ping",
    }


def test_encode_gives_compact_json_bytes_in_field_order() -> None:
    body = encode({"id": "e1", "action": "push", "target": {"repository": "team/app", "size": 1}})
    assert body == b'{"id":"e1","action":"push","target":{"repository":"team/app","size":1}}'


def test_encode_round_trips_the_payload() -> None:
    [event] = events_from_envelope(envelope(MANIFEST_PUSH))
    body = encode(acr_payload(event))
    assert isinstance(body, bytes)
    assert b" " not in body
    assert json.loads(body) == acr_payload(event)


def test_delete_from_distribution_3_carries_no_size() -> None:
    envelope = {
        "events": [
            {
                "id": "d3",
                "timestamp": "2026-11-29T10:00:00Z",
                "action": "delete",
                "target": {"digest": "sha256:" + "a" * 64, "repository": "team/app", "size": 0},
                "request": {"id": "r", "host": "h", "method": "DELETE", "useragent": "skopeo"},
            }
        ]
    }
    [event] = events_from_envelope(envelope)
    assert acr_payload(event)["target"] == {"digest": "sha256:" + "a" * 64, "repository": "team/app"}


def test_a_repository_delete_is_a_delete_naming_only_the_repository() -> None:
    envelope = {
        "events": [
            {
                "id": "r1",
                "timestamp": "2026-11-29T10:00:00Z",
                "action": "delete",
                "target": {"repository": "team/old"},
                "request": {"id": "q", "method": "DELETE"},
            }
        ]
    }
    [event] = events_from_envelope(envelope)
    assert (event.action, event.target_name) == ("delete", "team/old")
    assert acr_payload(event)["target"] == {"repository": "team/old"}
