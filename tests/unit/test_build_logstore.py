"""Run logs as OCI artifacts: the manifest's shape, the round trip through a registry that speaks
the token protocol (in memory), deletion that spares other runs, and redaction."""

from __future__ import annotations

import base64
import gzip
import json
from datetime import UTC, datetime

import httpx
import pytest
from test_distribution_client import HOST, FakeRegistry

from dockyard.builds.artifacts import LOG_ARTIFACT_TYPE, LOG_LAYER_MEDIA_TYPE, LOGS_REPOSITORY, push_context
from dockyard.builds.logstore import ArtifactReference, delete_log, read_log, redact, store_log
from dockyard.distribution import Basic, DistributionClient, RegistryNotFound, RegistryProtocolError

NOW = datetime(2026, 12, 1, 10, 0, 0, tzinfo=UTC)


@pytest.fixture
def registry() -> FakeRegistry:
    return FakeRegistry()


@pytest.fixture
def client(registry: FakeRegistry) -> DistributionClient:
    return DistributionClient(
        HOST, credentials=Basic("admin", "s3cret"), transport=httpx.MockTransport(registry.handle)
    )


def test_a_stored_log_is_a_one_layer_artifact_tagged_with_the_run_id(
    registry: FakeRegistry, client: DistributionClient
) -> None:
    reference = store_log(client, "ca7", "uid-1", "Step 1/2 : FROM alpine\nDone ✓\n", now=NOW)
    parsed = ArtifactReference.parse(reference)
    assert (parsed.host, parsed.repository, parsed.tag) == (HOST, LOGS_REPOSITORY, "ca7")
    assert reference == f"{HOST}/dockyard/logs:ca7@{parsed.digest}"
    manifest = json.loads(registry.manifests[str(parsed.digest)][0])
    assert manifest["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert manifest["artifactType"] == LOG_ARTIFACT_TYPE
    assert manifest["config"]["mediaType"] == "application/vnd.oci.empty.v1+json"
    assert [layer["mediaType"] for layer in manifest["layers"]] == [LOG_LAYER_MEDIA_TYPE]
    assert manifest["annotations"] == {
        "dev.dockyard.run.id": "ca7",
        "dev.dockyard.run.uid": "uid-1",
        "org.opencontainers.image.created": "2026-12-01T10:00:00Z",
    }
    layer = registry.blobs[manifest["layers"][0]["digest"]]
    assert gzip.decompress(layer).decode() == "Step 1/2 : FROM alpine\nDone ✓\n"
    assert read_log(client, reference) == "Step 1/2 : FROM alpine\nDone ✓\n"
    assert read_log(client, f"{HOST}/dockyard/logs:ca7") == "Step 1/2 : FROM alpine\nDone ✓\n"


def test_deleting_one_runs_log_spares_another_with_the_same_text(
    registry: FakeRegistry, client: DistributionClient
) -> None:
    first = store_log(client, "ca7", "uid-1", "same text", now=NOW)
    second = store_log(client, "ca8", "uid-2", "same text", now=NOW)
    assert ArtifactReference.parse(first).digest != ArtifactReference.parse(second).digest
    assert delete_log(client, first) is True
    assert delete_log(client, first) is False
    assert read_log(client, second) == "same text"
    with pytest.raises(RegistryNotFound):
        read_log(client, first)


def test_reading_something_that_is_not_a_log_is_refused(client: DistributionClient) -> None:
    digest = push_context(client, gzip.compress(b"tar"), repository="dockyard/logs")
    with pytest.raises(RegistryProtocolError, match="artifact type"):
        read_log(client, f"{HOST}/dockyard/logs@{digest}")


@pytest.mark.parametrize(
    ("reference", "parts"),
    [
        ("hub.ns.svc:5000/dockyard/logs:ca7@sha256:ab", ("hub.ns.svc:5000", "dockyard/logs", "ca7", "sha256:ab")),
        ("hub.ns.svc:5000/dockyard/logs:ca7", ("hub.ns.svc:5000", "dockyard/logs", "ca7", None)),
        ("10.0.0.1/logs@sha256:ab", ("10.0.0.1", "logs", None, "sha256:ab")),
    ],
)
def test_references_parse_and_print_back(reference: str, parts: tuple[str, str, str | None, str | None]) -> None:
    parsed = ArtifactReference.parse(reference)
    assert (parsed.host, parsed.repository, parsed.tag, parsed.digest) == parts
    assert str(parsed) == reference


@pytest.mark.parametrize("reference", ["no-slash", "host/repo", "host/"])
def test_references_without_a_tag_or_digest_are_refused(reference: str) -> None:
    with pytest.raises(ValueError):
        ArtifactReference.parse(reference)


def test_redact_hides_every_occurrence_of_every_secret() -> None:
    text = "login admin:hunter2 token=abc123 again hunter2 and hunter22"
    assert redact(text, ["hunter2", "", "abc123", "hunter22"]) == "login admin:*** token=*** again *** and ***"
    assert redact(text, []) == text


def test_redact_hides_a_base64_secret_decoded_too() -> None:
    # a task-file volume file holds its secret decoded: a step printing it must not show it
    encoded = base64.b64encode(b"s3cr3t-token\n").decode()
    assert redact(f"file: s3cr3t-token env: {encoded}", [encoded]) == "file: *** env: ***"
    assert redact("a plain password stays hidden: hunter22", ["hunter22"]) == "a plain password stays hidden: ***"
    assert redact("nothing here", ["", "x" * 3]) == "nothing here"
