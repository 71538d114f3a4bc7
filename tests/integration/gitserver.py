"""A real git server for tests: bare repositories served over smart HTTP by git's own `git
http-backend` (CGI), behind a small threaded HTTP server, optionally with HTTP basic auth.

    with GitServer(tmp_path, username="bot", password="s3cret") as server:
        first = server.make_repo("app", {"Dockerfile": "FROM scratch\\n"})
        server.tag("app", "v1", message="release v1")      # annotated; without message: lightweight
        second = server.commit("app", {"README": "hi\\n"})
        server.url("app")        # http://127.0.0.1:<port>/app.git, for this process
        server.pod_url("app")    # http://<host's primary IPv4>:<port>/app.git, for pods on a real node

The server binds 0.0.0.0 so pods can clone from it; `host_address()` is the host's primary
non-loopback IPv4 (the real node's bridge gateway reaches the host too). `fetch_by_id=True`
advertises `allow-reachable-sha1-in-want` (clients may fetch any reachable commit by id, as on GitHub). Commits are written with
git's plumbing into the bare repository (no work tree), with a fixed author, so they are reproducible
except for their timestamps. Requests are recorded in `requests` as (method, path, user) for tests
that check what a client asked. Needs `git` (Debian: `apt-get install -y git`).
"""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType

IDENTITY = {
    "GIT_AUTHOR_NAME": "Dockyard Tests",
    "GIT_AUTHOR_EMAIL": "tests@dockyard.dev",
    "GIT_COMMITTER_NAME": "Dockyard Tests",
    "GIT_COMMITTER_EMAIL": "tests@dockyard.dev",
}


def git_binary() -> str:
    found = shutil.which("git")
    if found is None:
        raise RuntimeError("git is not installed (Debian: apt-get install -y git)")
    return found


def http_backend() -> str:
    """Path of `git http-backend` (under `git --exec-path`)."""
    exec_path = subprocess.run([git_binary(), "--exec-path"], capture_output=True, text=True, check=True).stdout
    backend = Path(exec_path.strip()) / "git-http-backend"
    if not backend.exists():
        raise RuntimeError(f"{backend} is missing: install Debian's git package")
    return str(backend)


def host_address() -> str:
    """The host's primary non-loopback IPv4: the source address of its default route (a UDP
    connect sends nothing), else the first non-loopback address of the host name."""
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("192.0.2.1", 9))  # TEST-NET-1: only the route is looked up
        address = str(probe.getsockname()[0])
        if not address.startswith("127.") and address != "0.0.0.0":
            return address
    for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET):
        address = str(info[4][0])
        if not address.startswith("127."):
            return address
    raise RuntimeError("the host has no non-loopback IPv4 address")


