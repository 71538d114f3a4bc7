"""`make bench`: token issuance (logins) with 10,000 Tokens and 1,000 ScopeMaps, beside the same
service knowing only the admin user.

Set up, per scenario: the real token service (`python -m dockyard.auth`, a process of its own, plain
HTTP on a free local port) with a policy holding the admin user. In the `tokens` scenario it also
serves `--tokens` Tokens spread over `--scope-maps` ScopeMaps (each `repositories/team<i>/*` with
content read and write); they reach it as in a pod whose API server is unreachable: from its local
snapshot file, written here, with a kubeconfig pointing at a closed port (so the watch keeps
retrying in the background, as it would during an outage). The Tokens' passwords are random like the
operator's (32 bytes), their verifiers SHA-256.

Load: `--clients` concurrent keep-alive clients send `GET /token?service=…&scope=repository:team<i>/
app:pull,push` with Basic credentials, each login a different Token chosen at random (the admin in
the `admin` scenario), `--logins` in all after `--warmup` unmeasured ones. Latency = client-side
time to the whole response; logins/s = measured logins / wall time. Every answer is checked: 200 and
a token granting exactly the scope map's actions (a wrong grant stops the benchmark).

Printed: logins/s, p50 and p99 per scenario, and the machine's load average (other processes on the
machine move the figures).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import os
import random
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import jwt
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "operator"))

from dockyard.auth.directory import AccessDirectory  # noqa: E402
from dockyard.auth.grants import Scope, allowed_actions  # noqa: E402
from dockyard.auth.policy import AuthPolicy, Credential, password_digest  # noqa: E402
from dockyard.core.pki import issue_signing_key  # noqa: E402
from localcluster.ports import free_port  # noqa: E402

SERVICE = "bench.registry:5000"


def write_files(work: Path, tokens: int, scope_maps: int) -> dict[str, str]:
    """Policy, signing key, snapshot; the Tokens' passwords by name."""
    key = issue_signing_key("bench signer")
    (work / "key.pem").write_bytes(key.key_pem)
    (work / "cert.pem").write_bytes(key.cert_pem)
    admin = Credential(
        username="bench",
        password_digests=(password_digest("admin-password"),),
        grants=({"repositories": "*", "actions": ("pull", "push", "delete"), "catalog": True},),  # type: ignore[arg-type]
    )
    (work / "policy.json").write_text(AuthPolicy(service=SERVICE, issuer="dockyard", users=(admin,)).model_dump_json())
    passwords = {f"token-{i}": secrets.token_urlsafe(32) for i in range(tokens)}
    snapshot = {
        "registry": "bench",
        "tokens": [
            {
                "name": name,
                "scopeMap": f"map-{i % scope_maps}",
                "enabled": True,
                "passwords": [{"name": "password1", "verifier": password_digest(pw), "expiry": None}],
            }
            for i, (name, pw) in enumerate(passwords.items())
        ],
        "scopeMaps": [
            {
                "name": f"map-{m}",
                "actions": [f"repositories/team{m}/*/content/read", f"repositories/team{m}/*/content/write"],
                "usable": True,
            }
            for m in range(scope_maps)
        ],
    }
    (work / "snapshot.json").write_text(json.dumps(snapshot))
    (work / "unreachable.kubeconfig").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": f"https://127.0.0.1:{free_port()}"}}],
                "users": [{"name": "u", "user": {"token": "none"}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    return passwords


def start_service(work: Path, with_tokens: bool) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    args = [
        sys.executable, "-m", "dockyard.auth",
        "--policy", str(work / "policy.json"),
        "--signing-key", str(work / "key.pem"),
        "--signing-cert", str(work / "cert.pem"),
        "--host", "127.0.0.1", "--port", str(port),
    ]  # fmt: skip
    if with_tokens:
        args += [
            "--registry", "bench", "--namespace", "bench",
            "--kubeconfig", str(work / "unreachable.kubeconfig"),
            "--snapshot", str(work / "snapshot.json"),
        ]  # fmt: skip
    log = open(work / f"service-{port}.log", "ab")
    env = os.environ | {"PYTHONPATH": str(ROOT / "operator")}
    process = subprocess.Popen(args, stdout=log, stderr=log, env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process, port
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"the token service did not start; see {work}")


async def load(port: int, logins: list[tuple[str, str, int]], clients: int) -> list[float]:
    """Latencies (seconds) of `logins` (user, password, team index) over `clients` connections."""
    latencies: list[float] = []
    queue: asyncio.Queue[tuple[str, str, int]] = asyncio.Queue()
    for login in logins:
        queue.put_nowait(login)
    url = f"http://127.0.0.1:{port}/token"

    async def client() -> None:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)) as session:
            while not queue.empty():
                user, password, team = queue.get_nowait()
                auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
                scope = f"repository:team{team}/app:pull,push"
                started = time.perf_counter()
                async with session.get(
                    url, params={"service": SERVICE, "scope": scope}, headers={"Authorization": auth}
                ) as response:
                    body = await response.read()
                latencies.append(time.perf_counter() - started)
                if response.status != 200:
                    raise RuntimeError(f"login of {user} answered {response.status}: {body[:200]!r}")
                access = jwt.decode(json.loads(body)["token"], options={"verify_signature": False})["access"]
                if access != [{"type": "repository", "name": f"team{team}/app", "actions": ["pull", "push"]}]:
                    raise RuntimeError(f"wrong grant for {user}: {access}")

    await asyncio.gather(*(client() for _ in range(clients)))
    return latencies


