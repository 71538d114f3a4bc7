"""`ReceiverTransport` (httpcore's pool on asyncio sockets) against real servers on 127.0.0.1:
keep-alive, connections the server closed or wrote to while idle, timeouts, TLS, flow control."""

import asyncio
import ipaddress
import re
import ssl
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from dockyard.webhooks.transport import ReceiverTransport

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = re.search(rb"(?i)content-length: *(\d+)", head)
    return await reader.readexactly(int(length.group(1)) if length else 0)


class Server:
    def __init__(self, handler: Handler, tls: ssl.SSLContext | None = None) -> None:
        self.handler, self.tls = handler, tls
        self.connections = 0
        self.port = 0
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> "Server":
        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.connections += 1
            try:
                await self.handler(reader, writer)
            except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
                pass
            finally:
                writer.close()

        self.server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=self.tls)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self.server is not None
        self.server.close()

    def url(self, scheme: str = "http") -> str:
        return f"{scheme}://127.0.0.1:{self.port}/hook"


async def keep_alive(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while True:
        await read_request(reader)
        writer.write(OK)
        await writer.drain()


def transport(max_connections: int = 4, context: ssl.SSLContext | None = None) -> ReceiverTransport:
    return ReceiverTransport(context or ssl.create_default_context(), max_connections, keepalive_expiry=5.0)


async def post(
    client: ReceiverTransport, url: str, body: bytes = b"{}", timeout: float = 5.0, limit: int | None = None
) -> tuple[int, bytes]:
    request = httpx.Request("POST", url, content=body, extensions={"timeout": httpx.Timeout(timeout).as_dict()})
    response = await client.handle_async_request(request)
    data = b""
    try:
        assert isinstance(response.stream, httpx.AsyncByteStream)
        async for chunk in response.stream:
            data += chunk
            if limit is not None and len(data) >= limit:
                break
    finally:
        await response.aclose()
    return response.status_code, data


def test_connections_are_kept_alive_and_reused() -> None:
    async def main() -> None:
        async with Server(keep_alive) as server:
            client = transport()
            try:
                for _ in range(20):
                    assert await post(client, server.url()) == (200, b"ok")
                await asyncio.gather(*(post(client, server.url()) for _ in range(10)))
            finally:
                await client.aclose()
            assert server.connections <= 4

    asyncio.run(main())


def test_at_most_max_connections_and_the_rest_wait_their_turn() -> None:
    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await read_request(reader)
            await asyncio.sleep(0.02)
            writer.write(OK)
            await writer.drain()

    async def main() -> None:
        async with Server(slow) as server:
            client = transport(max_connections=2)
            try:
                results = await asyncio.gather(*(post(client, server.url()) for _ in range(10)))
            finally:
                await client.aclose()
            assert results == [(200, b"ok")] * 10
            assert server.connections == 2

    asyncio.run(main())


@pytest.mark.parametrize(
    "after_answer",
    [b"", b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"],
    ids=["closed", "408-then-closed"],
)
def test_a_connection_the_server_closed_or_wrote_to_while_idle_is_not_reused(after_answer: bytes) -> None:
    closed = asyncio.Event()

    async def once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(OK)  # keep-alive as far as the client knows
        await writer.drain()
        await asyncio.sleep(0.01)
        writer.write(after_answer)
        writer.close()
        await writer.wait_closed()
        closed.set()

    async def main() -> None:
        async with Server(once) as server:
            client = transport()
            try:
                for _ in range(3):
                    assert await post(client, server.url()) == (200, b"ok")
                    await asyncio.wait_for(closed.wait(), 10)
                    closed.clear()
                    for _ in range(3):  # loop turns for the close (and stray answer) to reach the client
                        await asyncio.sleep(0.01)
            finally:
                await client.aclose()
            assert server.connections == 3

    asyncio.run(main())


def test_no_answer_is_a_read_timeout() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await asyncio.sleep(10)

    async def main() -> None:
        async with Server(silent) as server:
            client = transport()
            try:
                with pytest.raises(httpx.ReadTimeout):
                    await post(client, server.url(), timeout=0.2)
            finally:
                await client.aclose()

    asyncio.run(main())


def test_a_refused_connection_is_a_connect_error() -> None:
    async def main() -> None:
        async with Server(keep_alive) as server:
            url = server.url()
        client = transport()
        try:
            with pytest.raises(httpx.ConnectError):
                await post(client, url)
        finally:
            await client.aclose()

    asyncio.run(main())


def test_a_connection_closed_mid_answer_is_a_protocol_error() -> None:
    async def cut(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial")
        await writer.drain()

    async def main() -> None:
        async with Server(cut) as server:
            client = transport()
            try:
                with pytest.raises(httpx.RemoteProtocolError):
                    await post(client, server.url())
            finally:
                await client.aclose()

    asyncio.run(main())


def test_large_bodies_both_ways_go_through_flow_control() -> None:
    big = bytes(range(256)) * 4096 * 4  # 4 MiB

    async def echo_slowly(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))  # type: ignore[union-attr]
            body = b""
            while len(body) < length:
                await asyncio.sleep(0.001)  # a slow reader: the client's writes must wait for room
                body += await reader.read(min(65536, length - len(body)))
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
            await writer.drain()

    async def main() -> None:
        async with Server(echo_slowly) as server:
            client = transport()
            try:
                status, echoed = await post(client, server.url(), body=big, timeout=30)
                assert (status, echoed == big) == (200, True)
                assert await post(client, server.url()) == (200, b"{}")
                partial = await post(client, server.url(), body=big, timeout=30, limit=64 * 1024)
                assert partial[0] == 200 and 64 * 1024 <= len(partial[1]) < len(big)
            finally:
                await client.aclose()

    asyncio.run(main())


def tls_contexts(tmp_path: Path, hosts: list[str]) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server, client) contexts: a CA the client trusts, and a certificate it issued for `hosts`."""
    now = datetime.now(UTC)

    def issue(
        subject: str, key: ec.EllipticCurvePrivateKey, signer: ec.EllipticCurvePrivateKey, ca: bool
    ) -> x509.Certificate:
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
        builder = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test CA")]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            sans: list[x509.GeneralName] = []
            for host in hosts:
                try:
                    sans.append(x509.IPAddress(ipaddress.ip_address(host)))
                except ValueError:
                    sans.append(x509.DNSName(host))
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        return builder.sign(signer, hashes.SHA256())

    ca_key, leaf_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_cert = issue("test CA", ca_key, ca_key, ca=True)
    leaf_cert = issue(hosts[0], leaf_key, ca_key, ca=False)
    (tmp_path / "cert.pem").write_bytes(leaf_cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(
        leaf_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    client = ssl.create_default_context(cadata=ca_cert.public_bytes(serialization.Encoding.PEM).decode())
    return server, client


def test_tls_is_verified_and_kept_alive(tmp_path: Path) -> None:
    server_context, client_context = tls_contexts(tmp_path, ["127.0.0.1"])

    async def main() -> None:
        async with Server(keep_alive, tls=server_context) as server:
            client = transport(context=client_context)
            try:
                for _ in range(5):
                    assert await post(client, server.url("https")) == (200, b"ok")
            finally:
                await client.aclose()
            assert server.connections == 1
            untrusted = transport(context=ssl.create_default_context())
            try:
                with pytest.raises(httpx.ConnectError, match="certificate verify failed"):
                    await post(untrusted, server.url("https"))
            finally:
                await untrusted.aclose()

    asyncio.run(main())


def test_tls_refuses_a_certificate_for_another_name(tmp_path: Path) -> None:
    server_context, client_context = tls_contexts(tmp_path, ["hooks.example.com"])

    async def main() -> None:
        async with Server(keep_alive, tls=server_context) as server:
            client = transport(context=client_context)
            try:
                with pytest.raises(httpx.ConnectError):
                    await post(client, server.url("https"))
            finally:
                await client.aclose()

    asyncio.run(main())