class GitServer:
    """Bare repositories under a root directory, served over smart HTTP while the context is open."""

    def __init__(
        self,
        root: Path | None = None,
        *,
        username: str | None = None,
        password: str | None = None,
        host: str = "0.0.0.0",
        fetch_by_id: bool = False,
    ) -> None:
        self._temporary = tempfile.TemporaryDirectory(prefix="dockyard-git-") if root is None else None
        self.root = Path(root if root is not None else self._temporary.name)  # type: ignore[union-attr]
        self.username, self.password = username, password
        # uploadpack.allowReachableSHA1InWant: clients may fetch any reachable commit by id (GitHub's
        # behaviour); git's default refuses commits that are not ref tips
        self.fetch_by_id = fetch_by_id
        self.requests: list[tuple[str, str, str | None]] = []
        self._backend = http_backend()
        self._server = ThreadingHTTPServer((host, 0), self._handler())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{self._repo_name(name)}"

    def pod_url(self, name: str) -> str:
        return f"http://{host_address()}:{self.port}/{self._repo_name(name)}"

    def __enter__(self) -> GitServer:
        self._thread = threading.Thread(target=self._server.serve_forever, name="git-http", daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._temporary is not None:
            self._temporary.cleanup()

    # Repositories

    def make_repo(self, name: str, files: dict[str, str], branch: str = "main") -> str:
        """A new bare repository whose HEAD is `branch`, with one commit of `files`; returns it."""
        path = self.root / self._repo_name(name)
        self._git("init", "--quiet", "--bare", f"--initial-branch={branch}", str(path))
        return self.commit(name, files, branch=branch, message="initial commit")

    def commit(
        self, name: str, files: dict[str, str | None], branch: str | None = None, message: str = "change"
    ) -> str:
        """A commit on `branch` (HEAD's branch by default; a new branch starts from HEAD) with
        `files` changed on top of the branch's tree (None deletes a file); returns its SHA."""
        repo = self._repo(name)
        ref = f"refs/heads/{branch}" if branch else self._git("symbolic-ref", "HEAD", repo=repo)
        parent = self._rev(repo, ref) or self._rev(repo, "HEAD")
        with tempfile.TemporaryDirectory(prefix="dockyard-git-index-") as scratch:
            env = {"GIT_INDEX_FILE": str(Path(scratch) / "index")}
            if parent:
                self._git("read-tree", parent, repo=repo, env=env)
            for path, content in files.items():
                if content is None:
                    self._git("update-index", "--force-remove", "--", path, repo=repo, env=env)
                    continue
                blob = self._git("hash-object", "-w", "--stdin", repo=repo, stdin=content)
                self._git("update-index", "--add", "--cacheinfo", f"100644,{blob},{path}", repo=repo, env=env)
            tree = self._git("write-tree", repo=repo, env=env)
        parents = ["-p", parent] if parent else []
        commit = self._git("commit-tree", tree, *parents, "-m", message, repo=repo)
        self._git("update-ref", ref, commit, repo=repo)
        return commit

    def tag(self, name: str, tag: str, target: str = "HEAD", message: str | None = None) -> str:
        """Tag `target`: annotated with `message`, else lightweight; returns the tag ref's object id
        (the tag object for an annotated tag, the commit for a lightweight one)."""
        repo = self._repo(name)
        if message is None:
            self._git("update-ref", f"refs/tags/{tag}", self._rev(repo, target), repo=repo)
        else:
            self._git("tag", "-a", "-m", message, tag, target, repo=repo)
        return self._rev(repo, f"refs/tags/{tag}")

    def head(self, name: str, ref: str = "HEAD") -> str:
        return self._rev(self._repo(name), ref)

    def _repo_name(self, name: str) -> str:
        return name if name.endswith(".git") else f"{name}.git"

    def _repo(self, name: str) -> Path:
        path = self.root / self._repo_name(name)
        if not path.is_dir():
            raise FileNotFoundError(f"no repository {name} under {self.root}")
        return path

    def _rev(self, repo: Path, ref: str) -> str:
        found = subprocess.run(
            [git_binary(), f"--git-dir={repo}", "rev-parse", "--verify", "--quiet", ref],
            capture_output=True,
            text=True,
        )
        return found.stdout.strip() if found.returncode == 0 else ""

    def _git(self, *args: str, repo: Path | None = None, env: dict[str, str] | None = None, stdin: str = "") -> str:
        command = [git_binary(), *([f"--git-dir={repo}"] if repo else []), *args]
        done = subprocess.run(
            command,
            input=stdin,
            capture_output=True,
            text=True,
            env={**os.environ, **IDENTITY, **(env or {})},
        )
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed: {done.stderr.strip()}")
        return done.stdout.strip()

    # HTTP → CGI

    def _authorized(self, header: str | None) -> tuple[bool, str | None]:
        if self.username is None and self.password is None:
            return True, None
        if not header or not header.startswith("Basic "):
            return False, None
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return False, None
        return (user == (self.username or "") and password == (self.password or "")), user

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._cgi()

            def do_POST(self) -> None:
                self._cgi()

            def log_message(self, format: str, *args: object) -> None:  # quiet in test output
                pass

            def _cgi(self) -> None:
                path, _, query = self.path.partition("?")
                ok, user = server._authorized(self.headers.get("Authorization"))
                server.requests.append((self.command, self.path, user))
                if not ok:
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="git"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = self._body()
                env = {
                    "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                    "GIT_PROJECT_ROOT": str(server.root),
                    "GIT_HTTP_EXPORT_ALL": "1",
                    "GATEWAY_INTERFACE": "CGI/1.1",
                    "SERVER_PROTOCOL": "HTTP/1.1",
                    "REQUEST_METHOD": self.command,
                    "PATH_INFO": path,
                    "QUERY_STRING": query,
                    "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                    "CONTENT_LENGTH": str(len(body)),
                    "REMOTE_ADDR": self.client_address[0],
                }
                if user:
                    env["REMOTE_USER"] = user
                if server.fetch_by_id:
                    env |= {
                        "GIT_CONFIG_COUNT": "1",
                        "GIT_CONFIG_KEY_0": "uploadpack.allowReachableSHA1InWant",
                        "GIT_CONFIG_VALUE_0": "true",
                    }
                for header in ("Content-Encoding", "Git-Protocol"):  # gzip'd requests; protocol v2
                    if header in self.headers:
                        env["HTTP_" + header.upper().replace("-", "_")] = self.headers[header]
                done = subprocess.run([server._backend], input=body, capture_output=True, env=env)
                separator = b"\r\n\r\n" if b"\r\n\r\n" in done.stdout else b"\n\n"
                head, _, content = done.stdout.partition(separator)
                status, headers = 200, []
                for line in head.decode("latin-1").splitlines():
                    key, _, value = line.partition(":")
                    if key.lower() == "status":
                        status = int(value.split()[0])
                    elif key:
                        headers.append((key.strip(), value.strip()))
                if done.returncode != 0 and not done.stdout:
                    status, headers, content = 500, [], done.stderr
                self.send_response(status)
                for key, value in headers:
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":  # git's large POSTs
                    chunks = []
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                        if size == 0:
                            self.rfile.readline()
                            return b"".join(chunks)
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        return Handler
