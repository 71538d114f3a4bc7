"""kopf's own connection to the API server, with a bounded pool.

kopf's built-in session opens connections without limit (`TCPConnector(limit=0)`): when a
thousand Registries are created at once, each object's worker patches its annotations at the same
moment, and every one of those requests opens a TLS connection of its own. asyncio gives each TLS
connection a 256 KiB read buffer, so the burst cost about 80 MB at 300 Registries and over 200 MB at
1,000 (the operator's peak RSS), for no gain: the API server answers them no faster. Here the
credentials are kopf's own (`login_via_client`, as its default login), the session is the same
shape, and the pool holds `KOPF_CONNECTIONS` connections; requests beyond that wait for one.
"""

from __future__ import annotations

from typing import Any, Final

import aiohttp
import kopf

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


@kopf.on.login()
async def login(logger: kopf.Logger, settings: kopf.OperatorSettings, **kwargs: Any) -> kopf.AiohttpSession | None:
    info = kopf.login_via_client(logger=logger, settings=settings, **kwargs)
    if info is None:
        return None
    return kopf.AiohttpSession(
        server=info.server,
        default_namespace=info.default_namespace,
        expiration=info.expiration,
        aiohttp_session=session_for(info),
    )
