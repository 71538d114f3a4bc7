"""The build pod's fetch entry point: which credential it takes from the docker config, and how it
fails (one line, exit 1, the termination log written, no secret shown)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from dockyard.builds.fetch import DockerConfigError, credentials_for, main
from dockyard.distribution import Basic, Bearer

HOST = "hub.team.svc:5000"


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ({"registrytoken": "minted", "auth": _b64("u:p")}, Bearer("minted")),
        ({"auth": _b64("user:pa:ss")}, Basic("user", "pa:ss")),
        ({"username": "user", "password": "pw"}, Basic("user", "pw")),
        ({}, None),
    ],
)
def test_the_credential_for_the_registry(entry: dict[str, str], expected: Basic | Bearer | None) -> None:
    assert credentials_for({"auths": {HOST: entry, "other:5000": {"registrytoken": "x"}}}, HOST) == expected


def test_docker_login_style_keys_are_found_and_other_hosts_ignored() -> None:
    assert credentials_for({"auths": {f"https://{HOST}/v1/": {"auth": _b64("u:p")}}}, HOST) == Basic("u", "p")
    assert credentials_for({"auths": {"elsewhere:5000": {"auth": _b64("u:p")}}}, HOST) is None
    assert credentials_for({}, HOST) is None


def test_a_broken_auth_field_is_an_error_that_does_not_quote_it() -> None:
    with pytest.raises(DockerConfigError) as raised:
        credentials_for({"auths": {HOST: {"auth": _b64("no-colon-secret")}}}, HOST)
    assert "no-colon-secret" not in str(raised.value)


def test_a_failure_is_one_line_on_stderr_and_in_the_termination_log(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"auths": {HOST: {"username": "u", "password": "hunter2"}}}))
    code = main(
        [
            "--registry", "127.0.0.1:1", "--repository", "dockyard/sources", "--digest", "sha256:" + "0" * 64,
            "--into", str(tmp_path / "ws"), "--docker-config", str(config),
            "--termination-log", str(tmp_path / "termination-log"),
        ]
    )  # fmt: skip
    captured = capsys.readouterr()
    assert code == 1
    assert len(captured.err.strip().splitlines()) == 1 and captured.err.startswith("fetching the build context failed")
    assert (tmp_path / "termination-log").read_text() == captured.err
    assert "hunter2" not in captured.err + captured.out
    assert not (tmp_path / "ws").exists()
