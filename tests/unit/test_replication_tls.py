"""Which certificate a replica serves (`replication/certificates.py`, `hostnames.py`): its names,
the Secret chosen with the registry's `tls.mode: Secret`, and the cert-manager Certificate
(golden). `UPDATE_GOLDEN=1 make unit` rewrites the golden file; review the diff like code."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from dockyard.core.conditions import Reason
from dockyard.core.meta import Owner
from dockyard.core.pki import issue_ca, issue_serving_cert, uncovered_hosts
from dockyard.models import RegistrySpec
from dockyard.models.replication import ReplicationSpec
from dockyard.registries.manifests.config import RegistryContext, RegistryNames, tls_secret_name
from dockyard.replication.certificates import (
    Presented,
    ServingSecret,
    build_replica_certificate,
    choose_serving_secret,
)
from dockyard.replication.hostnames import replica_hosts, service_dns_names
from dockyard.replication.manifests import replica_context
from dockyard.replication.placement import Placement, Refusal, plan_replica
from dockyard.replication.reasons import ReplicationReason

GOLDEN = Path(__file__).parent / "golden"
HOME = Owner("dockyard.dev/v1alpha1", "Registry", "hub", "team-a", "8b7c6d5e-0000-4000-8000-000000000001")
SAME = Owner("dockyard.dev/v1alpha1", "Replication", "hub-west", "team-a", "8b7c6d5e-0000-4000-8000-0000000000aa")
ELSEWHERE = Owner("dockyard.dev/v1alpha1", "Replication", "hub-west", "team-b", "8b7c6d5e-0000-4000-8000-0000000000aa")
NODES = [{"topology.kubernetes.io/zone": "west"}]
CA = issue_ca("test CA")
CERT_MANAGER = {
    "sku": "Premium",
    "tls": {"mode": "CertManager", "issuerRef": {"name": "corp", "kind": "ClusterIssuer"}},
}
SECRET = {"sku": "Premium", "tls": {"mode": "Secret", "secretName": "hub-cert"}}
REGIONAL = ["hub-west.team-a.svc", "hub-west", "hub-west.team-a", "hub-west.team-a.svc.cluster.local"]
GLOBAL = ["hub.team-a.svc", "hub", "hub.team-a", "hub.team-a.svc.cluster.local"]


def _home(spec: dict[str, Any]) -> RegistryContext:
    parsed = RegistrySpec.model_validate(spec)
    return RegistryContext(
        HOME, parsed, "registry:3", "dockyard:0.1.0", tls_secret_name(parsed, RegistryNames(HOME.name)), "http://ev"
    )


def _replica(registry: dict[str, Any], owner: Owner = SAME, **replication: Any) -> Any:
    home = _home(registry)
    spec = ReplicationSpec.model_validate({"registryRef": {"name": "hub"}, "location": "west", **replication})
    placement = plan_replica("team-a", "hub", home.spec, owner.name, "t", spec, [], NODES)
    assert isinstance(placement, Placement), placement
    return replica_context(home, owner, "west", placement)


def _presented(secret: str, *hosts: str) -> Presented:
    return Presented(secret, issue_serving_cert(CA, list(hosts)).cert_pem)


def test_a_replicas_names_are_its_own_service_and_the_registrys() -> None:
    hosts = replica_hosts("hub-west", "team-a", "hub", "team-a")
    assert list(hosts.regional) == REGIONAL and list(hosts.global_) == GLOBAL
    assert hosts.all == REGIONAL + GLOBAL, "regional first: the first name is the certificate's common name"
    elsewhere = replica_hosts("hub-west", "team-b", "hub", "team-a")
    assert elsewhere.regional[0] == "hub-west.team-b.svc" and elsewhere.global_[0] == "hub.team-a.svc"


def test_service_names_are_those_a_registry_is_certified_for() -> None:
    home = _home({"sku": "Premium"})
    assert service_dns_names("hub", "team-a") == home.service_hosts


@pytest.mark.parametrize("registry", [{"sku": "Premium"}, CERT_MANAGER])
def test_every_operator_or_issuer_made_replica_certificate_names_regional_and_global(registry: dict[str, Any]) -> None:
    ctx = _replica(registry)
    assert ctx.tls_hosts == REGIONAL + GLOBAL
    assert ctx.login_server == "hub-west.team-a.svc:5000"


def test_wildcards_stand_for_exactly_one_label() -> None:
    cert = issue_serving_cert(CA, ["*.team-a.svc", "registry.example.com", "10.0.0.7"]).cert_pem
    assert uncovered_hosts(cert, ["hub-west.team-a.svc", "HUB.team-a.svc.", "10.0.0.7"]) == []
    assert uncovered_hosts(cert, ["team-a.svc", "a.hub.team-a.svc", "hub-west", "example.com"]) == [
        "team-a.svc",
        "a.hub.team-a.svc",
        "hub-west",
        "example.com",
    ]
    with pytest.raises(ValueError):
        uncovered_hosts(b"not a certificate", ["hub"])


HOSTS = replica_hosts("hub-west", "team-a", "hub", "team-a")
EVERY_NAME = ("*.team-a.svc", "hub-west", "hub-west.team-a", "*.team-a.svc.cluster.local", "hub", "hub.team-a")


def test_the_registrys_certificate_is_served_in_place_when_it_names_the_replica() -> None:
    choice = choose_serving_secret(
        HOSTS, "hub", "team-a", own=None, home=_presented("hub-cert", *EVERY_NAME), copy_name=None
    )
    assert choice == ServingSecret("hub-cert", None, ())


def test_in_another_namespace_the_registrys_certificate_is_copied() -> None:
    hosts = replica_hosts("hub-west", "team-b", "hub", "team-a")
    home = _presented("hub-cert", "*.team-b.svc")
    choice = choose_serving_secret(hosts, "hub", "team-b", own=None, home=home, copy_name="hub-west-tls")
    assert isinstance(choice, ServingSecret)
    assert (choice.secret, choice.copy_of) == ("hub-west-tls", "hub-cert")
    assert choice.uncovered_global == ("hub.team-a.svc",), "the registry's login server is reported, not required"


def test_a_certificate_that_misses_the_replicas_login_server_is_refused_naming_it() -> None:
    home = _presented("hub-cert", "hub.team-a.svc", "hub", "hub-west", "hub-west.team-a", "*.svc")
    choice = choose_serving_secret(HOSTS, "hub", "team-a", own=None, home=home, copy_name=None)
    assert isinstance(choice, Refusal) and choice.reason == ReplicationReason.CERTIFICATE_NAME_MISMATCH
    assert "missing hub-west.team-a.svc;" in choice.message
    assert "Secret hub-cert" in choice.message and "spec.tls.secretName" in choice.message
    assert "BEGIN" not in choice.message, "no certificate content in status"


def test_the_replicas_own_certificate_wins_and_must_name_it_too() -> None:
    own = _presented("west-cert", *REGIONAL)
    home = _presented("hub-cert", "*.team-a.svc")
    choice = choose_serving_secret(HOSTS, "hub", "team-a", own=own, home=home, copy_name=None)
    assert choice == ServingSecret("west-cert", None, ("hub.team-a.svc",))
    short = _presented("west-cert", "hub-west", "hub-west.team-a")
    refused = choose_serving_secret(HOSTS, "hub", "team-a", own=short, home=None, copy_name=None)
    assert isinstance(refused, Refusal) and refused.reason == ReplicationReason.CERTIFICATE_NAME_MISMATCH
    assert "west-cert (spec.tls.secretName)" in refused.message and "missing hub-west.team-a.svc" in refused.message


def test_a_secret_without_a_certificate_waits() -> None:
    refused = choose_serving_secret(
        HOSTS, "hub", "team-a", own=None, home=Presented("hub-cert", b"garbage"), copy_name=None
    )
    assert isinstance(refused, Refusal) and refused.reason == Reason.DEPENDENCY_NOT_READY
    assert "hub-cert" in refused.message


@pytest.mark.parametrize("registry", [SECRET, CERT_MANAGER])
def test_replicas_of_secret_and_cert_manager_registries_are_placed(registry: dict[str, Any]) -> None:
    assert isinstance(_replica(registry), type(_replica({"sku": "Premium"})))


def test_spec_tls_secret_name_is_refused_where_it_would_do_nothing() -> None:
    spec = ReplicationSpec.model_validate(
        {"registryRef": {"name": "hub"}, "location": "west", "tls": {"secretName": "w"}}
    )
    for registry in (CERT_MANAGER, {"sku": "Premium"}, {"sku": "Premium", "tls": {"mode": "Disabled"}}):
        verdict = plan_replica("team-a", "hub", RegistrySpec.model_validate(registry), "r", "t", spec, [], NODES)
        assert isinstance(verdict, Refusal) and verdict.reason == Reason.INVALID_SPEC
        assert "spec.tls.secretName" in verdict.message
    assert isinstance(
        plan_replica("team-a", "hub", RegistrySpec.model_validate(SECRET), "r", "t", spec, [], NODES), Placement
    )


def test_golden_certificates() -> None:
    documents = [
        build_replica_certificate(_replica(CERT_MANAGER)),
        build_replica_certificate(_replica(CERT_MANAGER, ELSEWHERE, targetNamespace="team-b")),
    ]
    rendered = yaml.safe_dump_all(documents, sort_keys=False)
    path = GOLDEN / "replica-certificates.yaml"
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(rendered)
    assert path.exists(), f"missing {path.name}: run UPDATE_GOLDEN=1 make unit"
    assert rendered == path.read_text()


def test_the_copier_verifies_a_replica_with_the_ca_of_the_secret_it_serves() -> None:
    from dockyard.replication.tls import serving_secret_of

    assert serving_secret_of("hub-cert", "team-a", None) == ("team-a", "hub-cert"), "the registry itself"
    plain = {"spec": {"registryRef": {"name": "hub"}, "location": "west", "targetNamespace": "team-b"}}
    assert serving_secret_of("hub-cert", "team-a", plain) == ("team-a", "hub-cert"), "a copy of the registry's"
    own = {"spec": {**plain["spec"], "tls": {"secretName": "west-cert"}}}
    assert serving_secret_of("hub-cert", "team-a", own) == ("team-b", "west-cert")
