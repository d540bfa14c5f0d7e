#!/usr/bin/env bash
# Private Docker engines for the tests, beside (and never touching) the
# machine's shared engine at /var/run/docker.sock.
#
#   scripts/private-engine.sh start NAME VERSION   # VERSION: 20.10, 26.1 or 28.5
#   scripts/private-engine.sh stop NAME            # keeps its data (containers, images)
#   scripts/private-engine.sh status NAME          # exit 0 if it answers GET /_ping
#   scripts/private-engine.sh purge NAME           # stop, then delete its data root
#   scripts/private-engine.sh release NAME PID     # drop holder PID; stop if none is left
#
# `start` prints the engine's DOCKER_HOST as its last line of stdout (progress
# goes to stderr), so `DOCKER_HOST=$(scripts/private-engine.sh start x 26.1)`
# works. It is idempotent: an engine that answers is reused.
#
# Environment for `start`:
#   DSE_ENGINE_DEBUG=1     dockerd logs every API request ("Calling GET ...")
#                          to /run/dse-engines/NAME/dockerd.log; applied by a
#                          reload if the engine already runs
#   DSE_ENGINE_HOLDER=PID  records PID as a user of the engine: an engine
#                          shared by test runs is stopped by `release` only
#                          when its last live holder lets go
#   DSE_ENGINE_HOSTNAME=H  runs dockerd in a UTS namespace of its own with
#                          hostname H, the name it reports (/info Name, its
#                          Swarm node's hostname); unset, it shares the host's.
#                          A running engine with another name is not reused.
#
# VERSION 20.10 is this machine's /usr/sbin/dockerd (Debian 12's docker.io).
# VERSION 26.1 is Debian 13's docker.io with its containerd 1.7, fetched once
# with `apt-get download` into a cache of its own and unpacked under
# /opt/dse-engines/26.1; nothing is installed and the machine's apt state is
# not touched. VERSION 28.5 is Debian unstable's docker.io with its
# containerd 2.1, fetched the same way (/opt/dse-engines/28.5), run as Docker
# Engine 29 and today's Desktop run: the containerd image store
# ({"features":{"containerd-snapshotter":true}}) and
# DOCKER_MIN_API_VERSION=1.44, so Debian 12's docker CLI (API 1.41) cannot
# talk to it; this script's client for it is DSE_NEWER_DOCKER (default
# /usr/local/bin/docker, CLI 28.2). Unstable's runc needs glibc 2.38: the
# machine's runc 1.1 runs its containers.
#
# Each engine runs in its own network namespace dse-NAME: a dockerd in the
# host's namespace would reset the bridge and iptables rules the shared engine
# relies on. Needs root.
set -euo pipefail

SCRIPTS=$(cd "$(dirname "$0")" && pwd)
DOCKER=/usr/bin/docker
IMAGE="${DSE_TEST_IMAGE:-dse-test/busybox:latest}"
ENGINE_VERSION="" # the VERSION being started
RUN_BASE=/run/dse-engines      # socket, pidfile, log, lock per engine
DATA_BASE=/var/lib/dse-engines # data roots (images, containers)
# containerd's sockets (.../containerd/containerd.sock.ttrpc) live under the
# exec root, and a unix socket path may be at most 108 bytes: keep it short.
EXEC_BASE=/run/dsex
CACHE=/var/cache/dse-engines # downloaded packages and the apt state for them
OPT=/opt/dse-engines         # unpacked engines
START_TIMEOUT=60             # seconds until GET /_ping must answer
STOP_TIMEOUT=40              # seconds for dockerd to stop its containers and exit

PROG=private-engine
USAGE_LINES=5,9
# shellcheck source=scripts/lib.sh
. "$SCRIPTS/lib.sh"

# --- names and paths ----------------------------------------------------------

# Sets the per-engine paths for $1.
engine_paths() {
  NAME=$1
  [[ $NAME =~ ^[a-z0-9][a-z0-9-]{0,15}$ ]] ||
    die "engine name '$NAME': use 1-16 characters a-z, 0-9 and '-' (it names a network namespace and a short socket path)"
  RUN="$RUN_BASE/$NAME"
  SOCK="$RUN/docker.sock"
  URL="unix://$SOCK"
  PIDFILE="$RUN/dockerd.pid"
  LOG="$RUN/dockerd.log"
  DATA="$DATA_BASE/$NAME"
  EXEC="$EXEC_BASE/$NAME"
  NETNS="dse-$NAME"
  CGROUP="$(cgroup_root)/dse-engines/$NAME"
}

