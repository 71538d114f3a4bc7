"""The token service's API access and watch plumbing: kubeconfig contexts (token, client
certificate, CA data), and watch lines longer than aiohttp's line limit."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path
from typing import Any

import yaml

from dockyard.auth.watch import _lines, kubeconfig_access
from dockyard.core.pki import issue_signing_key


def test_kubeconfig_with_a_token_and_ca_data(tmp_path: Path) -> None:
    ca = issue_signing_key("test ca").cert_pem
    config = {
        "current-context": "b",
        "contexts": [
            {"name": "a", "context": {"cluster": "one", "user": "nobody"}},
            {"name": "b", "context": {"cluster": "two", "user": "sa"}},
        ],
        "clusters": [
            {"name": "one", "cluster": {"server": "https://one:6443"}},
            {
                "name": "two",
                "cluster": {
                    "server": "https://two:6443/",
                    "certificate-authority-data": base64.b64encode(ca).decode(),
                },
            },
        ],
        "users": [{"name": "sa", "user": {"token": "t0ken"}}],
    }
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    access = kubeconfig_access(path)
    assert access.server == "https://two:6443"
    assert access.headers() == {"Authorization": "Bearer t0ken"}


def test_kubeconfig_token_file_is_read_at_each_request(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("first\n")
    config = {
        "current-context": "x",
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
        "clusters": [{"name": "c", "cluster": {"server": "https://c", "insecure-skip-tls-verify": True}}],
        "users": [{"name": "u", "user": {"tokenFile": str(tmp_path / "token")}}],
    }
    (tmp_path / "kubeconfig").write_text(yaml.safe_dump(config))
    access = kubeconfig_access(tmp_path / "kubeconfig")
    assert access.headers()["Authorization"] == "Bearer first"
    (tmp_path / "token").write_text("rotated")
    assert access.headers()["Authorization"] == "Bearer rotated"


class _Content:
    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks

    async def iter_any(self) -> Any:
        for chunk in self.chunks:
            yield chunk


class _Response:
    def __init__(self, chunks: list[bytes]) -> None:
        self.content = _Content(chunks)


def test_watch_lines_of_any_length_across_chunks() -> None:
    big = {"type": "MODIFIED", "object": {"spec": {"actions": ["repositories/x/content/read"] * 5000}}}
    data = (json.dumps(big) + "\n" + json.dumps({"type": "BOOKMARK", "object": {}}) + "\n").encode()
    chunks = [data[i : i + 1000] for i in range(0, len(data), 1000)]

    async def collect() -> list[dict[str, Any]]:
        return [event async for event in _lines(_Response(chunks))]  # type: ignore[arg-type]

    events = asyncio.run(collect())
    assert [e["type"] for e in events] == ["MODIFIED", "BOOKMARK"]
    assert len(events[0]["object"]["spec"]["actions"]) == 5000
