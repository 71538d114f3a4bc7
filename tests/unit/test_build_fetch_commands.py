"""The fetch init container's command line as the Job writes it, and its archive mode (an http
server on loopback serves the tar.gz)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from dockyard.builds import fetch
from dockyard.builds.context import pack_context
from dockyard.builds.manifests.job import (
    FETCH_CONTAINER,
    ArchiveContext,
    GitContext,
    KanikoBuild,
    OciContext,
    build_job,
)
from dockyard.core.meta import Owner

OWNER = Owner("dockyard.dev/v1alpha1", "BuildRun", "app-7", "team", "uid-7")


def _command(**changes: object) -> list[str]:
    build = KanikoBuild(
        **{  # type: ignore[arg-type]
            "owner": OWNER,
            "registry_host": "hub.team.svc:5000",
            "kaniko_image": "kaniko",
            "fetcher_image": "dockyard",
            "context": "dir:///workspace",
            "dockerfile": "Dockerfile",
            "destinations": (),
            "timeout_seconds": 600,
            "resources": {},
            **changes,
        }
    )
    (init,) = build_job(build)["spec"]["template"]["spec"]["initContainers"]
    assert init["name"] == FETCH_CONTAINER
    assert init["command"][:3] == ["python", "-m", "dockyard.builds.fetch"]
    return list(init["command"][3:])


@pytest.mark.parametrize(
    "changes",
    [
        {"fetch": OciContext("dockyard/sources", "sha256:" + "a" * 64), "ca_config_map": "hub-ca"},
        {"fetch": OciContext("dockyard/sources", "sha256:" + "a" * 64), "insecure_registry": True},
        {"fetch": ArchiveContext("https://files.example.com/ctx.tar.gz?sig=x"), "ca_config_map": "hub-ca"},
        {"fetch": ArchiveContext("http://files.example.com/ctx.tar.gz")},
        {"fetch": GitContext("https://git.example/app.git", "c" * 40, "refs/heads/main", None, "creds")},
        {
            "fetch": GitContext("http://git.example/app.git", "c" * 40, "HEAD", "services/api"),
            "report_base": True,
            "dockerfile": "docker/Dockerfile",
            "insecure_registry": True,
        },
    ],
    ids=["uploaded", "uploaded-plain-http", "archive-https", "archive-http", "git", "git-sub-path-base"],
)
def test_every_command_the_job_writes_is_one_the_fetcher_accepts(changes: dict[str, object]) -> None:
    args = fetch._parser().parse_args(_command(**changes))
    assert args.into == Path("/workspace")
    assert bool(args.url) == isinstance(changes["fetch"], ArchiveContext)
    assert args.plain_http == bool(changes.get("insecure_registry"))
    git = changes["fetch"]
    if isinstance(git, GitContext):
        assert (args.git_url, args.git_commit, args.git_ref, args.git_sub_path) == (
            git.url,
            git.commit,
            git.ref,
            git.sub_path,
        )
        assert not args.repository and not args.digest  # the registry only for the base report
        assert args.dockerfile == ("docker/Dockerfile" if changes.get("report_base") else None)


@contextlib.contextmanager
def _serving(files: dict[str, bytes]) -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/moved":
                self.send_response(302)
                self.send_header("Location", "/ctx.tar.gz?sig=abc")
                self.end_headers()
                return
            body = files.get(path)
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_an_archive_url_is_fetched_and_unpacked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "Dockerfile").write_text("FROM scratch\n")
    (source / "app.txt").write_text("hello\n")
    with _serving({"/ctx.tar.gz": pack_context(source)}) as base:
        code = fetch.main([f"--url={base}/moved", f"--into={tmp_path / 'ws'}"])
    assert code == 0
    assert (tmp_path / "ws" / "app.txt").read_text() == "hello\n"
    assert "fetched" in capsys.readouterr().out


def test_a_missing_archive_fails_in_one_line_without_the_query(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "termination-log"
    with _serving({}) as base:
        code = fetch.main(
            [f"--url={base}/gone.tar.gz?sig=secret", f"--into={tmp_path / 'ws'}", f"--termination-log={log}"]
        )
    assert code == 1
    err = capsys.readouterr().err
    assert "404" in err and "secret" not in err and len(err.strip().splitlines()) == 1
    assert log.read_text().strip() == err.strip()


def test_url_and_registry_arguments_exclude_each_other(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        fetch.main(["--url=http://x/c.tar.gz", "--repository=r", f"--into={tmp_path}"])
    with pytest.raises(SystemExit):
        fetch.main(["--git-url=http://x/a.git", "--git-commit=" + "c" * 40, "--url=http://x/c", f"--into={tmp_path}"])
    with pytest.raises(SystemExit):
        fetch.main(["--git-url=http://x/a.git", f"--into={tmp_path}"])  # which commit?
    with pytest.raises(SystemExit):
        fetch.main(["--registry=h:5000", f"--into={tmp_path}"])
