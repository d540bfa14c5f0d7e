#!/usr/bin/env bash
# Makes this machine ready for the test suite: a running Docker engine and the
# local busybox test image. Idempotent; safe to run on a fresh Debian machine
# (installs Debian's docker.io) and on a developer's machine (does nothing when
# an engine already answers). No registry is needed.
set -euo pipefail

DOCKER=/usr/bin/docker
IMAGE="${DSE_TEST_IMAGE:-dse-test/busybox:latest}"
SOCK=/var/run/docker.sock

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

need_pkgs=()
[ -x "$DOCKER" ] || need_pkgs+=(docker.io)
dpkg -s busybox-static >/dev/null 2>&1 || need_pkgs+=(busybox-static)
command -v promtool >/dev/null || need_pkgs+=(prometheus)
command -v docker-compose >/dev/null || need_pkgs+=(docker-compose)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  echo "setup: installing ${need_pkgs[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi

engine_up() { "$DOCKER" version --format '{{.Server.APIVersion}}' >/dev/null 2>&1; }

if ! engine_up; then
  if ! pgrep -x dockerd >/dev/null; then
    echo "setup: starting dockerd"
    as_root sh -c 'nohup dockerd >/tmp/dockerd.log 2>&1 &'
  fi
  for _ in $(seq 1 60); do engine_up && break; sleep 1; done
  engine_up || { echo "setup: dockerd did not answer within 60 s; see /tmp/dockerd.log" >&2; exit 1; }
fi
echo "setup: engine API $("$DOCKER" version --format '{{.Server.APIVersion}}')"

DOCKER="$DOCKER" DSE_TEST_IMAGE="$IMAGE" bash "$(dirname "$0")/import-test-image.sh"
echo "setup: test image $IMAGE ready"
