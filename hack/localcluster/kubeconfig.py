"""The kubeconfig that every component and client of a local cluster uses."""

from __future__ import annotations

import base64
import json

CONTEXT = "dockyard-local"


def render_kubeconfig(server: str, token: str, ca_pem: bytes) -> str:
    """A kubeconfig (JSON, which is YAML) for `server` with bearer-token auth and the CA inline."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": CONTEXT,
                "cluster": {
                    "server": server,
                    "certificate-authority-data": base64.b64encode(ca_pem).decode("ascii"),
                },
            }
        ],
        "users": [{"name": "admin", "user": {"token": token}}],
        "contexts": [{"name": CONTEXT, "context": {"cluster": CONTEXT, "user": "admin", "namespace": "default"}}],
        "current-context": CONTEXT,
        "preferences": {},
    }
    return json.dumps(config, indent=2) + "\n"
