"""Single-layer OCI artifacts (OCI image spec 1.1, the way ORAS stores files): an image manifest
with `artifactType`, the empty config `{}` (`application/vnd.oci.empty.v1+json`) and one layer.

Registries without 1.1 support (distribution 2.8) store the manifest as sent and ignore
`artifactType`; readers also accept an artifact whose config media type is the artifact type
(what ORAS writes for such registries). The manifest is built deterministically (sorted keys, no
whitespace), so the same content and annotations give the same digest.
"""

from __future__ import annotations

import json
from typing import Any, Final

from dockyard.distribution.client import OCI_MANIFEST, DistributionClient, sha256_digest, verify_digest
from dockyard.distribution.errors import RegistryProtocolError

EMPTY_MEDIA_TYPE: Final = "application/vnd.oci.empty.v1+json"
EMPTY_CONFIG: Final = b"{}"


def build_artifact_manifest(
    artifact_type: str, layer_media_type: str, layer: bytes, annotations: dict[str, str]
) -> bytes:
    """The manifest of a one-layer artifact (pure)."""
    manifest: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": {"mediaType": EMPTY_MEDIA_TYPE, "digest": sha256_digest(EMPTY_CONFIG), "size": len(EMPTY_CONFIG)},
        "layers": [{"mediaType": layer_media_type, "digest": sha256_digest(layer), "size": len(layer)}],
    }
    if annotations:
        manifest["annotations"] = dict(annotations)
    return json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()


def push_artifact(
    client: DistributionClient,
    repository: str,
    tag: str | None,
    artifact_type: str,
    layer_media_type: str,
    data: bytes,
    annotations: dict[str, str] | None = None,
) -> str:
    """Upload the layer and the empty config (skipped when present), then the manifest under `tag`,
    or by digest only when `tag` is None; returns the manifest digest."""
    client.push_blob(repository, EMPTY_CONFIG)
    client.push_blob(repository, data)
    manifest = build_artifact_manifest(artifact_type, layer_media_type, data, annotations or {})
    return client.put_manifest(repository, tag or sha256_digest(manifest), manifest, OCI_MANIFEST)


def artifact_type_of(manifest: dict[str, Any]) -> str | None:
    """`artifactType`, or the config media type when that is not the empty one (pre-1.1 style)."""
    declared = manifest.get("artifactType")
    if isinstance(declared, str):
        return declared
    config = manifest.get("config")
    media_type = config.get("mediaType") if isinstance(config, dict) else None
    return media_type if isinstance(media_type, str) and media_type != EMPTY_MEDIA_TYPE else None


def read_artifact_manifest(
    client: DistributionClient, repository: str, reference: str, expected_artifact_type: str
) -> dict[str, Any]:
    """The manifest of a one-layer artifact of the expected type (`RegistryProtocolError` if it is
    anything else)."""
    body, _, digest = client.get_manifest(repository, reference)
    where = f"{repository}@{digest}"
    try:
        manifest = json.loads(body)
    except ValueError as error:
        raise RegistryProtocolError(f"{where}: the manifest is not JSON") from error
    if not isinstance(manifest, dict) or manifest.get("mediaType", OCI_MANIFEST) != OCI_MANIFEST:
        raise RegistryProtocolError(f"{where}: not an OCI image manifest")
    found = artifact_type_of(manifest)
    if found != expected_artifact_type:
        raise RegistryProtocolError(f"{where}: artifact type {found!r}, expected {expected_artifact_type!r}")
    layers = manifest.get("layers")
    if not isinstance(layers, list) or len(layers) != 1 or not isinstance(layers[0], dict):
        raise RegistryProtocolError(f"{where}: expected exactly one layer")
    return manifest


def pull_artifact_layer(
    client: DistributionClient,
    repository: str,
    reference: str,
    expected_artifact_type: str,
    *,
    max_size: int | None = None,
) -> bytes:
    """The content of a one-layer artifact's layer, checked against the manifest's digest and size;
    a layer the manifest declares larger than `max_size` is refused before it is downloaded."""
    layer = read_artifact_manifest(client, repository, reference, expected_artifact_type)["layers"][0]
    digest, size = layer.get("digest"), layer.get("size")
    if not isinstance(digest, str):
        raise RegistryProtocolError(f"{repository}@{reference}: the layer has no digest")
    if max_size is not None and (not isinstance(size, int) or size > max_size):
        raise RegistryProtocolError(f"{repository}@{reference}: the layer is larger than {max_size} bytes")
    data = client.get_blob(repository, digest)
    verify_digest(data, digest, f"layer of {repository}@{reference}")
    if isinstance(size, int) and size != len(data):
        raise RegistryProtocolError(f"layer of {repository}@{reference}: {len(data)} bytes, manifest says {size}")
    return data
