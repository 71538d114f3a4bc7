"""Reasons of a Replication's conditions beyond the shared ones (`core/conditions.Reason`).
Alerts and scripts match on these, so they never change."""

from __future__ import annotations

from typing import Final


class ReplicationReason:
    PREMIUM_REQUIRED: Final = "PremiumRequired"
    """`Ready=False`: the referenced Registry is not Premium; geo-replication is a Premium feature.
    Raising the registry's tier clears it."""
    UNKNOWN_LOCATION: Final = "UnknownLocation"
    """`Ready=False`: no node carries `topology.kubernetes.io/region` or `…/zone` equal to the
    location, and no `nodeSelector` is given. A node labelled so (or a nodeSelector) clears it."""
    LOCATION_IN_USE: Final = "LocationInUse"
    """`Ready=False`: an older Replication of the same registry already has this location."""
    STORAGE_SHARED: Final = "StorageShared"
    """`Ready=False`: the replica's storage is the home registry's or another replica's bucket (a
    shared bucket is not a replica); name one of its own in `spec.storage`."""
    CERTIFICATE_NAME_MISMATCH: Final = "CertificateNameMismatch"
    """`Ready=False`: with the registry's `tls.mode: Secret`, neither the registry's certificate nor
    the one in `spec.tls.secretName` names the replica's login server; the message lists the missing
    DNS names. A certificate that names them (or `spec.tls.secretName`) clears it."""
    SYNCING: Final = "Syncing"
    """`Synced=False`: changes wait to be copied into the replica (or its first fill runs)."""
    IN_SYNC: Final = "InSync"
    """`Synced=True`: nothing waits to be copied into the replica."""
    ROUTED: Final = "Routed"
    """`GlobalEndpointRouting=True`: the registry's global login server lists the replica's ready
    pods (its EndpointSlice), so clients of the global name may be served here."""
    ROUTING_DISABLED: Final = "RoutingDisabled"
    """`GlobalEndpointRouting=False`: `regionEndpointEnabled: false`; the global login server lists
    no pod of the replica. It keeps syncing; its own login server (`status.loginServer`) works."""
    NO_READY_POD: Final = "NoReadyPod"
    """`GlobalEndpointRouting=False`: routing is enabled but no pod of the replica is ready; the
    global login server sends clients to the home registry and the other replicas meanwhile."""


class ReplicationEventReason:
    TAG_CONFLICT: Final = "TagConflict"
    """Warning, on the Replication (or Registry) whose push lost: one tag was pushed on two replicas
    at once; the message names both digests and the winner."""


SYNCED: Final = "Synced"
"""Condition type: `True` when nothing waits to be copied into the replica."""
GLOBAL_ENDPOINT: Final = "GlobalEndpointRouting"
"""Condition type: whether the registry's global login server routes clients to this replica
(`spec.regionEndpointEnabled` and a ready pod): `Routed`, `RoutingDisabled` or `NoReadyPod`. The
replica's own login server (`status.loginServer`) works either way."""
