"""Container images for the real node, assembled without Docker or a registry.

Each image is an OCI archive (`oci-archive` tarball: oci-layout, index.json, blobs) written here
from local files, named by the `io.containerd.image.name` annotation so that `ctr images import`
tags it. Entries are sorted, owned by 0:0 (unless a rootfs says otherwise) and dated
SOURCE_DATE_EPOCH (default 0), and gzip carries no timestamp: equal inputs give equal digests.
Archives are cached under ~/.cache/dockyard/node/images/, keyed by a hash of everything that goes
in, so an unchanged image is never assembled twice.

    pause       dockyard.local/pause:<PAUSE_VERSION>            the pod sandbox (containerd sandbox_image)
    busybox     dockyard.local/busybox:<busybox version>        Debian's busybox-static with its applets
    registry    dockyard.local/registry:<DISTRIBUTION_VERSION>  laid out like the registry:3 image
    kaniko      dockyard.local/kaniko-executor:<KANIKO_VERSION> laid out like Kaniko's executor image
    operator    dockyard.local/dockyard:dev-<hash>              the project's Dockerfile (see operator_image)
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from ..errors import LocalClusterError

PREFIX = "dockyard.local"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
FORMAT_VERSION = "1"  # bump when the archive layout written here changes
PASSWD = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
GROUP = "root:x:0:\nnogroup:x:65534:\n"
NSSWITCH = "passwd: files\ngroup: files\nhosts: files dns\nnetworks: files\nprotocols: files\nservices: files\n"
REGISTRY_CONFIG = """version: 0.1
log:
  fields:
    service: registry
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: /var/lib/registry
http:
  addr: :5000
  headers:
    X-Content-Type-Options: [nosniff]
health:
  storagedriver:
    enabled: true
    interval: 10s
    threshold: 3
