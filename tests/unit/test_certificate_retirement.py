"""Leaving `tls.mode: CertManager` (`registries/tls.py`, `handlers/registry.py`): which change
counts, and which Certificates and Secrets go. cert-manager would otherwise go on renewing into the
Secret the new mode serves from, and the operator and cert-manager would overwrite each other."""

from __future__ import annotations

from typing import Any

import pytest

from dockyard.handlers.registry import left_cert_manager
from dockyard.registries.manifests.certificate import CERT_MANAGER_API
from dockyard.registries.tls import CERTIFICATE_NAME_ANNOTATION, retire_certificate


class Cluster:
    """The objects `retire_certificate` reads and deletes, by (kind, namespace, name)."""

    def __init__(self, *objects: tuple[str, str, dict[str, Any]], served: bool = True) -> None:
        self.objects = {(kind, ns, body["metadata"]["name"]): body for kind, ns, body in objects}
        self.served = served
        self.deleted: list[tuple[str, str, str]] = []

    def kind_served(self, api_version: str, kind: str) -> bool:
        assert (api_version, kind) == (CERT_MANAGER_API, "Certificate")
        return self.served

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        return self.objects.get((kind, namespace, name))

    def delete(self, api_version: str, kind: str, namespace: str, name: str) -> bool:
        self.deleted.append((kind, namespace, name))
        return self.objects.pop((kind, namespace, name), None) is not None


def certificate(name: str, owner_uid: str | None, secret: str) -> tuple[str, str, dict[str, Any]]:
    meta: dict[str, Any] = {"name": name}
    if owner_uid:
        meta["ownerReferences"] = [{"kind": "Registry", "name": name, "uid": owner_uid}]
    return "Certificate", "team", {"metadata": meta, "spec": {"secretName": secret}}


def secret(name: str, filled_for: str | None) -> tuple[str, str, dict[str, Any]]:
    annotations = {CERTIFICATE_NAME_ANNOTATION: filled_for} if filled_for else {}
    return "Secret", "team", {"metadata": {"name": name, "annotations": annotations}}


@pytest.mark.parametrize(
    ("old", "new", "left"),
    [
        ("CertManager", "SelfSigned", True),
        ("CertManager", "Secret", True),
        ("CertManager", "Disabled", True),
        ("CertManager", None, True),  # the field removed: the schema's default, SelfSigned
        ("CertManager", "CertManager", False),
        ("SelfSigned", "Secret", False),
        (None, "SelfSigned", False),
    ],
)
def test_only_a_change_out_of_cert_manager_counts(old: str | None, new: str | None, left: bool) -> None:
    def body(mode: str | None) -> dict[str, Any]:
        return {"spec": {"tls": {"mode": mode}} if mode else {}}

    assert left_cert_manager(body(old), body(new)) is left


def test_no_previous_spec_is_no_change() -> None:
    assert left_cert_manager(None, {"spec": {"tls": {"mode": "SelfSigned"}}}) is False


def test_our_certificate_and_the_secret_cert_manager_filled_for_it_go() -> None:
    cluster = Cluster(certificate("hub", "u1", "hub-tls"), secret("hub-tls", "hub"))
    removed = retire_certificate(cluster, "team", "hub", "u1")  # type: ignore[arg-type]
    assert removed == ["Certificate hub removed", "Secret hub-tls removed"]
    assert cluster.objects == {}


def test_a_certificate_of_that_name_owned_by_another_is_left_with_its_secret() -> None:
    cluster = Cluster(certificate("hub", "someone-else", "hub-tls"), secret("hub-tls", "hub"))
    assert retire_certificate(cluster, "team", "hub", "u1") == []  # type: ignore[arg-type]
    assert cluster.deleted == []


def test_a_secret_not_filled_for_that_certificate_stays() -> None:
    # The operator's own serving Secret (SelfSigned) or a user's: no cert-manager annotation naming it.
    cluster = Cluster(certificate("hub", "u1", "hub-tls"), secret("hub-tls", None))
    assert retire_certificate(cluster, "team", "hub", "u1") == ["Certificate hub removed"]  # type: ignore[arg-type]
    assert ("Secret", "team", "hub-tls") in cluster.objects


def test_by_name_when_no_owner_can_say_and_a_secret_left_from_an_earlier_try() -> None:
    # A replica in another namespace owns nothing there; a retry after the Certificate went.
    cluster = Cluster(secret("hub-west-tls", "hub-west"))
    assert retire_certificate(cluster, "team", "hub-west") == ["Secret hub-west-tls removed"]  # type: ignore[arg-type]


def test_nothing_is_asked_without_cert_manager() -> None:
    cluster = Cluster(certificate("hub", "u1", "hub-tls"), served=False)
    assert retire_certificate(cluster, "team", "hub", "u1") == []  # type: ignore[arg-type]
    assert cluster.deleted == []


def test_the_secret_the_new_spec_serves_from_stays() -> None:
    # tls.mode Secret naming the Secret cert-manager filled: the user keeps serving it.
    cluster = Cluster(certificate("hub", "u1", "hub-tls"), secret("hub-tls", "hub"))
    removed = retire_certificate(cluster, "team", "hub", "u1", keep_secret="hub-tls")  # type: ignore[arg-type]
    assert removed == ["Certificate hub removed"]
    assert ("Secret", "team", "hub-tls") in cluster.objects
