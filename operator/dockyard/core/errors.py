"""The operator's error tree, mapped once at the handler edge (`handlers/edge.py`):

    ReconcileError            reason (a `Reason` constant) + a message safe to show in status
    ├── Temporary             the API server or network failed; retried with backoff (`delay`)
    ├── WaitsForUser          something only the user can change (a missing Secret, a refused
    │                         tier change); retried slowly in case it appears on its own
    └── Permanent             the spec cannot be acted on; nothing is retried until it changes

Domain code raises these (or lets `core.apiserver.ApiError` and connection errors through,
which `classify` turns into `Temporary`); handlers never see a bare exception class to decide on.
"""

from __future__ import annotations

from typing import Final

from urllib3.exceptions import HTTPError

from dockyard.core.apiserver import ApiError
from dockyard.core.conditions import Reason

API_RETRY_SECONDS: Final = 10.0
USER_RETRY_SECONDS: Final = 15.0


class ReconcileError(Exception):
    def __init__(self, reason: str, message: str, *, delay: float = API_RETRY_SECONDS) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.delay = delay


class Temporary(ReconcileError):
    """Retried with backoff; status says `ReconcileFailed` unless another reason is given."""


class WaitsForUser(ReconcileError):
    """A condition the user resolves; retried every USER_RETRY_SECONDS meanwhile."""

    def __init__(self, reason: str, message: str, *, delay: float = USER_RETRY_SECONDS) -> None:
        super().__init__(reason, message, delay=delay)


class Permanent(ReconcileError):
    """Not retried until the resource changes."""


def classify(error: BaseException) -> ReconcileError | None:
    """The `ReconcileError` an exception stands for, or None for a programming error (kopf logs and
    retries those with its own backoff)."""
    if isinstance(error, ReconcileError):
        return error
    if isinstance(error, ApiError):
        return Temporary(Reason.RECONCILE_FAILED, f"Kubernetes API error {error.status} {error.reason}")
    if isinstance(error, (HTTPError, ConnectionError, TimeoutError)):
        return Temporary(Reason.RECONCILE_FAILED, f"Kubernetes API unreachable: {type(error).__name__}")
    return None
