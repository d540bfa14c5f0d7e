#!/usr/bin/env bash
# Makes this machine ready to test against Podman's Docker-compatible API, next
# to (and without touching) a Docker engine:
#   - installs Debian's podman (rootful) with runc, curl and busybox-static;
#   - starts `podman system service` on unix:///run/dse-podman/podman.sock
#     unless that socket already answers GET /_ping;
#   - imports the busybox test image (no registry needed).
# Idempotent. Prints the socket URL on its last line (stdout); progress goes to
# stderr, so `DOCKER_HOST=$(scripts/setup-podman.sh)` works.
# What Podman's API returns, and why the service gets its own containers.conf:
# docs/podman-notes.md.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
  exec sudo -- "$0" "$@"
fi

RUN_DIR=/run/dse-podman
SOCK="$RUN_DIR/podman.sock"
URL="unix://$SOCK"
CONF="$RUN_DIR/containers.conf"
LOG="$RUN_DIR/service.log"
PIDFILE="$RUN_DIR/service.pid"
IMAGE="${DSE_PODMAN_TEST_IMAGE:-localhost/dse-test/busybox:latest}"
APT=(apt-get -o DPkg::Lock::Timeout=300)

log() { echo "setup-podman: $*" >&2; }
die() { log "$*"; exit 1; }

mkdir -p "$RUN_DIR"
# Serialise concurrent runs (two test suites starting at once).
exec 9>"$RUN_DIR/setup.lock"
flock -w 120 9 || die "another setup-podman run holds $RUN_DIR/setup.lock"

# --- packages -----------------------------------------------------------------
# Rootful podman needs no uidmap, slirp4netns or fuse-overlayfs (kernel overlay,
# CNI bridge), so recommends are skipped. runc is asked for by name: podman
# depends on "crun | runc" and apt would otherwise pick crun, which refuses
# hybrid cgroup v1/v2 hosts ("cgroups in hybrid mode not supported"). Any runc
# binary will do (containerd.io ships one and conflicts with Debian's runc).
have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/usr/bin/$1" ]; }
need_pkgs=()
have podman || need_pkgs+=(podman)
have runc || need_pkgs+=(runc)
have curl || need_pkgs+=(curl)
dpkg -s busybox-static >/dev/null 2>&1 || need_pkgs+=(busybox-static)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  log "installing ${need_pkgs[*]}"
  if ! { "${APT[@]}" update -qq &&
    DEBIAN_FRONTEND=noninteractive NEEDRESTART_SUSPEND=1 \
      "${APT[@]}" install -y -qq --no-install-recommends "${need_pkgs[@]}"; } >"$RUN_DIR/apt.log" 2>&1 9>&-; then
    tail -n 20 "$RUN_DIR/apt.log" >&2
    die "installing ${need_pkgs[*]} failed; see $RUN_DIR/apt.log"
  fi
fi

# --- service ------------------------------------------------------------------
ping_ok() {
  [ -S "$SOCK" ] && [ "$(curl -s --max-time 2 --unix-socket "$SOCK" http://d/_ping 2>/dev/null)" = OK ]
}

# The service reads only $CONF (CONTAINERS_CONF replaces the system files), so
# $CONF is a copy of the system file (/etc's if present, else /usr/share's) plus
# what this host needs. Nothing under /etc is
# changed and a plain `podman` on the command line keeps the stock settings.
write_conf() {
  local base=/usr/share/containers/containers.conf tmp
  [ -f /etc/containers/containers.conf ] && base=/etc/containers/containers.conf
  tmp=$(mktemp "$RUN_DIR/containers.conf.XXXXXX")
  if [ -f "$base" ]; then cat "$base" >"$tmp"; fi
  add_key() { # table key line: add unless the file already sets the key
    grep -Eq "^[[:space:]]*$2[[:space:]]*=" "$tmp" && return 0
    if grep -q "^\[$1\]" "$tmp"; then
      sed -i "/^\[$1\]/a $3" "$tmp"
    else
      printf '\n[%s]\n%s\n' "$1" "$3" >>"$tmp"
    fi
    log "service config: [$1] $3"
  }
  # Rootful podman gives every container nofile and nproc 1048576. Without
  # CAP_SYS_RESOURCE (as in some sandboxes) runc cannot go above the current
  # hard limits and every start fails with "error setting rlimit type 7:
  # operation not permitted"; default to limits that fit.
  local cap_eff hard_n hard_u
  cap_eff=$(awk '/^CapEff:/ {print $2}' /proc/self/status)
  hard_n=$(ulimit -Hn)
  hard_u=$(ulimit -Hu)
  if (((0x$cap_eff >> 24) & 1)); then :; elif [ "$hard_n" != unlimited ] && [ "$hard_n" -lt 1048576 ] ||
    { [ "$hard_u" != unlimited ] && [ "$hard_u" -lt 1048576 ]; }; then
    add_key containers default_ulimits 'default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]'
  fi
  # crun (podman's first choice when installed) fails on cgroup v1/hybrid hosts.
  if [ "$(stat -fc %T /sys/fs/cgroup)" != cgroup2fs ]; then
    add_key engine runtime 'runtime = "runc"'
  fi
  mv "$tmp" "$CONF"
}

# True while $1 is a live (not zombie) `podman system service` for $URL.
service_alive() {
  local state
  state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
  [ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ] &&
    tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -q "system service .*$URL"
}

service_pid() {
  local pid
  [ -f "$PIDFILE" ] || return 1
  pid=$(cat "$PIDFILE")
  [ -n "$pid" ] && service_alive "$pid" && echo "$pid"
}

started=0
if ping_ok; then
  log "podman service already answers on $URL"
else
  if pid=$(service_pid); then
    log "podman service (pid $pid) is running but not answering yet; waiting"
  else
    write_conf
    rm -f "$SOCK"
    log "starting podman system service on $URL (log: $LOG)"
    # setsid: the service outlives this script and its terminal/process group;
    # 9>&-: it must not inherit (and hold forever) the setup lock.
    CONTAINERS_CONF="$CONF" setsid podman system service --time=0 "$URL" </dev/null >>"$LOG" 2>&1 9>&- &
    pid=$!
    echo "$pid" >"$PIDFILE"
    started=1
  fi
  for _ in $(seq 1 60); do
    ping_ok && break
    service_alive "$pid" || { tail -n 20 "$LOG" >&2 || true; die "podman service exited; see $LOG"; }
    sleep 0.5
  done
  ping_ok || die "podman service did not answer GET /_ping on $URL within 30 s; see $LOG"
fi
# GET /version takes ~1 s on Podman 4.3; the headers of GET /_ping carry the versions at once.
log "podman $(curl -s -o /dev/null -D - --unix-socket "$SOCK" http://d/_ping |
  tr -d '\r' | awk -F': ' '$1 == "Libpod-Api-Version" {v = $2} $1 == "Api-Version" {a = $2} END {print v ", API " a}')"

# --- test image ---------------------------------------------------------------
if ! podman --url "$URL" image exists "$IMAGE"; then
  log "making $IMAGE from /bin/busybox"
  bash "$(dirname "$0")/busybox-rootfs.sh" | podman --url "$URL" import -q - "$IMAGE" >/dev/null
fi
log "test image $IMAGE ready"

if [ "$started" = 1 ]; then
  # This run started the service: prove a container starts (rlimits, OCI runtime,
  # CNI network setup).
  podman --url "$URL" run --rm "$IMAGE" sh -c 'cat /proc/net/dev >/dev/null' ||
    die "a test container failed to run via $URL; see $LOG"
  log "a test container ran via $URL"
fi

echo "$URL"
