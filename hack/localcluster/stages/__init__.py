"""kwok Stage definitions that play the kubelet for the cluster's fake node.

A Job's pod ends `Succeeded` (exit code 0) unless its pod carries EXIT_CODE_ANNOTATION with a
non-zero value, which makes it `Failed`. TERMINATION_MESSAGE_ANNOTATION becomes the containers'
termination `message` (what a container writes to /dev/termination-log), and
RUN_DURATION_ANNOTATION (a Go duration such as "5s") is how long the pod stays Running first.

A Job's pod labelled BUILD_RUN_LABEL (a build pod; the value is its BuildRun's name) plays Kaniko
instead (build-pod-complete.yaml): a name starting `slow-` runs for an hour, `fail-` makes container
`kaniko` exit 1 with Kaniko's error line as its message, any other name makes it exit 0 with one
`<destination>@sha256:<sha256 of the destination>` line per `--destination` (the format of
`--image-name-tag-with-digest-file`). The three annotations above still win when set.
"""

from __future__ import annotations

from pathlib import Path

DIRECTORY = Path(__file__).resolve().parent
EXIT_CODE_ANNOTATION = "kwok.dockyard.dev/exit-code"
TERMINATION_MESSAGE_ANNOTATION = "kwok.dockyard.dev/termination-message"
RUN_DURATION_ANNOTATION = "kwok.dockyard.dev/run-duration"
BUILD_RUN_LABEL = "dockyard.dev/build-run"
SLOW_BUILD_PREFIX = "slow-"
FAILING_BUILD_PREFIX = "fail-"
KANIKO_CONTAINER = "kaniko"
NODE_ANNOTATION = "kwok.x-k8s.io/node"
NODE_ANNOTATION_VALUE = "fake"


def stage_files() -> list[Path]:
    return sorted(DIRECTORY.glob("*.yaml"))