def report(name: str, latencies: list[float], wall: float) -> None:
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    print(
        f"{name:>8}: {len(latencies) / wall:8.0f} logins/s   p50 {statistics.median(ordered) * 1000:6.2f} ms"
        f"   p99 {p99 * 1000:6.2f} ms   ({len(latencies)} logins; load average {os.getloadavg()[0]:.2f})",
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=10_000)
    parser.add_argument("--scope-maps", type=int, default=1_000)
    parser.add_argument("--logins", type=int, default=5_000)
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args(argv)
    print(f"token issuance: {args.tokens} tokens, {args.scope_maps} scope maps, {args.clients} clients", flush=True)
    rng = random.Random(7)
    with tempfile.TemporaryDirectory(prefix="dockyard-bench-tokens-") as temporary:
        work = Path(temporary)
        passwords = write_files(work, args.tokens, args.scope_maps)
        names = list(passwords)
        scenarios = {
            "admin": (False, lambda: ("bench", "admin-password", rng.randrange(args.scope_maps))),
            "tokens": (
                True,
                lambda: (
                    (name := rng.choice(names)),
                    passwords[name],
                    int(name.split("-")[1]) % args.scope_maps,
                ),
            ),
        }
        for name, (with_tokens, pick) in scenarios.items():
            process, port = start_service(work, with_tokens)
            try:
                asyncio.run(load(port, [pick() for _ in range(args.warmup)], args.clients))
                logins = [pick() for _ in range(args.logins)]
                started = time.perf_counter()
                latencies = asyncio.run(load(port, logins, args.clients))
                report(name, latencies, time.perf_counter() - started)
                rss = next(
                    (line.split()[1] for line in Path(f"/proc/{process.pid}/status").read_text().splitlines()
                     if line.startswith("VmRSS:")),
                    "?",
                )  # fmt: skip
                print(
                    f"{'':>8}  token service resident memory: {int(rss) // 1024 if rss != '?' else '?'} MiB", flush=True
                )
            finally:
                process.terminate()
                process.wait(timeout=10)
        # The directory's part alone, in-process: password check, scope map, grant evaluation.
        directory = AccessDirectory("bench")
        directory.load_snapshot(json.loads((work / "snapshot.json").read_text()))
        sample = [rng.choice(names) for _ in range(20_000)]
        started = time.perf_counter()
        for user in sample:
            login = directory.login(user, passwords[user], time.time())
            team = int(user.split("-")[1]) % args.scope_maps
            assert login is not None and allowed_actions(
                login.grants, Scope("repository", f"team{team}/app", ("pull",))
            )
        per_login = (time.perf_counter() - started) / len(sample)
        print(f"directory: {per_login * 1e6:.1f} µs per login decision in-process ({args.tokens} tokens)", flush=True)
        digest = hashlib.sha256((work / "snapshot.json").read_bytes()).hexdigest()[:12]
        print(f"snapshot {digest}: {(work / 'snapshot.json').stat().st_size // 1024} KiB", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
