"""Child processes of a local cluster: each in its own process group, logging to a file."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from .errors import LocalClusterError


class Component:
    """One control-plane process (etcd, kube-apiserver, ...) and its log file."""

    def __init__(self, name: str, argv: Sequence[str], log_path: Path, env: Mapping[str, str] | None = None) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.env = dict(env) if env is not None else None
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            try:
                self._process = subprocess.Popen(
                    _with_parent_death_signal(self.argv),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=self.env,
                    start_new_session=True,
                )
            except OSError as error:
                raise LocalClusterError(f"cannot start {self.name} ({self.argv[0]}): {error}") from error

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def exit_code(self) -> int | None:
        """None while running (or never started), else the exit status."""
        return self._process.poll() if self._process is not None else None

    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def signal_group(self, signum: signal.Signals) -> None:
        if self._process is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._process.pid, signum)

    def reap(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for the process to exit; True if it has."""
        if self._process is None:
            return True
        try:
            self._process.wait(timeout=max(timeout, 0))
            return True
        except subprocess.TimeoutExpired:
            return False


def stop_all(components: Sequence[Component], grace_seconds: float = 5.0) -> None:
    """SIGTERM every component's process group, SIGKILL whatever is left after the grace period."""
    for component in reversed(components):
        component.signal_group(signal.SIGTERM)
    deadline = time.monotonic() + grace_seconds
    for component in reversed(components):
        if not component.reap(deadline - time.monotonic()):
            component.signal_group(signal.SIGKILL)
            component.reap(5.0)


def _with_parent_death_signal(argv: list[str]) -> list[str]:
    """Have the kernel SIGTERM the child if this (main) thread dies without cleaning up.

    Only from the main thread: the signal fires when the *thread* that started the child exits.
    """
    setpriv = shutil.which("setpriv")
    if setpriv is None or threading.current_thread() is not threading.main_thread():
        return argv
    return [setpriv, "--pdeathsig", "TERM", "--", *argv]