# The cgroup directory engines are started in. Everything dockerd starts
# (containerd, shims, docker-proxy) inherits it, while containers move to
# their own cgroups: what is left in it after dockerd is gone belongs to this
# engine, and nothing else does. One hierarchy is enough to tell.
cgroup_root() {
  if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
    echo /sys/fs/cgroup # cgroup v2
  elif [ -d /sys/fs/cgroup/pids ]; then
    echo /sys/fs/cgroup/pids
  else
    echo /sys/fs/cgroup/systemd
  fi
}

# --- process helpers ----------------------------------------------------------

# The live dockerd of this engine: its command line names its pidfile.
engine_pid() { pid_of "$PIDFILE" "--pidfile $PIDFILE"; }

engine_procs() { cat "$CGROUP/cgroup.procs" 2>/dev/null || true; }

# Direct children of the pids given (a shim's child is its container's init).
children_of() {
  ps -e -o pid= -o ppid= | awk -v parents=" $* " 'index(parents, " " $2 " ") { print $1 }'
}

answers() { engine_answers "$SOCK" 2; }

# --- Debian 13's and unstable's engines --------------------------------------

# Unpacks docker.io and containerd of version $1 (26.1: Debian 13's, 28.5:
# unstable's) under $OPT/$1 unless already there. The packages stay in
# $CACHE, so a later run never downloads again.
fetch_engine() {
  local version=$1 suite apt_dir debs dest="$OPT/$1" mirror tmp deb
  case $version in
    26.1) suite=trixie apt_dir="$CACHE/apt" debs="$CACHE/debs" ;;
    28.5) suite=sid apt_dir="$CACHE/sid/apt" debs="$CACHE/sid/debs" ;;
    *) die "no Debian package for Docker $version" ;;
  esac
  [ -f "$dest/.complete" ] && return 0
  mkdir -p "$CACHE"
  exec 8>"$CACHE/fetch.lock" # two engines starting at once fetch once
  flock -w 600 8 || die "another run holds $CACHE/fetch.lock"
  [ -f "$dest/.complete" ] && return 0

  mkdir -p "$debs"
  if ! compgen -G "$debs/docker.io_*.deb" >/dev/null || ! compgen -G "$debs/containerd_*.deb" >/dev/null; then
    # The archive this machine's apt uses: no mirror name lives in this
    # repository.
    mirror=$("$SCRIPTS/debian-mirror.sh" "$suite") ||
      die "no Debian archive among this machine's apt sources (see scripts/debian-mirror.sh)"
    log "fetching docker.io and containerd of Debian $suite from this machine's Debian archive"
    mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$apt_dir/parts" "$apt_dir/preferences.d"
    # Only the Packages index: this machine's apt.conf.d may ask for more
    # (AppStream metadata) that a download needs not.
    echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg target=Packages] $mirror $suite main" \
      >"$apt_dir/sources.list"
    # Own source list, lists, caches and (empty) preferences: the machine's
    # apt state and sources are neither read for packages nor changed.
    local apt=(apt-get -q
      -o "Dir::Etc::SourceList=$apt_dir/sources.list"
      -o "Dir::Etc::SourceParts=$apt_dir/parts"
      -o "Dir::Etc::PreferencesParts=$apt_dir/preferences.d"
      -o "Dir::Etc::Preferences=$apt_dir/preferences"
      -o "Dir::State::Lists=$apt_dir/lists"
      -o "Dir::Cache=$apt_dir/cache"
      -o "Dir::Cache::pkgcache=" -o "Dir::Cache::srcpkgcache="
      -o APT::Sandbox::User=root)
    "${apt[@]}" update >"$CACHE/apt.log" 2>&1 8>&- ||
      { tail -n 20 "$CACHE/apt.log" >&2; die "apt-get update for Debian $suite failed; see $CACHE/apt.log"; }
    (cd "$debs" && "${apt[@]}" download docker.io containerd) >>"$CACHE/apt.log" 2>&1 8>&- ||
      { tail -n 20 "$CACHE/apt.log" >&2; die "apt-get download docker.io containerd failed; see $CACHE/apt.log"; }
  fi

  mkdir -p "$OPT"
  tmp=$(mktemp -d "$OPT/.unpack.XXXXXX")
  for deb in "$debs"/docker.io_*.deb "$debs"/containerd_*.deb; do
    dpkg-deb -x "$deb" "$tmp"
  done
  "$tmp/usr/sbin/dockerd" --version | grep -qF "version $version." ||
    die "$debs holds no docker.io $version ($("$tmp/usr/sbin/dockerd" --version)); delete $debs to fetch again"
  rm -rf "$dest"
  mv "$tmp" "$dest"
  touch "$dest/.complete"
  log "unpacked $(cd "$debs" && echo *.deb) under $dest"
}

