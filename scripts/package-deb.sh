#!/usr/bin/env bash
# Builds the Debian package of a release binary.
#
#   scripts/package-deb.sh ARCH BINARY OUTDIR   # ARCH: amd64 or arm64
#
# Prints the .deb's path as its last stdout line. The help text in the man
# page is taken from BINARY, or from DSE_HELP_BIN when BINARY cannot run
# here (arm64). DEB_MAINTAINER names the maintainer field, DEB_REVISION the
# Debian revision (default 1).
#
# Built with dpkg-deb from deploy/debian/ rather than cargo-deb: nothing to
# compile or install first (cargo-deb takes minutes to build on a CI
# machine), the maintainer scripts are the ones debhelper writes for a
# systemd unit, and the same script packages the cross-built arm64 binary,
# which cargo-deb would want to build itself.
set -euo pipefail
cd "$(dirname "$0")/.."
PROG=package-deb
USAGE_LINES=4,4
# shellcheck source=scripts/lib.sh
. scripts/lib.sh
[ $# -eq 3 ] || usage
arch=$1 binary=$2 outdir=$3
case $arch in amd64 | arm64) ;; *) die "ARCH must be amd64 or arm64, not '$arch'" ;; esac
[ -x "$binary" ] || die "$binary: not an executable"
name=docker-stats-exporter
upstream=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
[ -n "$upstream" ] || die "Cargo.toml: no version"
version="$upstream-${DEB_REVISION:-1}"
maintainer=${DEB_MAINTAINER:-"docker-stats-exporter developers <noreply@example.org>"}
# Dates from the last commit, so that a rebuild gives the same bytes.
epoch=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
export SOURCE_DATE_EPOCH=$epoch

root=$(mktemp -d -t dse-deb.XXXXXX)
trap 'rm -rf "$root"' EXIT
chmod 0755 "$root"
doc=$root/usr/share/doc/$name
install -d "$root/DEBIAN" "$root/usr/bin" "$root/usr/lib/systemd/system" \
  "$root/etc/default" "$root/etc/$name" "$doc" "$root/usr/share/man/man1" \
  "$root/usr/share/lintian/overrides"
install -m 0644 deploy/debian/lintian-overrides "$root/usr/share/lintian/overrides/$name"
install -m 0755 "$binary" "$root/usr/bin/$name"
install -m 0644 deploy/debian/$name.service "$root/usr/lib/systemd/system/$name.service"
install -m 0644 deploy/debian/default "$root/etc/default/$name"
# The example, every setting commented out at its default: the package's
# upgrades can change the defaults without a conffile question.
{
  echo "# docker-stats-exporter's settings for its service; the listen address and"
  echo "# further flags are in /etc/default/docker-stats-exporter. Uncomment to change."
  echo "#"
  sed -e '/^[[:space:]]*#/b' -e '/^[[:space:]]*$/b' -e 's/^/# /' config.example.toml
} >"$root/etc/$name/config.toml"
chmod 0644 "$root/etc/$name/config.toml"
install -m 0644 deploy/debian/README.Debian "$doc/README.Debian"
install -m 0644 config.example.toml "$doc/config.example.toml"
install -m 0644 web-config.example.yml "$doc/web-config.example.yml"
{
  echo "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/"
  echo "Upstream-Name: $name"
  echo
  echo "Files: *"
  echo "Copyright: $(date -u -d "@$epoch" +%Y) docker-stats-exporter contributors"
  echo "License: MIT"
  sed -n '5,$p' LICENSE | sed -e 's/^$/./' -e 's/^/ /'
} >"$doc/copyright"
date_rfc=$(LC_ALL=C date -u -d "@$epoch" -R)
printf '%s (%s) unstable; urgency=medium\n\n  * Release %s.\n\n -- %s  %s\n' \
  "$name" "$version" "$upstream" "$maintainer" "$date_rfc" | gzip -9n >"$doc/changelog.Debian.gz"

# The man page: what --help says, under the sections man expects.
help_bin=${DSE_HELP_BIN:-$binary}
help=$("$help_bin" --help) || die "$help_bin --help failed (set DSE_HELP_BIN to a binary that runs here)"
{
  echo ".TH DOCKER-STATS-EXPORTER 1 \"$(date -u -d "@$epoch" +%Y-%m-%d)\" \"$name $upstream\" \"User Commands\""
  echo ".SH NAME"
  echo "$name \\- Prometheus exporter for Docker container stats"
  echo ".SH SYNOPSIS"
  echo ".B $name"
  echo "[\\fIOPTIONS\\fR]"
  echo ".SH DESCRIPTION"
  echo "Serves the stats of the engine's containers on /metrics, read from the"
  echo "engine at each scrape. As a service it reads"
  echo ".I /etc/default/$name"
  echo "and"
  echo ".IR /etc/$name/config.toml ."
  echo ".SH OPTIONS"
  echo ".nf"
  # Lines of the help after its usage line, escaped for roff.
  printf '%s\n' "$help" | sed -n '/^Options:/,$p' | sed -n '2,$p' |
    sed -e 's/\\/\\e/g' -e "s/^\\([.']\\)/\\\\\\&\\1/"
  echo ".fi"
  echo ".SH FILES"
  echo ".TP"
  echo ".I /etc/default/$name"
  echo "The service's listen address and further flags."
  echo ".TP"
  echo ".I /etc/$name/config.toml"
  echo "Every other setting."
  echo ".SH SEE ALSO"
  echo ".I /usr/share/doc/$name/README.Debian"
} | gzip -9n >"$root/usr/share/man/man1/$name.1.gz"

for script in postinst prerm postrm; do
  install -m 0755 "deploy/debian/$script" "$root/DEBIAN/$script"
done
printf '%s\n' "/etc/default/$name" "/etc/$name/config.toml" >"$root/DEBIAN/conffiles"
size=$(du -k -s --exclude=DEBIAN "$root" | cut -f1)
cat >"$root/DEBIAN/control" <<CONTROL
Package: $name
Version: $version
Architecture: $arch
Maintainer: $maintainer
Installed-Size: $size
Section: utils
Priority: optional
Description: Prometheus exporter for Docker container stats
 Serves the CPU, memory, network, block I/O and lifecycle metrics of the
 containers of a Docker or Podman engine on /metrics, read from the engine
 at each scrape, under cAdvisor's metric names. Runs as a hardened systemd
 service reaching the engine through the socket's group.
CONTROL
# Conffiles are not listed: dpkg keeps their sums itself.
(cd "$root" && find usr -type f -print0 | sort -z | xargs -0 md5sum) >"$root/DEBIAN/md5sums"
find "$root" -exec touch -h -d "@$epoch" {} +
mkdir -p "$outdir"
deb="$outdir/${name}_${version}_$arch.deb"
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >&2
echo "$deb"
