"""The copier (`replication/copier.py`) between two in-memory registries served through
httpx.MockTransport: exact bytes and digests, children before parents, blobs skipped or mounted,
deletes that remove only what the tombstone deleted."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

import httpx
import pytest

from dockyard.distribution.client import DistributionClient
from dockyard.replication.copier import BlobIndex, copy_tag, remove_tag
from dockyard.replication.engine import RETRY_MAX_SECONDS, retry_delay

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Memory:
    """A registry in memory: blobs and manifests per repository, tags; it logs every write."""

    def __init__(self, untag: bool = True) -> None:
        self.blobs: dict[tuple[str, str], bytes] = {}
        self.manifests: dict[tuple[str, str], tuple[bytes, str]] = {}
        self.tags: dict[tuple[str, str], str] = {}
        self.uploads: dict[str, str] = {}
        self.writes: list[str] = []
        self.untag = untag
        self.catalog: list[str] = []

    def client(self) -> DistributionClient:
        return DistributionClient("registry.test", transport=httpx.MockTransport(self.handle))

    def blob(self, repository: str, data: bytes) -> dict[str, Any]:
        self.blobs[(repository, _digest(data))] = data
        return {"digest": _digest(data), "size": len(data), "mediaType": "application/octet-stream"}

    def manifest(self, repository: str, document: dict[str, Any], tag: str | None = None) -> str:
        body = json.dumps(document).encode()
        digest = _digest(body)
        self.manifests[(repository, digest)] = (body, document["mediaType"])
        if tag:
            self.tags[(repository, tag)] = digest
        return digest

    def handle(self, request: httpx.Request) -> httpx.Response:
        path, method = request.url.path, request.method
        if path == "/v2/_catalog":
            return httpx.Response(200, json={"repositories": sorted(set(self.catalog) | {r for r, _ in self.tags})})
        if match := re.match(r"^/v2/(.+)/tags/list$", path):
            tags = sorted(t for r, t in self.tags if r == match.group(1))
            return httpx.Response(200, json={"name": match.group(1), "tags": tags})
        if match := re.match(r"^/v2/(.+)/blobs/uploads/(\w*)$", path):
            repository, _ = match.groups()
            if method == "POST":
                mount, source = request.url.params.get("mount"), request.url.params.get("from")
                if mount and (source, mount) in self.blobs:
                    self.blobs[(repository, mount)] = self.blobs[(source, mount)]
                    self.writes.append(f"mount {repository}@{mount[:12]}")
                    return httpx.Response(201)
                self.uploads["u1"] = repository
                return httpx.Response(202, headers={"Location": f"/v2/{repository}/blobs/uploads/u1"})
            data = request.read()
            digest = request.url.params["digest"]
            assert _digest(data) == digest
            self.blobs[(repository, digest)] = data
            self.writes.append(f"blob {repository}@{digest[:12]}")
            return httpx.Response(201, headers={"Docker-Content-Digest": digest})
        if match := re.match(r"^/v2/(.+)/blobs/(sha256:\w+)$", path):
            data = self.blobs.get(match.groups())  # type: ignore[arg-type]
            if data is None:
                return httpx.Response(404)
            return httpx.Response(
                200, content=b"" if method == "HEAD" else data, headers={"Content-Length": str(len(data))}
            )
        if match := re.match(r"^/v2/(.+)/manifests/(.+)$", path):
            repository, reference = match.groups()
            digest = reference if reference.startswith("sha256:") else self.tags.get((repository, reference))
            if method == "PUT":
                body = request.read()
                self.manifests[(repository, _digest(body))] = (body, request.headers["Content-Type"])
                if not reference.startswith("sha256:"):
                    self.tags[(repository, reference)] = _digest(body)
                self.writes.append(f"manifest {repository}:{reference[:19]}")
                return httpx.Response(201, headers={"Docker-Content-Digest": _digest(body)})
            if digest is None or (repository, digest) not in self.manifests:
                return httpx.Response(404)
            if method == "DELETE":
                if not reference.startswith("sha256:"):
                    if not self.untag:
                        return httpx.Response(405, json={"errors": [{"code": "UNSUPPORTED"}]})
                    del self.tags[(repository, reference)]
                    self.writes.append(f"untag {repository}:{reference}")
                    return httpx.Response(202)
                del self.manifests[(repository, digest)]
                for key in [k for k, v in self.tags.items() if k[0] == repository and v == digest]:
                    del self.tags[key]
                self.writes.append(f"delete {repository}@{digest[:12]}")
                return httpx.Response(202)
            body, media_type = self.manifests[(repository, digest)]
            headers = {"Docker-Content-Digest": digest, "Content-Type": media_type}
            return httpx.Response(200, content=b"" if method == "HEAD" else body, headers=headers)
        return httpx.Response(404)


def _image(registry: Memory, repository: str, content: bytes, tag: str | None = None) -> str:
    config = registry.blob(repository, b'{"os":"linux","c":"' + content + b'"}')
    layer = registry.blob(repository, content)
    return registry.manifest(
        repository, {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": [layer]}, tag
    )


def test_an_index_is_copied_children_first_with_exact_bytes() -> None:
    source, target = Memory(), Memory()
    children = [_image(source, "app", b"amd64"), _image(source, "app", b"arm64")]
    # unusual spacing: the copy must keep these exact bytes
    index = source.manifest(
        "app",
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [{"mediaType": OCI_MANIFEST, "digest": d, "size": 1} for d in children],
        },
        "v1",
    )
    report = copy_tag(source.client(), target.client(), "app", "v1", index, BlobIndex())
    assert target.tags[("app", "v1")] == index
    assert target.manifests[("app", index)] == source.manifests[("app", index)]
    puts = [w for w in target.writes if w.startswith("manifest")]
    assert puts == [
        f"manifest app:{children[0][:19]}",
        f"manifest app:{children[1][:19]}",
        f"manifest app:{index[:19]}",
        "manifest app:v1",
    ]
    first_manifest = target.writes.index(puts[0])
    assert all(w.startswith("blob") for w in target.writes[:first_manifest]), "blobs before their manifest"
    assert (report.manifests, report.blobs_copied, report.bytes) == (3, 4, sum(len(b) for b in source.blobs.values()))


def test_present_blobs_are_skipped_and_known_ones_mounted() -> None:
    source, target = Memory(), Memory()
    digest = _image(source, "app", b"layer")
    blobs = BlobIndex()
    copy_tag(source.client(), target.client(), "app", "v1", digest, blobs)
    source.manifests[("other", digest)] = source.manifests[("app", digest)]
    for (_, blob), data in list(source.blobs.items()):
        source.blobs[("other", blob)] = data
    target.writes.clear()
    report = copy_tag(source.client(), target.client(), "other", "v1", digest, blobs)
    assert report.blobs_mounted == 2 and report.blobs_copied == 0 and report.bytes == 0
    again = copy_tag(source.client(), target.client(), "other", "v2", digest, blobs)
    assert again.manifests_skipped == 1 and again.blobs_copied == again.blobs_mounted == 0


def test_a_tombstone_removes_only_what_it_deleted() -> None:
    target = Memory()
    old, new = _image(target, "app", b"old", "v1"), _image(target, "app", b"new", "v2")
    assert not remove_tag(target.client(), "app", "v2", old, untag=False), "v2 names other content"
    assert remove_tag(target.client(), "app", "v1", old, untag=False)
    assert ("app", old) not in target.manifests and target.tags == {("app", "v2"): new}
    assert not remove_tag(target.client(), "app", "v1", old, untag=False), "already gone"


def test_an_untag_keeps_the_manifest_unless_the_registry_cannot_untag() -> None:
    target = Memory()
    digest = _image(target, "app", b"x", "v1")
    target.tags[("app", "v2")] = digest
    assert remove_tag(target.client(), "app", "v1", digest, untag=True)
    assert ("app", digest) in target.manifests and ("app", "v2") in target.tags
    old_registry = Memory(untag=False)
    digest = _image(old_registry, "app", b"x", "v1")
    assert remove_tag(old_registry.client(), "app", "v1", digest, untag=True)
    assert ("app", digest) not in old_registry.manifests


@pytest.mark.parametrize(("attempts", "delay"), [(0, 2.0), (1, 4.0), (5, 64.0), (20, RETRY_MAX_SECONDS)])
def test_retry_delay_doubles_to_a_ceiling(attempts: int, delay: float) -> None:
    assert retry_delay(attempts) == delay