"""


def _mtime() -> int:
    return int(os.environ.get("SOURCE_DATE_EPOCH", "0"))


@dataclass
class Layer:
    """Files of one layer, by path inside the image."""

    entries: dict[str, tuple[tarfile.TarInfo, bytes | None]] = field(default_factory=dict)

    def _add(self, path: str, kind: bytes, mode: int, data: bytes | None = None, link: str = "") -> None:
        name = path.strip("/")
        parent = PurePosixPath(name).parent
        for directory in reversed([parent, *parent.parents]):
            if str(directory) not in (".", "") and str(directory) not in self.entries:
                self._add(str(directory), tarfile.DIRTYPE, 0o755)
        info = tarfile.TarInfo(name)
        info.type, info.mode, info.mtime = kind, mode, _mtime()
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        info.linkname = link
        info.size = len(data) if data is not None else 0
        self.entries[name] = (info, data)

    def file(self, path: str, data: bytes, mode: int = 0o644) -> Layer:
        self._add(path, tarfile.REGTYPE, mode, data)
        return self

    def dir(self, path: str, mode: int = 0o755) -> Layer:
        self._add(path, tarfile.DIRTYPE, mode)
        return self

    def symlink(self, path: str, target: str) -> Layer:
        self._add(path, tarfile.SYMTYPE, 0o777, link=target)
        return self

    def busybox(self, binary: Path) -> Layer:
        """A static busybox at /bin/busybox and a link for each of its applets."""
        self.file("/bin/busybox", binary.read_bytes(), 0o755)
        applets = subprocess.run([str(binary), "--list-full"], capture_output=True, text=True, check=True)
        for applet in applets.stdout.split():
            if applet != "bin/busybox":
                self.symlink("/" + applet, "/bin/busybox")
        return self

    def tar(self) -> bytes:
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
            for name in sorted(self.entries):
                info, data = self.entries[name]
                archive.addfile(info, io.BytesIO(data) if data is not None else None)
        return buffer.getvalue()


@dataclass(frozen=True)
class ImageConfig:
    env: Sequence[str] = (f"PATH={DEFAULT_PATH}",)
    entrypoint: Sequence[str] | None = None
    cmd: Sequence[str] | None = None
    workdir: str | None = None
    user: str | None = None
    exposed_ports: Sequence[str] = ()
    volumes: Sequence[str] = ()

    def to_oci(self) -> dict[str, Any]:
        config: dict[str, Any] = {"Env": list(self.env)}
        if self.entrypoint is not None:
            config["Entrypoint"] = list(self.entrypoint)
        if self.cmd is not None:
            config["Cmd"] = list(self.cmd)
        if self.workdir:
            config["WorkingDir"] = self.workdir
        if self.user:
            config["User"] = self.user
        if self.exposed_ports:
            config["ExposedPorts"] = {port if "/" in port else f"{port}/tcp": {} for port in self.exposed_ports}
        if self.volumes:
            config["Volumes"] = {volume: {} for volume in self.volumes}
        return config


def compress(raw: bytes) -> bytes:
    return gzip.compress(raw, compresslevel=6, mtime=0)


@dataclass(frozen=True)
class Blob:
    """A compressed layer and the digest of its uncompressed tar (the config's diff_id)."""

    data: bytes
    diff_id: str

    @classmethod
    def of(cls, raw_tar: bytes) -> Blob:
        return cls(compress(raw_tar), "sha256:" + hashlib.sha256(raw_tar).hexdigest())


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def write_oci_archive(out: Path, name: str, layers: Sequence[Blob], config: ImageConfig) -> str:
    """Write an oci-archive of one image; returns its manifest digest."""
    blobs: dict[str, bytes] = {}
    for layer in layers:
        blobs[_digest(layer.data)] = layer.data
    created = "1970-01-01T00:00:00Z"
    image_config = {
        "architecture": "amd64",
        "os": "linux",
        "created": created,
        "config": config.to_oci(),
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]},
        "history": [{"created": created, "created_by": "hack/localcluster/realnode/images.py"} for _ in layers],
    }
    config_bytes = json.dumps(image_config, sort_keys=True, separators=(",", ":")).encode()
    blobs[_digest(config_bytes)] = config_bytes
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": _digest(config_bytes),
            "size": len(config_bytes),
        },
        "layers": [
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": _digest(layer.data),
                "size": len(layer.data),
            }
            for layer in layers
        ],
    }
    manifest_bytes = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
    manifest_digest = _digest(manifest_bytes)
    blobs[manifest_digest] = manifest_bytes
    tag = name.rsplit(":", 1)[1] if ":" in name.rsplit("/", 1)[-1] else "latest"
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": manifest_digest,
                "size": len(manifest_bytes),
                "platform": {"architecture": "amd64", "os": "linux"},
                "annotations": {"io.containerd.image.name": name, "org.opencontainers.image.ref.name": tag},
            }
        ],
    }
    partial = out.with_name(out.name + ".partial")
    with tarfile.open(partial, "w", format=tarfile.PAX_FORMAT) as archive:

        def put(path: str, data: bytes) -> None:
            info = tarfile.TarInfo(path)
            info.size, info.mtime, info.mode = len(data), _mtime(), 0o644
            archive.addfile(info, io.BytesIO(data))

        put("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        put("index.json", json.dumps(index, sort_keys=True).encode())
        for digest, data in sorted(blobs.items()):
            put("blobs/sha256/" + digest.split(":", 1)[1], data)
    partial.replace(out)
    return manifest_digest


def content_key(*parts: str | bytes | Path) -> str:
    """A hash of strings, bytes and files' contents (a directory: every file under it, by path)."""
    digest = hashlib.sha256(FORMAT_VERSION.encode())
    for part in parts:
        if isinstance(part, Path):
            paths = sorted(p for p in part.rglob("*") if p.is_file()) if part.is_dir() else [part]
            for path in paths:
                if "__pycache__" in path.parts:
                    continue
                digest.update(str(path.relative_to(part) if part.is_dir() else path.name).encode() + b"\0")
                digest.update(hashlib.sha256(path.read_bytes()).digest())
        else:
            digest.update(part if isinstance(part, bytes) else part.encode())
        digest.update(b"\0\0")
    return digest.hexdigest()


@dataclass(frozen=True)
class Image:
    """An assembled image: its name and its cached archive."""

    name: str
    archive: Path


def _cached(images_dir: Path, slug: str, name: str, key: str, build: Any) -> Image:
    archive = images_dir / f"{slug}-{key[:16]}.oci.tar"
    if not archive.exists():
        images_dir.mkdir(parents=True, exist_ok=True)
        layers, config = build()
        write_oci_archive(archive, name, layers, config)
        for stale in images_dir.glob(f"{slug}-*.oci.tar"):
            if stale != archive:
                stale.unlink(missing_ok=True)
    return Image(name, archive)


def busybox_version(busybox: Path) -> str:
    first = subprocess.run([str(busybox)], capture_output=True, text=True).stdout.splitlines()
    match = re.match(r"BusyBox v(\d+\.\d+\.\d+)", first[0] if first else "")
    if not match:
        raise LocalClusterError(f"{busybox} does not say which BusyBox version it is")
    return match.group(1)


def pause_image(images_dir: Path, pause: Path, version: str) -> Image:
    name = f"{PREFIX}/pause:{version}"
    config = ImageConfig(entrypoint=["/pause"], user="65535:65535")

    def build() -> tuple[list[Blob], ImageConfig]:
        return [Blob.of(Layer().file("/pause", pause.read_bytes(), 0o755).tar())], config

    return _cached(images_dir, "pause", name, content_key(name, repr(config), pause), build)


def busybox_image(images_dir: Path, busybox: Path) -> Image:
    name = f"{PREFIX}/busybox:{busybox_version(busybox)}"
    config = ImageConfig(cmd=["sh"])

    def build() -> tuple[list[Blob], ImageConfig]:
        layer = Layer().busybox(busybox).dir("/tmp", 0o1777).dir("/root", 0o700)
        layer.file("/etc/passwd", PASSWD.encode()).file("/etc/group", GROUP.encode())
        return [Blob.of(layer.tar())], config

    return _cached(images_dir, "busybox", name, content_key(name, repr(config), busybox), build)


def registry_image(images_dir: Path, registry: Path, busybox: Path, version: str) -> Image:
    """The registry:3 layout: /bin/registry, /etc/distribution/config.yml, CA bundle; busybox for a
    shell. The image's entrypoint script becomes plain ENTRYPOINT/CMD for its default arguments."""
    name = f"{PREFIX}/registry:{version}"
    config = ImageConfig(entrypoint=["registry"], cmd=["serve", "/etc/distribution/config.yml"], exposed_ports=["5000"])

    def build() -> tuple[list[Blob], ImageConfig]:
        layer = Layer().busybox(busybox).file("/bin/registry", registry.read_bytes(), 0o755)
        layer.file("/etc/ssl/certs/ca-certificates.crt", CA_BUNDLE.read_bytes())
        layer.file("/etc/distribution/config.yml", REGISTRY_CONFIG.encode())
        layer.file("/etc/passwd", PASSWD.encode()).file("/etc/group", GROUP.encode())
        layer.dir("/var/lib/registry").dir("/tmp", 0o1777)
        return [Blob.of(layer.tar())], config

    key = content_key(name, repr(config), REGISTRY_CONFIG, registry, busybox, CA_BUNDLE)
    return _cached(images_dir, "registry", name, key, build)


def kaniko_image(images_dir: Path, executor: Path, version: str) -> Image:
    """Kaniko's executor image layout: /kaniko/executor, /kaniko/ssl/certs, a writable /kaniko,
    DOCKER_CONFIG=/kaniko/.docker/, workdir /workspace."""
    name = f"{PREFIX}/kaniko-executor:{version}"
    config = ImageConfig(
        env=[
            "HOME=/root",
            "USER=root",
            "PATH=/usr/local/bin:/kaniko",
            "SSL_CERT_DIR=/kaniko/ssl/certs",
            "DOCKER_CONFIG=/kaniko/.docker/",
        ],
        entrypoint=["/kaniko/executor"],
        workdir="/workspace",
    )

    def build() -> tuple[list[Blob], ImageConfig]:
        layer = Layer().file("/kaniko/executor", executor.read_bytes(), 0o755)
        layer.file("/kaniko/ssl/certs/ca-certificates.crt", CA_BUNDLE.read_bytes())
        layer.file("/etc/nsswitch.conf", NSSWITCH.encode())
        layer.dir("/kaniko", 0o777).dir("/kaniko/.docker").dir("/workspace").dir("/root", 0o700)
        return [Blob.of(layer.tar())], config

    return _cached(images_dir, "kaniko-executor", name, content_key(name, repr(config), executor, CA_BUNDLE), build)


# ---- the operator image -------------------------------------------------------------------------


@dataclass(frozen=True)
class DockerfileStage:
    """What the last stage of a Dockerfile sets for the image's runtime (RUN steps aside)."""

    base: str
    env: dict[str, str]
    user: str | None
    entrypoint: list[str] | None
    cmd: list[str] | None
    workdir: str | None
    exposed_ports: list[str]
    volumes: list[str]
    run: list[str]


def _instructions(text: str) -> list[tuple[str, str]]:
    logical: list[str] = []
    current = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        logical.append(current + stripped)
        current = ""
    if current:
        logical.append(current)
    result = []
    for instruction in logical:
        keyword, _, rest = instruction.partition(" ")
        result.append((keyword.upper(), rest.strip()))
    return result


def _expand(value: str, env: Mapping[str, str]) -> str:
    """`$VAR` and `${VAR}` from `env` (unset: empty), as Docker expands ENV values."""
    return re.sub(r"\$\{?(\w+)\}?", lambda match: env.get(match.group(1), ""), value)


def _exec_form(value: str) -> list[str]:
    return list(json.loads(value)) if value.startswith("[") else ["/bin/sh", "-c", value]


def parse_dockerfile(text: str, base_env: Mapping[str, str] | None = None) -> DockerfileStage:
    """The last stage's FROM, ENV (with $VAR / ${VAR} expanded), USER, ENTRYPOINT, CMD, WORKDIR,
    EXPOSE, VOLUME and RUN lines."""
    stage: dict[str, Any] = {}
    for keyword, rest in _instructions(text):
        if keyword == "FROM":
            stage = {"base": rest.split()[0], "env": dict(base_env or {}), "expose": [], "volume": [], "run": []}
        elif keyword == "ENV":
            env: dict[str, str] = stage["env"]
            for item in shlex.split(rest):
                key, _, value = item.partition("=")
                env[key] = _expand(value, env)
        elif keyword in ("USER", "WORKDIR"):
            stage[keyword.lower()] = rest
        elif keyword in ("ENTRYPOINT", "CMD"):
            stage[keyword.lower()] = _exec_form(rest)
        elif keyword == "EXPOSE":
            stage["expose"] += rest.split()
        elif keyword == "VOLUME":
            stage["volume"] += _exec_form(rest) if rest.startswith("[") else rest.split()
        elif keyword == "RUN":
            stage["run"].append(rest)
    if not stage:
        raise LocalClusterError("the Dockerfile has no FROM")
    return DockerfileStage(
        base=stage["base"],
        env=stage["env"],
        user=stage.get("user"),
        entrypoint=stage.get("entrypoint"),
        cmd=stage.get("cmd"),
        workdir=stage.get("workdir"),
        exposed_ports=stage["expose"],
        volumes=stage["volume"],
        run=stage["run"],
    )


# The python:3.11-slim image is Debian bookworm with Python 3.11 in /usr/local; bookworm's own
# python3 is 3.11 too. Its environment, as far as the Dockerfile's ENV builds on it:
PYTHON_SLIM_ENV = {"PATH": DEFAULT_PATH, "LANG": "C.UTF-8"}
DEBIAN_SUITE = "bookworm"
DEBIAN_PACKAGES = ("python3", "python3-venv", "ca-certificates")
KEPT_BASE_LAYERS = 3
VENV = "/opt/dockyard"
OPERATOR_UID = 10001
STATE_DIR = "/var/lib/dockyard"
WHEEL_PLATFORMS = ("manylinux_2_36_x86_64", "manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")


def project_dependencies(pyproject: Path) -> list[str]:
    import tomllib

    return list(tomllib.loads(pyproject.read_text())["project"]["dependencies"])


def _run(argv: Sequence[str], what: str, **kwargs: Any) -> None:
    result = subprocess.run(list(argv), capture_output=True, text=True, **kwargs)
    if result.returncode != 0:
        tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-15:])
        raise LocalClusterError(f"{what} failed (exit {result.returncode}):\n{tail}")


