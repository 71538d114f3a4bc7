"""Polling with a deadline (never fixed sleeps), optionally watching that components stay alive."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TypeVar

from .errors import LocalClusterError
from .processes import Component

T = TypeVar("T")


def wait_for(
    check: Callable[[], T],
    *,
    what: str,
    timeout: float,
    components: Sequence[Component] = (),
    blame: Component | None = None,
    interval: float = 0.2,
) -> T:
    """Poll `check` until it returns something truthy and return that.

    Fails early if one of `components` exits (with the tail of its log); on timeout the message
    names `what` and carries the tail of `blame`'s log.
    """
    deadline = time.monotonic() + timeout
    while True:
        for component in components:
            code = component.exit_code()
            if code is not None:
                raise LocalClusterError(
                    f"{component.name} exited with code {code} while waiting for {what}; "
                    f"last lines of its log:\n{component.tail()}"
                )
        result = check()
        if result:
            return result
        if time.monotonic() >= deadline:
            message = f"timed out after {timeout:.0f}s waiting for {what}"
            if blame is not None:
                message += f"; last lines of {blame.name}'s log:\n{blame.tail()}"
            raise LocalClusterError(message)
        time.sleep(interval)
