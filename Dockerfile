# watcher: the alert daemon, as a long-running container.
#
#   docker build -t watcher .
#   docker run -d --name watcher \
#     -v watcher-data:/data \
#     -v "$PWD/watches.yaml:/config/watches.yaml:ro" \
#     -e TRENDTRACK_API_KEY=tt_live_... \
#     -p 8080:8080 watcher
#
# State (SQLite with its -wal/-shm files) lives in the /data volume; the config is
# mounted read-only at /config/watches.yaml and hot-reloaded on change. GET /healthz and
# GET /metrics are served on port 8080. Any command works too: `docker run ... watcher status`.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/watcher
WORKDIR /src
# The lock file pins every dependency: the image installs exactly what CI tested.
COPY constraints.txt pyproject.toml ./
COPY watcher/ watcher/
RUN /opt/watcher/bin/pip install --no-compile -c constraints.txt . \
    && /opt/watcher/bin/watcher --version

FROM ${PYTHON_IMAGE}
ENV PATH=/opt/watcher/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    WATCHER_CONFIG=/config/watches.yaml \
    WATCHER_DB=sqlite:////data/watcher.db \
    WATCHER_HEALTH_HOST=0.0.0.0 \
    WATCHER_HEALTH_PORT=8080
RUN groupadd --system --gid 10001 watcher \
    && useradd --system --uid 10001 --gid watcher --home-dir /data --no-create-home \
       --shell /usr/sbin/nologin watcher \
    && mkdir -p /data /config \
    && chown watcher:watcher /data
COPY --from=build /opt/watcher /opt/watcher
WORKDIR /data
VOLUME ["/data"]
USER 10001:10001
EXPOSE 8080
# No curl in slim images: the stdlib asks /healthz (503 raises, which exits non-zero).
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('WATCHER_HEALTH_PORT', '8080') + '/healthz', timeout=4)"]
STOPSIGNAL SIGTERM
CMD ["watcher", "run"]
