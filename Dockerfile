# syntax=docker/dockerfile:1
# One image for every Revisit service; the command picks what runs:
#   docker run revisit:latest service segmenter     (default: service ingest)
#   docker run revisit:latest migrate | topics
# Built by `make images`; docker-compose.yml and the Helm chart run it.

ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/revisit
WORKDIR /src
# Dependencies first, from the hashed runtime lock only (no test tools, no embedded PostgreSQL
# or broker: `make lock` writes it beside the development lock), so a code change does not
# reinstall them.
COPY requirements/runtime.txt requirements/runtime.txt
RUN /opt/revisit/bin/pip install --require-hashes -r requirements/runtime.txt
COPY pyproject.toml README.md ./
COPY revisit revisit
COPY shared shared
COPY services services
COPY simulator simulator
# --no-deps: everything the project needs came from the lock above; nothing unpinned sneaks in.
RUN /opt/revisit/bin/pip install --no-deps --no-build-isolation . \
 && /opt/revisit/bin/python -m compileall -q /opt/revisit/lib

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="revisit" \
      org.opencontainers.image.description="Revisit services (ingest, segmenter, sequencer, messenger, escalation, metrics, console)"
RUN groupadd --system --gid 10001 revisit \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /tmp \
      --shell /usr/sbin/nologin revisit
COPY --from=build /opt/revisit /opt/revisit
# Read-only root filesystem friendly: no bytecode writes, HOME and temp files under /tmp (an
# emptyDir / tmpfs in the chart and in compose).
ENV PATH=/opt/revisit/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/tmp \
    TMPDIR=/tmp \
    REVISIT_HOST=0.0.0.0 \
    REVISIT_PROFILE=production \
    REVISIT_CLOCK=system
WORKDIR /tmp
USER 10001:10001
# HTTP APIs of the six services (8001-8006), the staff console (8008) and ingest's HL7 MLLP
# listener.
EXPOSE 8001 8002 8003 8004 8005 8006 8008 2575
# slim has no curl: the liveness check is Python. It asks /healthz on REVISIT_PORT (set it for
# every service but ingest, whose default port is 8001); compose and the chart probe /readyz.
HEALTHCHECK --interval=15s --timeout=4s --start-period=40s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + (os.environ.get('REVISIT_PORT') or '8001') + '/healthz', timeout=3)"]
ENTRYPOINT ["revisit"]
CMD ["service", "ingest"]