# Sets DOCKERD and ENGINE_PATH for $1. dockerd finds `containerd`,
# `docker-proxy` and `runc` on PATH, and containerd its shim: PATH holds the
# Debian packages' directories only, so nothing under /usr/local (a newer
# client, say) is mixed in. For 26.1 and 28.5, their own containerd, shim and
# docker-proxy come first; runc is the machine's (1.1), which containerd 1.7
# and 2.1 drive fine. ENGINE_ENV is what else dockerd's environment holds.
engine_binaries() {
  local system=/usr/sbin:/usr/bin:/sbin:/bin
  ENGINE_ENV=()
  if [ "$1" = 28.5 ]; then
    # Engine 29.0-29.2's floor; its client must speak 1.44.
    ENGINE_ENV=(DOCKER_MIN_API_VERSION=1.44)
    DOCKER=${DSE_NEWER_DOCKER:-/usr/local/bin/docker}
    [ -x "$DOCKER" ] || die "$DOCKER, a docker CLI that speaks API 1.44, is missing (DSE_NEWER_DOCKER names another)"
  fi
  case $1 in
    20.10)
      DOCKERD=/usr/sbin/dockerd
      [ -x "$DOCKERD" ] || die "$DOCKERD is missing (apt-get install docker.io)"
      "$DOCKERD" --version | grep -q 'version 20\.10\.' || die "$DOCKERD is not Docker 20.10: $("$DOCKERD" --version)"
      ENGINE_PATH=$system
      ;;
    26.1 | 28.5)
      fetch_engine "$1"
      DOCKERD="$OPT/$1/usr/sbin/dockerd"
      ENGINE_PATH="$OPT/$1/usr/bin:$OPT/$1/usr/sbin:$system"
      ;;
    *) die "engine version '$1': use 20.10, 26.1 or 28.5" ;;
  esac
}

# --- start --------------------------------------------------------------------

start_dockerd() {
  local version=$1 pid
  mkdir -p "$RUN" "$DATA" "$EXEC" "$CGROUP"
  echo "$version" >"$DATA/.dse-engine-version"
  write_daemon_json >/dev/null
  rm -f "$SOCK" "$PIDFILE"

  ip netns add "$NETNS"
  nsenter --net="/run/netns/$NETNS" ip link set lo up

  # The hostname is set inside the new UTS namespace, before dockerd reads it.
  local uts=()
  if [ -n "${DSE_ENGINE_HOSTNAME:-}" ]; then
    # shellcheck disable=SC2016 # expanded by the inner shell
    uts=(unshare --uts sh -c 'hostname "$0" && exec "$@"' "$DSE_ENGINE_HOSTNAME")
  fi

  log "starting Docker $version as '$NAME' in network namespace $NETNS${DSE_ENGINE_HOSTNAME:+, hostname $DSE_ENGINE_HOSTNAME} (log: $LOG)"
  # The subshell joins the engine's cgroup before it becomes dockerd, so
  # everything dockerd starts is in it from the first moment. nsenter, not `ip netns
  # exec`: that one also remounts /sys, hiding /sys/fs/cgroup from dockerd.
  # setsid: dockerd outlives this script and its caller's process group.
  # 8>&- 9>&-: it must not hold this script's locks forever. Its own
  # containerd namespace keeps it apart even if it finds a system containerd.
  (
    echo "$BASHPID" >"$CGROUP/cgroup.procs"
    exec nsenter --net="/run/netns/$NETNS" "${uts[@]}" setsid env PATH="$ENGINE_PATH" "${ENGINE_ENV[@]}" "$DOCKERD" \
      --config-file "$RUN/daemon.json" \
      --host "$URL" \
      --data-root "$DATA" \
      --exec-root "$EXEC" \
      --pidfile "$PIDFILE" \
      --containerd-namespace "dse-$NAME" \
      --containerd-plugins-namespace "dse-$NAME-plugins"
  ) </dev/null >>"$LOG" 2>&1 8>&- 9>&- &
  pid=$!

  local until=$((SECONDS + START_TIMEOUT))
  until answers; do
    if ! alive "$pid"; then
      tail -n 20 "$LOG" >&2
      die "dockerd for '$NAME' exited while starting; see $LOG"
    fi
    if [ "$SECONDS" -ge "$until" ]; then
      tail -n 20 "$LOG" >&2
      die "dockerd for '$NAME' did not answer GET /_ping on $URL within ${START_TIMEOUT} s; see $LOG (stop it with: $0 stop $NAME)"
    fi
    sleep 0.2
  done
  log "Docker $(curl -s --unix-socket "$SOCK" http://engine/version | sed -n 's/.*"Version":"\([^"]*\)".*"ApiVersion":"\([^"]*\)".*/\1, API \2/p' | head -n 1) answers on $URL"
}

