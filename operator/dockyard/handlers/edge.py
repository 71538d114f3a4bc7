"""The one place where errors become kopf's verdicts and status, for every kind.

`parse_spec` turns a body into its frozen model or raises `Permanent(InvalidSpec)`; `reconcile_edge`
classifies whatever a reconcile raised (`core.errors.classify`), lets the caller write it to status,
and re-raises it as `kopf.PermanentError` (not retried until the spec changes) or
`kopf.TemporaryError` with the error's delay. Programming errors pass through unchanged: kopf logs
them with the traceback and retries with its own backoff.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

import kopf
from pydantic import BaseModel, ValidationError

from dockyard.core.conditions import Reason
from dockyard.core.errors import Permanent, ReconcileError, classify

M = TypeVar("M", bound=BaseModel)


def parse_spec(model: type[M], body: Mapping[str, Any]) -> M:
    try:
        return model.model_validate(body.get("spec") or {})
    except ValidationError as error:
        raise Permanent(Reason.INVALID_SPEC, f"invalid spec: {error}"[:1024]) from error


@contextmanager
def reconcile_edge(on_error: Callable[[ReconcileError], None]) -> Iterator[None]:
    try:
        yield
    except (kopf.TemporaryError, kopf.PermanentError):
        raise
    except Exception as raised:
        error = classify(raised)
        if error is None:
            raise
        on_error(error)
        if isinstance(error, Permanent):
            raise kopf.PermanentError(error.message) from raised
        raise kopf.TemporaryError(error.message, delay=error.delay) from raised
