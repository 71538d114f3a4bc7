# The Dockyard operator: `python -m dockyard`, configured by DOCKYARD_* variables.
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/dockyard
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator/ operator/
RUN /opt/dockyard/bin/pip install .

FROM python:3.11-slim
# A numeric UID lets the pod's `runAsNonRoot: true` be verified without reading /etc/passwd.
RUN useradd --system --no-log-init --no-create-home --uid 10001 --shell /usr/sbin/nologin dockyard
COPY --from=build /opt/dockyard /opt/dockyard
ENV PATH=/opt/dockyard/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DOCKYARD_LOG_FORMAT=json
# The webhook delivery queue; mount a PersistentVolume here so accepted events survive the pod.
RUN mkdir -p /var/lib/dockyard && chown 10001:10001 /var/lib/dockyard
VOLUME /var/lib/dockyard
USER 10001:10001
# 8080: liveness probe (/healthz); 9090: Prometheus metrics; 8090: the registries' event intake.
EXPOSE 8080 9090 8090
ENTRYPOINT ["python", "-m", "dockyard"]