# Its own daemon.json: settings in /etc/docker are the shared engine's.
# Prints "changed" when the file had other settings before.
write_daemon_json() {
  # "debug" is always written: a reload leaves keys the file omits as they were.
  local debug=false want
  [ "${DSE_ENGINE_DEBUG:-0}" = 1 ] && debug=true
  want="{\"debug\": $debug}"
  # 28.5 as Engine 29 runs: the containerd image store.
  [ "$ENGINE_VERSION" = 28.5 ] && want="{\"debug\": $debug, \"features\": {\"containerd-snapshotter\": true}}"
  [ "$(cat "$RUN/daemon.json" 2>/dev/null)" = "$want" ] && return 0
  echo "$want" >"$RUN/daemon.json"
  echo changed
}

# A running engine takes a changed daemon.json (debug) on SIGHUP.
reload_settings() {
  local pid=$1 want=false until
  [ "$(write_daemon_json)" = changed ] || return 0
  [ "${DSE_ENGINE_DEBUG:-0}" = 1 ] && want=true
  log "reloading '$NAME' with debug=$want"
  kill -HUP "$pid"
  until=$((SECONDS + 10))
  until curl -s --max-time 2 --unix-socket "$SOCK" http://engine/info | grep -q "\"Debug\":$want"; do
    [ "$SECONDS" -lt "$until" ] || die "dockerd for '$NAME' did not take debug=$want; see $LOG"
    sleep 0.1
  done
}

# The name the running engine reports (/info Name).
engine_hostname() {
  "$DOCKER" -H "$URL" info --format '{{.Name}}' 2>/dev/null
}

add_holder() {
  local holder=${DSE_ENGINE_HOLDER:-}
  [ -n "$holder" ] || return 0
  [[ $holder =~ ^[0-9]+$ ]] || die "DSE_ENGINE_HOLDER '$holder' is not a pid"
  mkdir -p "$RUN/holders"
  touch "$RUN/holders/$holder"
}

ensure_image() {
  if ! "$DOCKER" -H "$URL" image inspect "$IMAGE" >/dev/null 2>&1; then
    log "importing $IMAGE"
    bash "$SCRIPTS/busybox-rootfs.sh" | "$DOCKER" -H "$URL" import - "$IMAGE" >/dev/null
  fi
}

