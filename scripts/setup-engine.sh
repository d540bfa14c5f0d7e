#!/usr/bin/env bash
# Makes this machine ready for the test suite: a running Docker engine and the
# local busybox test image. Idempotent; safe to run on a fresh Debian machine
# (installs Debian's docker.io) and on a developer's machine (does nothing when
# an engine already answers). No registry is needed.
set -euo pipefail

DOCKER=/usr/bin/docker
IMAGE="${DSE_TEST_IMAGE:-dse-test/busybox:latest}"
SOCK=/var/run/docker.sock
PIDFILE=/var/run/docker.pid
LOG=/var/log/dse-dockerd.log
# This script is about the shared engine only, whatever DOCKER_HOST says.
export DOCKER_HOST="unix://$SOCK"

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

need_pkgs=()
[ -x "$DOCKER" ] || need_pkgs+=(docker.io)
dpkg -s busybox-static >/dev/null 2>&1 || need_pkgs+=(busybox-static)
command -v promtool >/dev/null || need_pkgs+=(prometheus)
# tests/dashboards/main.rs runs it on a loopback port of its own.
command -v prometheus-node-exporter >/dev/null || need_pkgs+=(prometheus-node-exporter)
command -v docker-compose >/dev/null || need_pkgs+=(docker-compose)
command -v curl >/dev/null || need_pkgs+=(curl)
# tests/deploy/debian.rs lints the Debian packages.
command -v lintian >/dev/null || need_pkgs+=(lintian)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  echo "setup: installing ${need_pkgs[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi

# Whether the shared engine answers on its socket. Not "is some dockerd
# running": private engines (scripts/private-engine.sh) are dockerds too.
engine_up() { [ "$(as_root curl -s --max-time 2 --unix-socket "$SOCK" http://engine/_ping 2>/dev/null)" = OK ]; }

# The pid in dockerd's pidfile, if that process is a live dockerd.
shared_dockerd_pid() {
  local pid
  pid=$(cat "$PIDFILE" 2>/dev/null) || return 1
  [[ $pid =~ ^[0-9]+$ ]] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = dockerd ] && echo "$pid"
}

if ! engine_up; then
  if pid=$(shared_dockerd_pid); then
    echo "setup: dockerd $pid is starting; waiting for $SOCK"
  else
    echo "setup: starting dockerd (pidfile $PIDFILE, log $LOG)"
    # setsid: it outlives this script; the pidfile records which dockerd is
    # the shared one.
    as_root sh -c "setsid dockerd --pidfile '$PIDFILE' </dev/null >>'$LOG' 2>&1 &"
  fi
  for _ in $(seq 1 60); do engine_up && break; sleep 1; done
  engine_up || { echo "setup: dockerd did not answer on $SOCK within 60 s; see $LOG" >&2; exit 1; }
fi
echo "setup: engine API $("$DOCKER" version --format '{{.Server.APIVersion}}')"

DOCKER="$DOCKER" DSE_TEST_IMAGE="$IMAGE" bash "$(dirname "$0")/import-test-image.sh"
echo "setup: test image $IMAGE ready"
