# Dockyard images, from python:3.11-slim (Debian bookworm):
#   (default)       the operator: `python -m dockyard`, configured by DOCKYARD_* variables
#   token-service   the registry pods' token service alone (`python -m dockyard.auth`): the package
#                   without the operator's dependencies (kopf, kubernetes, httpx, …); chart value
#                   `tokenServiceImage`
# Both run as UID 10001 with a read-only root filesystem: bytecode is compiled at build time, HOME
# and TMPDIR are /tmp (the chart mounts an emptyDir there), state lives in /var/lib/dockyard.
# Build: docker build -t IMAGE . ; docker build --target token-service -t IMAGE-token .
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/dockyard
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator/ operator/
RUN /opt/dockyard/bin/pip install . \
 && /opt/dockyard/bin/pip uninstall -y -q pip setuptools \
 && /opt/dockyard/bin/python -m compileall -q /opt/dockyard

# The token service's dependencies only (PyYAML for `--kubeconfig`; it reads the Token and ScopeMap
# models without loading the other kinds, so no croniter): the names are pyproject's
# (tests/unit/test_container_images.py checks them against pyproject and against what dockyard.auth imports).
FROM python:3.11-slim AS token-build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/dockyard
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator/ operator/
RUN /opt/dockyard/bin/pip install --no-deps . \
 && /opt/dockyard/bin/pip install aiohttp PyJWT cryptography pydantic PyYAML \
 && /opt/dockyard/bin/pip uninstall -y -q pip setuptools \
 && /opt/dockyard/bin/python -m compileall -q /opt/dockyard

# The runtime stages repeat their few lines instead of sharing a base stage: the real node's image
# builder (hack/localcluster/realnode/images.py) reads the operator's settings from the last stage.
FROM python:3.11-slim AS token-service
RUN useradd --system --no-log-init --no-create-home --uid 10001 --shell /usr/sbin/nologin dockyard
COPY --from=token-build /opt/dockyard /opt/dockyard
ENV PATH=/opt/dockyard/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/tmp \
    TMPDIR=/tmp
USER 10001:10001
EXPOSE 5001
ENTRYPOINT ["python", "-m", "dockyard.auth"]

# The operator (the default target).
FROM python:3.11-slim AS operator
# A numeric UID lets the pod's `runAsNonRoot: true` be verified without reading /etc/passwd.
RUN useradd --system --no-log-init --no-create-home --uid 10001 --shell /usr/sbin/nologin dockyard \
 && mkdir -p /var/lib/dockyard && chown 10001:10001 /var/lib/dockyard
COPY --from=build /opt/dockyard /opt/dockyard
ENV PATH=/opt/dockyard/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/tmp \
    TMPDIR=/tmp \
    DOCKYARD_LOG_FORMAT=json
# The webhook delivery queue; mount a PersistentVolume here so accepted events survive the pod.
VOLUME /var/lib/dockyard
USER 10001:10001
# 8080: liveness probe (/healthz); 9090: Prometheus metrics; 8090: the registries' event intake.
EXPOSE 8080 9090 8090
ENTRYPOINT ["python", "-m", "dockyard"]