cmd_start() {
  [ $# -eq 2 ] || usage
  engine_paths "$1"
  local version=$2 recorded pid
  ENGINE_VERSION=$version
  engine_binaries "$version"
  lock_run 300

  recorded=$(cat "$DATA/.dse-engine-version" 2>/dev/null || true)
  if [ -n "$recorded" ] && [ "$recorded" != "$version" ]; then
    die "engine '$NAME' was made with Docker $recorded, not $version; use another name or '$0 purge $NAME'"
  fi
  local hostname=${DSE_ENGINE_HOSTNAME:-}
  [ -z "$hostname" ] || [[ $hostname =~ ^[a-z0-9][a-z0-9.-]{0,62}$ ]] ||
    die "DSE_ENGINE_HOSTNAME '$hostname': use 1-63 characters a-z, 0-9, '.' and '-'"
  if answers && pid=$(engine_pid); then
    log "engine '$NAME' already answers on $URL"
    if [ -n "$hostname" ] && [ "$(engine_hostname)" != "$hostname" ]; then
      die "engine '$NAME' runs with hostname '$(engine_hostname)', not '$hostname'; stop it first ($0 stop $NAME)"
    fi
    reload_settings "$pid"
    ensure_image
  else
    # Whatever an earlier run left behind (a dead or hung dockerd, its shims,
    # mounts, the namespace) goes first, so every start is a clean one.
    stop_engine
    start_dockerd "$version"
    ensure_image
    # Proves the runtime works (runc, cgroups, the bridge in the namespace).
    "$DOCKER" -H "$URL" run --rm --network bridge "$IMAGE" true ||
      die "a test container failed to run on '$NAME'; see $LOG"
  fi
  add_holder
  echo "$URL"
}

# --- stop ---------------------------------------------------------------------

# Mounts at or below $1, deepest first.
mounts_under() {
  findmnt -rn -o TARGET | awk -v d="$1" '$0 == d || index($0, d "/") == 1' | sort -r
}

stop_engine() {
  local pid until m procs children
  if pid=$(engine_pid); then
    log "stopping dockerd $pid ('$NAME')"
    kill -TERM "$pid"
    until=$((SECONDS + STOP_TIMEOUT))
    while alive "$pid" && [ "$SECONDS" -lt "$until" ]; do sleep 0.1; done
    if alive "$pid"; then
      log "dockerd $pid did not exit within ${STOP_TIMEOUT} s; killing it"
      kill -KILL "$pid" 2>/dev/null || true
      while alive "$pid"; do sleep 0.1; done
    fi
  fi

  # Shims exit once their containers are gone; give them a moment, then kill
  # what is left in the engine's cgroup, and the containers they still hold.
  until=$((SECONDS + 3))
  while [ -n "$(engine_procs)" ] && [ "$SECONDS" -lt "$until" ]; do sleep 0.1; done
  procs=$(engine_procs | tr '\n' ' ')
  if [ -n "$procs" ]; then
    # shellcheck disable=SC2086 # lists of pids
    children=$(children_of $procs | tr '\n' ' ')
    log "killing what '$NAME' left: $procs${children:+and their children $children}"
    # shellcheck disable=SC2086
    kill -KILL $children $procs 2>/dev/null || true
  fi
  until=$((SECONDS + 10))
  while [ -n "$(engine_procs)" ] && [ "$SECONDS" -lt "$until" ]; do sleep 0.1; done
  [ -z "$(engine_procs)" ] || die "processes of '$NAME' would not die: $(engine_procs | tr '\n' ' ')"
  rmdir "$CGROUP" 2>/dev/null || true

  # A dockerd that was killed leaves its overlay and network namespace mounts
  # (and the bind mount of its own data root) behind.
  for m in $(mounts_under "$DATA") $(mounts_under "$EXEC"); do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || log "cannot unmount $m"
  done
  if [ -e "/run/netns/$NETNS" ]; then
    ip netns delete "$NETNS"
  fi
  # The exec root holds runtime state only, as /run does after a reboot: a
  # task directory containerd left there fails the next start of that
  # container ("mkdir .../io.containerd.runtime.v2.task/...: file exists").
  rm -rf --one-file-system "$EXEC" || log "cannot remove all of $EXEC"
  rm -f "$SOCK" "$PIDFILE"
  rm -rf "$RUN/holders"
}

cmd_stop() {
  [ $# -eq 1 ] || usage
  engine_paths "$1"
  lock_run 300
  stop_engine
  log "engine '$NAME' stopped"
}

cmd_release() {
  [ $# -eq 2 ] || usage
  engine_paths "$1"
  [[ $2 =~ ^[0-9]+$ ]] || die "holder '$2' is not a pid"
  lock_run 300
  rm -f "$RUN/holders/$2"
  local holder left=""
  for holder in "$RUN"/holders/*; do
    [ -e "$holder" ] || continue
    if alive "${holder##*/}"; then left+=" ${holder##*/}"; else rm -f "$holder"; fi
  done
  if [ -n "$left" ]; then
    log "engine '$NAME' stays up for holder(s)$left"
  else
    stop_engine
    log "engine '$NAME' stopped"
  fi
}

cmd_purge() {
  cmd_stop "$@"
  rm -rf "$DATA" "$RUN"
  log "engine '$NAME' purged"
}

cmd_status() {
  [ $# -eq 1 ] || usage
  engine_paths "$1"
  answers
}

[ $# -ge 1 ] || usage
# Network namespaces, cgroups and dockerd need root.
if [ "$(id -u)" -ne 0 ]; then
  exec sudo --preserve-env=DSE_ENGINE_DEBUG,DSE_ENGINE_HOLDER,DSE_ENGINE_HOSTNAME,DSE_NEWER_DOCKER,DSE_TEST_IMAGE -- "$0" "$@"
fi
command=$1
shift
case $command in
  start) cmd_start "$@" ;;
  stop) cmd_stop "$@" ;;
  status) cmd_status "$@" ;;
  purge) cmd_purge "$@" ;;
  release) cmd_release "$@" ;;
  *) usage ;;
esac
