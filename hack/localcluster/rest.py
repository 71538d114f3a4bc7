"""A minimal HTTPS client for the API server and the components' health endpoints."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from typing import Any

_NO_PROXY = urllib.request.ProxyHandler({})


def http_ok(url: str, context: ssl.SSLContext | None = None, token: str | None = None) -> bool:
    """True if GET `url` answers 200; any connection error or other status is False."""
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    opener = urllib.request.build_opener(_NO_PROXY, urllib.request.HTTPSHandler(context=context))
    try:
        with opener.open(request, timeout=5) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False


def unverified_context() -> ssl.SSLContext:
    """For the controller-manager's and scheduler's self-signed health endpoints."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


class ApiServer:
    """GET and POST JSON against the API server with the admin token."""

    def __init__(self, server: str, token: str, ca_file: str) -> None:
        self.server = server
        self._token = token
        context = ssl.create_default_context(cafile=ca_file)
        self._opener = urllib.request.build_opener(_NO_PROXY, urllib.request.HTTPSHandler(context=context))

    def get(self, path: str) -> Any | None:
        """The decoded object, or None if it does not exist (404)."""
        try:
            return self._call("GET", path, None)
        except urllib.error.HTTPError as error:
            if error.code == 404:
                return None
            raise

    def create(self, path: str, body: dict[str, Any]) -> Any:
        """POST `body`; an existing object (409) is not an error."""
        try:
            return self._call("POST", path, body)
        except urllib.error.HTTPError as error:
            if error.code == 409:
                return None
            raise

    def _call(self, method: str, path: str, body: dict[str, Any] | None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.server + path, data=data, method=method)
        request.add_header("Authorization", f"Bearer {self._token}")
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        with self._opener.open(request, timeout=10) as response:
            return json.loads(response.read())