def _tar_tree(root: Path, prefix: str = "") -> bytes:
    """A tar of a directory tree in sorted order, dated SOURCE_DATE_EPOCH; owners kept (numeric)."""
    buffer = io.BytesIO()
    mtime = _mtime()

    def normalize(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
        parts = PurePosixPath(info.name).parts
        if (len(parts) >= 2 and parts[0] in ("dev", "proc", "sys")) or "__pycache__" in parts:
            return None
        info.mtime = mtime
        info.uname = info.gname = ""
        return info

    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for entry in sorted(root.iterdir()):
            archive.add(entry, arcname=f"{prefix}{entry.name}", filter=normalize)
    return buffer.getvalue()


def _python_tag(rootfs: Path) -> str:
    result = subprocess.run(
        ["chroot", str(rootfs), "python3", "-c", "import sys; print(f'{sys.version_info[0]}.{sys.version_info[1]}')"],
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip()


def _pip() -> list[str]:
    return [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]


def _wheel_target_args(python: str) -> list[str]:
    args = ["--only-binary=:all:", "--python-version", python, "--implementation", "cp"]
    for platform in WHEEL_PLATFORMS:
        args += ["--platform", platform]
    return args


def _base_layer(cache: Path, key: str, dependencies: Sequence[str], mirror: str, log: Any) -> tuple[Blob, str]:
    """Debian (mmdebstrap) with python3, the venv, the operator user and state dir, and the
    project's dependencies as wheels in the venv: cached as a compressed layer."""
    blob_path = cache / f"operator-base-{key[:16]}.tar.gz"
    meta_path = blob_path.with_suffix(".json")
    if blob_path.exists() and meta_path.exists():
        meta = json.loads(meta_path.read_text())
        return Blob(blob_path.read_bytes(), meta["diff_id"]), meta["python"]
    if os.geteuid() != 0:
        raise LocalClusterError("building the operator image needs root (mmdebstrap makes a Debian root file system)")
    if shutil.which("mmdebstrap") is None:
        raise LocalClusterError("mmdebstrap is missing (hack/build-node.sh installs it)")
    with tempfile.TemporaryDirectory(prefix="dockyard-operator-image-") as temporary:
        rootfs = Path(temporary) / "rootfs"
        log(f"mmdebstrap {DEBIAN_SUITE} ({', '.join(DEBIAN_PACKAGES)}) from {mirror}")
        hooks = [
            f'chroot "$1" python3 -m venv --without-pip {VENV}',
            f'chroot "$1" useradd --system --no-log-init --no-create-home --uid {OPERATOR_UID} '
            "--shell /usr/sbin/nologin dockyard",
            f'mkdir -p "$1{STATE_DIR}" && chown {OPERATOR_UID}:{OPERATOR_UID} "$1{STATE_DIR}"',
            'rm -rf "$1"/usr/share/doc/* "$1"/usr/share/man/* "$1"/usr/share/locale/* "$1"/var/cache/apt/* '
            '"$1"/var/lib/apt/lists/* "$1"/var/log/*',
        ]
        argv = ["mmdebstrap", "--quiet", "--variant=minbase", f"--include={','.join(DEBIAN_PACKAGES)}"]
        argv += [f"--customize-hook={hook}" for hook in hooks]
        argv += [DEBIAN_SUITE, str(rootfs), mirror]
        _run(argv, "mmdebstrap", env={**os.environ, "SOURCE_DATE_EPOCH": str(_mtime())}, timeout=1200)
        python = _python_tag(rootfs)
        site = rootfs / VENV.lstrip("/") / "lib" / f"python{python}" / "site-packages"
        log(f"pip: {len(dependencies)} dependencies as cp{python.replace('.', '')} wheels")
        argv = [*_pip(), "install", "--quiet", "--no-compile", "--no-warn-conflicts", "--target", str(site)]
        _run([*argv, *_wheel_target_args(python), *dependencies], "pip install (dependencies)", timeout=1200)
        shutil.rmtree(site / "bin", ignore_errors=True)
        raw = _tar_tree(rootfs)
    blob = Blob.of(raw)
    cache.mkdir(parents=True, exist_ok=True)
    partial = blob_path.with_name(blob_path.name + ".partial")
    partial.write_bytes(blob.data)
    partial.replace(blob_path)
    meta_path.write_text(json.dumps({"diff_id": blob.diff_id, "python": python}))
    # keep a few: branches with other dependency lists share this cache (and would rebuild it in turn)
    layers = sorted(cache.glob("operator-base-*.tar.gz"), key=lambda path: path.stat().st_mtime, reverse=True)
    for stale in layers[KEPT_BASE_LAYERS:]:
        stale.unlink(missing_ok=True)
        stale.with_suffix(".json").unlink(missing_ok=True)
    return blob, python


def _project_layer(project: Path, python: str) -> Blob:
    """The project itself, `pip install --no-deps` of its source (as the Dockerfile's `pip install .`)."""
    with tempfile.TemporaryDirectory(prefix="dockyard-operator-src-") as temporary:
        source = Path(temporary) / "src"
        source.mkdir()
        for name in ("pyproject.toml", "README.md"):
            shutil.copy2(project / name, source / name)
        shutil.copytree(project / "operator", source / "operator", ignore=shutil.ignore_patterns("__pycache__"))
        target = Path(temporary) / "target"
        argv = [*_pip(), "install", "--quiet", "--no-deps", "--no-compile", "--target", str(target), str(source)]
        _run(argv, "pip install (the project)", timeout=600)
        root = Path(temporary) / "layer"
        site = root / VENV.lstrip("/") / "lib" / f"python{python}" / "site-packages"
        site.parent.mkdir(parents=True)
        scripts = target / "bin"
        bin_dir = root / VENV.lstrip("/") / "bin"
        if scripts.is_dir():
            bin_dir.mkdir(parents=True)
            for script in scripts.iterdir():
                lines = script.read_text().splitlines(keepends=True)
                if lines and lines[0].startswith("#!"):
                    lines[0] = f"#!{VENV}/bin/python\n"
                (bin_dir / script.name).write_text("".join(lines))
                (bin_dir / script.name).chmod(0o755)
            shutil.rmtree(scripts)
        shutil.move(str(target), str(site))
        return Blob.of(_tar_tree(root))


def operator_image(images_dir: Path, project: Path, mirror: str, log: Any = None) -> Image:
    """The operator image the project's Dockerfile describes (python 3.11 on Debian bookworm, a
    venv at /opt/dockyard, uid 10001, `python -m dockyard`), without Docker: a Debian layer from
    mmdebstrap with the dependencies as wheels (cached by the dependency list), and a layer with
    the project (`pip install --no-deps`), tagged by a hash of both. ENV, USER, ENTRYPOINT, EXPOSE
    and VOLUME come from the Dockerfile's last stage."""
    log = log or (lambda message: print(f"[operator image] {message}", file=sys.stderr, flush=True))
    stage = parse_dockerfile((project / "Dockerfile").read_text(), PYTHON_SLIM_ENV)
    dependencies = project_dependencies(project / "pyproject.toml")
    base_key = content_key(DEBIAN_SUITE, mirror, *DEBIAN_PACKAGES, *dependencies, *WHEEL_PLATFORMS, VENV, STATE_DIR)
    project_key = content_key(project / "pyproject.toml", project / "README.md", project / "operator")
    config = ImageConfig(
        env=[f"{k}={v}" for k, v in stage.env.items()],
        entrypoint=stage.entrypoint,
        cmd=stage.cmd,
        workdir=stage.workdir,
        user=stage.user,
        exposed_ports=stage.exposed_ports,
        volumes=stage.volumes,
    )
    key = content_key(base_key, project_key, repr(config))
    name = f"{PREFIX}/dockyard:dev-{key[:12]}"

    def build() -> tuple[list[Blob], ImageConfig]:
        base, python = _base_layer(images_dir / "layers", base_key, dependencies, mirror, log)
        log("the project's layer (pip install --no-deps)")
        return [base, _project_layer(project, python)], config

    return _cached(images_dir, "dockyard", name, key, build)


def all_images(
    images_dir: Path, binaries: Mapping[str, Path], versions: Mapping[str, str], project: Path, mirror: str
) -> dict[str, Image]:
    """Every image the real node imports, by role."""
    busybox = binaries["busybox"]
    return {
        "pause": pause_image(images_dir, binaries["pause"], versions["PAUSE_VERSION"]),
        "busybox": busybox_image(images_dir, busybox),
        "registry": registry_image(images_dir, binaries["registry"], busybox, versions["DISTRIBUTION_VERSION"]),
        "kaniko": kaniko_image(images_dir, binaries["kaniko-executor"], versions["KANIKO_VERSION"]),
        "operator": operator_image(images_dir, project, mirror),
    }


def names(images: Iterable[Image]) -> list[str]:
    return [image.name for image in images]
