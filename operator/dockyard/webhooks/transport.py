"""The HTTP connections to one webhook receiver: httpcore's connection pool on asyncio's own sockets.

`ReceiverTransport` is an httpx transport like `httpx.AsyncHTTPTransport` (httpcore's HTTP/1.1
connection pool: keep-alive, TLS, timeouts; no proxies, no HTTP/2), with one difference: its network
backend uses asyncio transports directly instead of going through anyio. Under the dispatcher's
load anyio's bookkeeping cost a third of the CPU of each delivery: cancel scopes around every read
and write, the socket registered with and removed from epoll for every read, and, each time the pool
looks for a connection, a getpeername call and a dictionary of socket attributes for every idle
connection to answer "has the server closed it?", which here is a look at what the connection
already received (the peer's EOF or stray bytes, such as a 408 sent before an idle close).

Errors are httpx's: `httpx.ConnectError`, `ReadTimeout`, `RemoteProtocolError` and the like, as
`httpx.AsyncHTTPTransport` raises them.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from typing import Any

import httpcore
import httpx

HIGH_WATER = 256 * 1024
"""Bytes received and not read yet beyond which the socket is not read any further for a while."""

_ERRORS: tuple[tuple[type[Exception], type[httpx.RequestError]], ...] = (
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.ProtocolError, httpx.ProtocolError),
)


@contextlib.contextmanager
def _as_httpx(request: httpx.Request) -> Iterator[None]:
    try:
        yield
    except Exception as error:
        for core, mapped in _ERRORS:
            if isinstance(error, core):
                raise mapped(str(error), request=request) from error
        raise


class ReceiverTransport(httpx.AsyncBaseTransport):
    """Connections to one receiver, kept alive and reused; at most `max_connections` at once (more
    requests wait for one), idle ones closed after `keepalive_expiry` seconds."""

    def __init__(self, ssl_context: ssl.SSLContext, max_connections: int, keepalive_expiry: float) -> None:
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context,
            max_connections=max_connections,
            max_keepalive_connections=max_connections,
            keepalive_expiry=keepalive_expiry,
            http1=True,
            http2=False,
            network_backend=AsyncioBackend(),
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.AsyncByteStream)
        core = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        with _as_httpx(request):
            response = await self._pool.handle_async_request(core)
        assert isinstance(response.stream, AsyncIterable)
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_ResponseStream(response.stream, request),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self._pool.aclose()


class _ResponseStream(httpx.AsyncByteStream):
    def __init__(self, stream: AsyncIterable[bytes], request: httpx.Request) -> None:
        self._stream, self._request = stream, request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _as_httpx(self._request):
            async for part in self._stream:
                yield part

    async def aclose(self) -> None:
        close = getattr(self._stream, "aclose", None)
        if close is not None:
            with _as_httpx(self._request):
                await close()


class AsyncioBackend(httpcore.AsyncNetworkBackend):
    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                transport, connection = await loop.create_connection(
                    lambda: _Connection(loop),
                    host,
                    port,
                    local_addr=(local_address, 0) if local_address else None,
                    happy_eyeballs_delay=0.25,
                )
        except TimeoutError as error:
            raise httpcore.ConnectTimeout(f"connecting timed out after {timeout}s") from error
        except OSError as error:
            raise httpcore.ConnectError(str(error) or type(error).__name__) from error
        sock = transport.get_extra_info("socket")
        for option in socket_options or ():
            sock.setsockopt(*option)
        return _Stream(connection)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class _Stream(httpcore.AsyncNetworkStream):
    def __init__(self, connection: _Connection) -> None:
        self._connection = connection

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        try:
            async with asyncio.timeout(timeout):
                return await self._connection.read(max_bytes)
        except TimeoutError as error:
            raise httpcore.ReadTimeout(f"no answer within {timeout}s") from error
        except OSError as error:
            raise httpcore.ReadError(str(error) or type(error).__name__) from error

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        try:
            async with asyncio.timeout(timeout):
                await self._connection.write(buffer)
        except TimeoutError as error:
            raise httpcore.WriteTimeout(f"the request could not be sent within {timeout}s") from error
        except OSError as error:
            raise httpcore.WriteError(str(error) or type(error).__name__) from error

    async def aclose(self) -> None:
        self._connection.close()

    async def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.AsyncNetworkStream:
        connection = self._connection
        assert connection.transport is not None
        try:
            async with asyncio.timeout(timeout):
                transport = await asyncio.get_running_loop().start_tls(
                    connection.transport, connection, ssl_context, server_hostname=server_hostname
                )
        except TimeoutError as error:
            connection.close()
            raise httpcore.ConnectTimeout(f"the TLS handshake timed out after {timeout}s") from error
        except OSError as error:  # ssl.SSLError too: an unknown issuer, a name that does not match…
            connection.close()
            raise httpcore.ConnectError(str(error) or type(error).__name__) from error
        if transport is None:
            raise httpcore.ConnectError("the connection closed during the TLS handshake")
        connection.transport = transport
        return self

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":
            # Asked of idle connections: anything received (EOF, stray bytes) means do not reuse.
            return self._connection.received_anything()
        transport = self._connection.transport
        names = {"ssl_object": "ssl_object", "client_addr": "sockname", "server_addr": "peername", "socket": "socket"}
        return None if transport is None or info not in names else transport.get_extra_info(names[info])


class _Connection(asyncio.Protocol):
    """One connection's bytes received and not read yet, and whether the peer closed it."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._eof = False
        self._error: Exception | None = None
        self._reading_paused = False
        self._data: asyncio.Future[None] | None = None
        self._writable: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        self._notify_reader()
        if len(self._buffer) > HIGH_WATER and not self._reading_paused and self.transport is not None:
            self._reading_paused = True
            self.transport.pause_reading()

    def eof_received(self) -> bool:
        self._eof = True
        self._notify_reader()
        return False  # the transport closes itself

    def connection_lost(self, exc: Exception | None) -> None:
        self._eof = True
        if exc is not None:
            self._error = exc
        self._notify_reader()
        self.resume_writing()  # a writer waiting for room finds the connection closed

    def pause_writing(self) -> None:
        if self._writable is None or self._writable.done():
            self._writable = self._loop.create_future()

    def resume_writing(self) -> None:
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)

    def _notify_reader(self) -> None:
        if self._data is not None and not self._data.done():
            self._data.set_result(None)

    def received_anything(self) -> bool:
        closing = self.transport is None or self.transport.is_closing()
        return bool(self._buffer) or self._eof or self._error is not None or closing

    async def read(self, max_bytes: int) -> bytes:
        while not self._buffer and not self._eof:
            self._data = self._loop.create_future()
            try:
                await self._data
            finally:
                self._data = None
        if self._buffer:
            data = bytes(self._buffer[:max_bytes])
            del self._buffer[:max_bytes]
            if self._reading_paused and len(self._buffer) <= HIGH_WATER // 2 and self.transport is not None:
                self._reading_paused = False
                self.transport.resume_reading()
            return data
        if self._error is not None:
            raise self._error
        return b""  # the peer closed the connection

    async def write(self, data: bytes) -> None:
        self._check_open()
        assert self.transport is not None
        self.transport.write(data)
        while self._writable is not None and not self._writable.done():
            await asyncio.shield(self._writable)  # (a timeout cancels the wait, not the flow control)
            self._check_open()

    def _check_open(self) -> None:
        if self._error is not None:
            raise self._error
        if self._eof or self.transport is None or self.transport.is_closing():
            raise ConnectionResetError("the connection is closed")

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
