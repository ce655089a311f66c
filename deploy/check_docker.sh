#!/usr/bin/env bash
# Called by `make images`, `make compose-up` and `make compose-down` before they touch Docker, so
# that a machine without a Docker engine gets one clear sentence instead of a client stack trace.
#
#   deploy/check_docker.sh          the engine only (make images)
#   deploy/check_docker.sh compose  the engine, Compose v2 and a .env file (make compose-*)
set -u
cd "$(dirname "$0")/.."

no_docker_hint='Install Docker Engine (or Docker Desktop) to build images; `make run` runs everything without Docker.'

if ! command -v docker >/dev/null 2>&1; then
  echo "Docker not found: there is no \`docker\` command. ${no_docker_hint}" >&2
  exit 2
fi
# `timeout` keeps an unreachable remote DOCKER_HOST from hanging the target.
probe=(docker info)
if command -v timeout >/dev/null 2>&1; then
  probe=(timeout 20 docker info)
fi
if ! "${probe[@]}" >/dev/null 2>&1; then
  echo "Docker engine not reachable: \`docker info\` failed. ${no_docker_hint}" >&2
  exit 2
fi

if [ "${1:-}" = "compose" ]; then
  if ! docker compose version >/dev/null 2>&1; then
    echo "Docker Compose v2 not found: \`docker compose version\` failed. Install the Compose plugin (2.23.1 or newer)." >&2
    exit 2
  fi
  if [ ! -f .env ]; then
    echo "No .env file: copy .env.example to .env and fill in every secret (see deploy/README.md)." >&2
    exit 2
  fi
fi
