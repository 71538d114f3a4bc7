"""Errors raised by the local control plane."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence


class LocalClusterError(RuntimeError):
    """The control plane could not be built, started or used; the message says why."""


class KubectlError(LocalClusterError, subprocess.CalledProcessError):
    """A `kubectl` call exited non-zero; the message carries its stderr."""

    def __init__(self, returncode: int, cmd: Sequence[str], output: str, stderr: str) -> None:
        subprocess.CalledProcessError.__init__(self, returncode, list(cmd), output, stderr)
        RuntimeError.__init__(self, str(self))

    def __str__(self) -> str:
        args = " ".join(self.cmd[1:])
        return f"kubectl {args} exited with {self.returncode}: {(self.stderr or '').strip()}"
