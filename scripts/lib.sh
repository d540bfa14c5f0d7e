# Shell helpers the scripts share (private-engine.sh, cgroup2-vm.sh,
# arm64-build.sh).
# Sourced, not run: the sourcing script sets PROG (its name in messages)
# and USAGE_LINES (the lines of its header comment that show its usage).
# shellcheck shell=bash

log() { echo "$PROG: $*" >&2; }

die() {
  log "error: $*"
  exit 1
}

usage() {
  sed -n "${USAGE_LINES}s/^# \{0,1\}//p" "$0" >&2
  exit 2
}

# True while pid $1 exists and is not a zombie.
alive() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) } # fields after "(comm)": state ppid ...
  [ "${stat%% *}" != Z ]
}

# The live process of pidfile $1 whose command line holds $2, so a pid
# reused by another process is never taken for it.
pid_of() {
  local pid
  pid=$(cat "$1" 2>/dev/null) || return 1
  [[ $pid =~ ^[0-9]+$ ]] && alive "$pid" || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$2" || return 1
  echo "$pid"
}

# True if the engine on unix socket $1 answers GET /_ping within $2 seconds.
engine_answers() {
  [ -S "$1" ] && [ "$(curl -s --max-time "$2" --unix-socket "$1" http://engine/_ping 2>/dev/null)" = OK ]
}

# apt-get or apt-cache ($2, with the arguments after it) on an apt state of
# the caller's own under $1 (its sources.list, lists, caches and an empty
# dpkg status): candidates are what the caller's suites have, whatever this
# machine runs, and the machine's apt sources and state are neither read for
# packages nor changed. APT_IN_ARCHS lists the architectures to read
# (default amd64).
apt_in() {
  local dir=$1 tool=$2 arch archs=()
  shift 2
  [ -e "$dir/status" ] || : >"$dir/status"
  for arch in ${APT_IN_ARCHS:-amd64}; do archs+=(-o "APT::Architectures::=$arch"); done
  "$tool" -q \
    -o "Dir::Etc::SourceList=$dir/sources.list" \
    -o "Dir::Etc::SourceParts=$dir/parts" \
    -o "Dir::Etc::PreferencesParts=$dir/preferences.d" \
    -o "Dir::Etc::Preferences=$dir/preferences" \
    -o "Dir::State::Lists=$dir/lists" \
    -o "Dir::State::status=$dir/status" \
    -o "Dir::Cache=$dir/cache" \
    -o "Dir::Cache::pkgcache=" -o "Dir::Cache::srcpkgcache=" \
    -o "APT::Architecture=amd64" "${archs[@]}" \
    -o APT::Sandbox::User=root "$@"
}

# Installs Debian package $2 unless command $1 is there.
need() {
  command -v "$1" >/dev/null 2>&1 && return 0
  log "installing $2"
  DEBIAN_FRONTEND=noninteractive apt-get install -q -y --no-install-recommends \
    -o DPkg::Lock::Timeout=300 "$2" >&2 || die "apt-get install $2 failed"
}

# Holds $RUN/lock on descriptor 9 (waiting up to $1 seconds): one start or
# stop of one engine or VM at a time. Released when the script exits.
lock_run() {
  mkdir -p "$RUN"
  exec 9>"$RUN/lock"
  flock -w "$1" 9 || die "another run holds $RUN/lock"
}
