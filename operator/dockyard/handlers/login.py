"""kopf's own connection to the API server: the operator's credentials, with a bounded pool.

kopf's built-in session opens connections without limit (`TCPConnector(limit=0)`): when a
thousand Registries are created at once, each object's worker patches its annotations at the same
moment, and every one of those requests opens a TLS connection of its own. asyncio gives each TLS
connection a 256 KiB read buffer, so the burst cost about 80 MB at 300 Registries and over 200 MB at
1,000 (the operator's peak RSS), for no gain: the API server answers them no faster. Here the
session is the same shape and the pool holds `KOPF_CONNECTIONS` connections; requests beyond that
wait for one.

The credentials are the ones the operator's own requests use (`core/apiserver.py`: the service
account in a pod, else the kubeconfig), so kopf and the operator never disagree on who they are.
kopf calls this again on a 401, which reads a rotated service-account token afresh.
"""

from __future__ import annotations

from typing import Any, Final

import aiohttp
import kopf

from dockyard.core.apiserver import Credentials, CredentialsError, load_credentials

KOPF_CONNECTIONS: Final = 24
"""kopf's watch streams hold one connection each for as long as they run (nine kinds, cluster-wide
or in one namespace), the rest serve its patches and its few Events: about ten annotation patches a
second in a burst, each done in tens of milliseconds, need a handful. Each connection costs 256 KiB
of read buffer while open."""


def session_for(info: kopf.ConnectionInfo, limit: int = KOPF_CONNECTIONS) -> aiohttp.ClientSession:
    """An aiohttp session like kopf's own for these credentials, with at most `limit` connections."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=limit, ssl=info.as_ssl_context()),
        headers=info.as_http_headers(),  # the credentials, basic auth included
        proxy=info.proxy_url,
        trust_env=info.trust_env,
    )


def connection_info(found: Credentials) -> kopf.ConnectionInfo:
    return kopf.ConnectionInfo(
        server=found.server,
        ca_path=found.ca_file,
        ca_data=found.ca_data,
        insecure=found.insecure,
        certificate_path=found.cert_file,
        certificate_data=found.cert_data,
        private_key_path=found.key_file,
        private_key_data=found.key_data,
        token=found.current_token(),
        default_namespace=found.namespace,
    )


@kopf.on.login()
async def login(**_: Any) -> kopf.AiohttpSession:
    try:
        info = connection_info(load_credentials())
    except CredentialsError as error:
        raise kopf.LoginError(str(error)) from error
    return kopf.AiohttpSession(
        server=info.server,
        default_namespace=info.default_namespace,
        aiohttp_session=session_for(info),
    )
