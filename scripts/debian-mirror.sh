#!/usr/bin/env bash
# Prints the Debian archive this machine's apt uses (the main archive, not the
# security one), so that scripts which bootstrap a Debian root take packages
# from the same place as apt does instead of a mirror written into the repo.
#
#   scripts/debian-mirror.sh [SUITE]
#
# Reads /etc/apt/sources.list, /etc/apt/sources.list.d/*.list (one-line
# format) and /etc/apt/sources.list.d/*.sources (deb822 format, `URIs:`).
# A source that lists SUITE (default bookworm) is preferred; else the first
# one for another Debian release (its archive serves every release); never a
# -security, -updates or -backports suite, nor a third-party repository.
# APT_ETC replaces /etc/apt (tests).
#
# Exits 1 with the files it read when no source qualifies: set DEBIAN_MIRROR
# for make-base-images.sh then.
set -euo pipefail

suite="${1:-bookworm}"
apt_etc="${APT_ETC:-/etc/apt}"

# One line per enabled `deb` source: "URI SUITE", in the order apt reads them.
one_line_sources() {
  awk '
    { sub(/#.*/, "") }
    $1 != "deb" { next }
    {
      i = 2
      if ($i ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
      if (i + 1 <= NF) print $i, $(i + 1)
    }' "$1"
}

deb822_sources() {
  awk '
    function flush(   u, s, nu, ns, a, b) {
      if (types ~ /(^|[ \t])deb([ \t]|$)/ && enabled != "no") {
        nu = split(uris, a, /[ \t]+/); ns = split(suites, b, /[ \t]+/)
        for (u = 1; u <= nu; u++) for (s = 1; s <= ns; s++)
          if (a[u] != "" && b[s] != "") print a[u], b[s]
      }
      types = ""; uris = ""; suites = ""; enabled = ""
    }
    /^[ \t]*#/ { next }
    /^[ \t]*$/ { flush(); next }
    {
      key = tolower($0); sub(/:.*/, "", key)
      value = $0; sub(/^[^:]*:[ \t]*/, "", value); sub(/[ \t]+$/, "", value)
      if (key == "types") types = value
      else if (key == "uris") uris = value
      else if (key == "suites") suites = value
      else if (key == "enabled") enabled = tolower(value)
    }
    END { flush() }' "$1"
}

sources() {
  local f
  if [ -f "$apt_etc/sources.list" ]; then one_line_sources "$apt_etc/sources.list"; fi
  for f in "$apt_etc"/sources.list.d/*.list; do
    if [ -f "$f" ]; then one_line_sources "$f"; fi
  done
  for f in "$apt_etc"/sources.list.d/*.sources; do
    if [ -f "$f" ]; then deb822_sources "$f"; fi
  done
}

all=$(sources)
pick() { awk -v want="$1" '$2 == want { print $1; exit }' <<<"$all"; }
uri=$(pick "$suite")
if [ -z "$uri" ]; then
  releases=" buster bullseye bookworm trixie forky duke oldstable stable testing unstable sid "
  uri=$(awk -v releases="$releases" 'index(releases, " " $2 " ") { print $1; exit }' <<<"$all")
fi
if [ -z "$uri" ]; then
  echo "debian-mirror: no Debian archive for $suite among the deb sources in" \
    "$apt_etc/sources.list and $apt_etc/sources.list.d/ (*.list, *.sources);" \
    "set DEBIAN_MIRROR" >&2
  exit 1
fi
echo "${uri%/}"
