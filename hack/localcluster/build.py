"""Builds (or finds cached) control-plane binaries with hack/build-control-plane.sh."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from .errors import LocalClusterError

BUILD_SCRIPT = Path(__file__).resolve().parents[1] / "build-control-plane.sh"
MISSING_TOOLCHAIN_EXIT = 3


def run_build_script(script: Path, env: Mapping[str, str] | None = None) -> str:
    """Run one of hack/build-*.sh and return what it printed on stdout.

    The script's progress is copied to stderr as it happens; its `error: ...` sentences become the
    message of the LocalClusterError raised when it fails (exit code 3: Go or the proxy is missing).
    """
    process = subprocess.Popen(
        ["bash", str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1, env=env
    )
    assert process.stderr is not None and process.stdout is not None
    errors: list[str] = []
    for line in process.stderr:
        if line.startswith("error: "):
            errors.append(line.removeprefix("error: ").strip())
        else:
            sys.stderr.write(line)
    stdout = process.stdout.read()
    returncode = process.wait()
    if returncode == MISSING_TOOLCHAIN_EXIT:
        raise LocalClusterError(" ".join(errors) or "Go or the Go module proxy is missing")
    if returncode != 0:
        detail = " ".join(errors) or "see its output above"
        raise LocalClusterError(f"{script.name} failed with exit code {returncode}: {detail}")
    return stdout


def ensure_binaries(script: Path = BUILD_SCRIPT) -> Path:
    """Return the directory holding the control-plane binaries, building them first if needed."""
    stdout = run_build_script(script)
    lines = stdout.strip().splitlines()
    if not lines or not Path(lines[-1]).is_dir():
        raise LocalClusterError(f"{script.name} did not print the bin directory (stdout: {stdout.strip()!r})")
    return Path(lines[-1])
