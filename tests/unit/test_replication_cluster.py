"""How the copier reaches replicas in the cluster (`replication/cluster.py`): a login server that
names a Service is dialled at its ClusterIP, any other host by name."""

from __future__ import annotations

import pytest

from dockyard.replication.cluster import service_of


@pytest.mark.parametrize(
    ("login_server", "service"),
    [
        ("geo-west.team.svc:5000", ("team", "geo-west")),
        ("geo.team.svc", ("team", "geo")),
        ("geo.team.svc.cluster.local:5000", ("team", "geo")),
        ("registry.example.com", None),
        ("registry.example.com:443", None),
        ("10.96.0.12:5000", None),
        ("a.b.c.svc:5000", None),
    ],
)
def test_a_login_server_names_a_service_or_not(login_server: str, service: tuple[str, str] | None) -> None:
    assert service_of(login_server) == service
