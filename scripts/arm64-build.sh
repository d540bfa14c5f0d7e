#!/usr/bin/env bash
# Cross-builds the release binary for aarch64-unknown-linux-gnu (the image's
# linux/arm64 build: Apple Silicon, arm64 servers) on an x86_64 Debian
# machine, statically linked as the Dockerfile builds it.
#
#   scripts/arm64-build.sh      # prints the binary's path as its last stdout line
#
# So `bin=$(scripts/arm64-build.sh)` works; progress goes to stderr. Cached and
# idempotent: the toolchain is fetched once, and cargo rebuilds only what
# changed.
#
# The Rust toolchain is Debian's: rustc for amd64 and libstd-rust-dev:arm64 of
# the same version, from a suite whose rustc is at least Cargo.toml's
# rust-version (Debian 13's 1.85 is not): testing (forky), else unstable.
# They are fetched with `apt-get download` into a cache of this script's own
# (its own source list and apt state: the machine's apt state and sources are
# neither read for packages nor changed) and unpacked with `dpkg-deb -x`, with
# the libraries that rustc needs from the same suite (glibc, libLLVM,
# libstdc++, ...). rustc runs through that suite's own dynamic loader with
# `--library-path`, so nothing it starts (cargo's build scripts, the linker)
# sees those libraries. cargo is the one on PATH; it reads RUSTC.
#
# The linker and the static glibc are Debian 12's gcc-aarch64-linux-gnu and
# libc6-dev-arm64-cross, and qemu-user-static runs the result here; the three
# are installed with apt-get when missing (root, or sudo).
#
# Environment:
#   DSE_ARM64_CACHE       cache of packages, apt state, toolchain and the
#                         cargo target directory (default /var/cache/dse-arm64,
#                         or ~/.cache/dse-arm64 for a user who is not root).
#                         Delete it to fetch the newest toolchain again.
#   DSE_ARM64_SUITES      Debian suites to try, in order (default "forky sid")
#   DSE_ARM64_TARGET_DIR  cargo's target directory (default $DSE_ARM64_CACHE/target,
#                         shared by checkouts: dependencies are built once)
#   CARGO_TARGET_DIR      the binary is copied to $CARGO_TARGET_DIR/arm64/
#                         (default target/arm64/ of this checkout)
#   CARGO_BUILD_JOBS      as for cargo
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
TARGET=aarch64-unknown-linux-gnu
if [ -n "${DSE_ARM64_CACHE:-}" ]; then
  CACHE=$DSE_ARM64_CACHE
elif [ "$(id -u)" -eq 0 ]; then
  CACHE=/var/cache/dse-arm64
else
  CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/dse-arm64"
fi
SUITES=${DSE_ARM64_SUITES:-forky sid}
BUILD_DIR=${DSE_ARM64_TARGET_DIR:-$CACHE/target}
OUT_DIR="${CARGO_TARGET_DIR:-$REPO/target}/arm64"
TOOLCHAIN="$CACHE/toolchain" # unpacked packages; .complete once usable
RUSTC="$TOOLCHAIN/dse-bin/rustc"
# The Dockerfile's flags. Rust links aarch64-unknown-linux-gnu static
# binaries as non-PIE executables, which have no relative relocations to
# pack: ld then says "-z pack-relative-relocs ignored", and that is all.
RUSTFLAGS_STATIC="-C target-feature=+crt-static -C link-arg=-Wl,-z,pack-relative-relocs"

PROG=arm64-build
USAGE_LINES=6,6
# shellcheck source=scripts/lib.sh
. "$REPO/scripts/lib.sh"
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# "1.88" from Cargo.toml's rust-version.
rust_version() {
  sed -n 's/^rust-version *= *"\([0-9.]*\)".*/\1/p' "$REPO/Cargo.toml" | head -n 1 | grep .
}

# True if version $1 >= version $2 (dotted numbers).
version_ge() { [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n 1)" = "$2" ]; }

# --- the machine's packages: cross linker, static glibc, qemu -----------------

host_tools() {
  local need=()
  command -v aarch64-linux-gnu-gcc >/dev/null || need+=(gcc-aarch64-linux-gnu)
  [ -f /usr/aarch64-linux-gnu/lib/libc.a ] || need+=(libc6-dev-arm64-cross)
  command -v qemu-aarch64-static >/dev/null || need+=(qemu-user-static)
  command -v readelf >/dev/null || need+=(binutils)
  [ ${#need[@]} -eq 0 ] && return 0
  log "installing ${need[*]}"
  as_root apt-get update -qq -o DPkg::Lock::Timeout=300 >&2
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    -o DPkg::Lock::Timeout=300 "${need[@]}" >&2
}

# --- Debian's Rust, from a newer suite ----------------------------------------

# apt-get/apt-cache with the cache's own sources, lists, caches and an empty
# dpkg status, for both architectures (scripts/lib.sh).
apt_in_cache() { APT_IN_ARCHS="amd64 arm64" apt_in "$CACHE/apt" "$@"; }

# Points the cache's apt at suite $1 and reads its package lists.
apt_suite() {
  local suite=$1 dir="$CACHE/apt" mirror
  mirror=$(bash "$REPO/scripts/debian-mirror.sh" "$suite") ||
    die "no Debian archive among this machine's apt sources (scripts/debian-mirror.sh)"
  rm -rf "$dir"
  mkdir -p "$dir/lists/partial" "$dir/cache/archives/partial" "$dir/parts" "$dir/preferences.d"
  : >"$dir/status"
  # Only the Packages index: this machine's apt.conf.d may ask for more.
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg target=Packages arch=amd64,arm64] $mirror $suite main" \
    >"$dir/sources.list"
  log "reading Debian $suite's package lists"
  apt_in_cache apt-get update >>"$CACHE/apt.log" 2>&1 8>&- ||
    {
      tail -n 20 "$CACHE/apt.log" >&2
      die "apt-get update for Debian $suite failed; see $CACHE/apt.log"
    }
}

# The candidate version of package $1 ("" if none).
candidate() {
  apt_in_cache apt-cache policy "$1" 2>/dev/null | sed -n 's/^ *Candidate: //p' | grep -v '(none)' || true
}

# The packages to unpack: rustc, the amd64 standard library with everything it
# needs at run time (librustc_driver, libLLVM, glibc, libstdc++, ...), and the
# arm64 standard library (rlibs only: its own dependencies are not needed).
toolchain_packages() {
  echo rustc libstd-rust-dev:arm64
  apt_in_cache apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts \
    --no-breaks --no-replaces --no-enhances libstd-rust-dev:amd64 |
    grep -v '^[ <]' | sed 's/:amd64$//' | sort -u
}

fetch_toolchain() {
  [ -f "$TOOLCHAIN/.complete" ] && return 0
  mkdir -p "$CACHE"
  exec 8>"$CACHE/fetch.lock" # two builds starting at once fetch once
  flock -w 900 8 || die "another run holds $CACHE/fetch.lock"
  [ -f "$TOOLCHAIN/.complete" ] && return 0

  local want suite found="" rustc_v std_v debs="$CACHE/debs" tmp deb
  want=$(rust_version) || die "no rust-version in $REPO/Cargo.toml"
  for suite in $SUITES; do
    apt_suite "$suite"
    rustc_v=$(candidate rustc:amd64)
    std_v=$(candidate libstd-rust-dev:arm64)
    log "Debian $suite: rustc ${rustc_v:-none}, libstd-rust-dev:arm64 ${std_v:-none}"
    if [ -n "$rustc_v" ] && [ "$rustc_v" = "$std_v" ] && version_ge "${rustc_v%%+*}" "$want"; then
      found=$suite
      break
    fi
  done
  [ -n "$found" ] ||
    die "none of the suites '$SUITES' has rustc >= $want with libstd-rust-dev:arm64 of the same version (DSE_ARM64_SUITES)"

  rm -rf "$debs"
  mkdir -p "$debs"
  local packages
  packages=$(toolchain_packages | tr '\n' ' ')
  log "fetching from Debian $found: $packages"
  # shellcheck disable=SC2086 # a list of package names
  (cd "$debs" && apt_in_cache apt-get download $packages) >>"$CACHE/apt.log" 2>&1 8>&- ||
    {
      tail -n 20 "$CACHE/apt.log" >&2
      die "apt-get download failed; see $CACHE/apt.log"
    }

  tmp=$(mktemp -d "$CACHE/.unpack.XXXXXX")
  for deb in "$debs"/*.deb; do
    dpkg-deb -x "$deb" "$tmp/root"
  done
  mkdir -p "$tmp/dse-bin"
  # The suite's loader and libraries for rustc only; --library-path, unlike
  # LD_LIBRARY_PATH, is not inherited by the programs rustc starts.
  cat >"$tmp/dse-bin/rustc" <<EOF
#!/bin/sh
# Debian $found's rustc ($rustc_v) on its own glibc and libraries (scripts/arm64-build.sh).
root='$TOOLCHAIN/root'
exec "\$root/usr/lib64/ld-linux-x86-64.so.2" --library-path "\$root/usr/lib/x86_64-linux-gnu" "\$root/usr/bin/rustc" "\$@"
EOF
  chmod +x "$tmp/dse-bin/rustc"
  rm -rf "$TOOLCHAIN"
  mv "$tmp" "$TOOLCHAIN"
  "$RUSTC" -vV >/dev/null || die "the unpacked rustc does not run: $RUSTC -vV"
  [ -d "$("$RUSTC" --print target-libdir --target "$TARGET")" ] ||
    die "the unpacked rustc has no standard library for $TARGET"
  echo "$found $rustc_v" >"$TOOLCHAIN/.complete"
  rm -rf "$debs" # unpacked, and .complete keeps them from being fetched again
  log "Debian $found's rustc $rustc_v unpacked under $TOOLCHAIN"
}

# --- build and check ----------------------------------------------------------

# Fails unless $1 is a statically linked AArch64 executable.
check_binary() {
  local bin=$1 header
  header=$(readelf -hW "$bin") || die "$bin is not an ELF file"
  grep -Eq '^ *Machine: +AArch64$' <<<"$header" ||
    die "$bin is not an AArch64 binary: $(sed -n 's/^ *Machine: *//p' <<<"$header")"
  grep -Eq '^ *Type: +(EXEC|DYN) ' <<<"$header" ||
    die "$bin is not an executable: $(sed -n 's/^ *Type: *//p' <<<"$header")"
  if readelf -lW "$bin" | grep -q 'program interpreter' || readelf -dW "$bin" | grep -q '(NEEDED)'; then
    readelf -lW "$bin" | grep -i interp >&2 || true
    readelf -dW "$bin" >&2 || true
    die "$bin is not statically linked"
  fi
}

build() {
  local want have built
  want=$(rust_version)
  have=$("$RUSTC" -vV | sed -n 's/^release: //p')
  version_ge "$have" "$want" || die "rustc $have in $TOOLCHAIN is older than rust-version $want; delete $CACHE"
  mkdir -p "$BUILD_DIR" "$OUT_DIR"
  exec 7>"$CACHE/build.lock" # the target directory is shared: build and copy at once
  flock -w 1800 7 || die "another build holds $CACHE/build.lock"
  log "cargo build --release --target $TARGET with Debian's rustc $have (target dir $BUILD_DIR)"
  local started=$SECONDS
  (
    cd "$REPO"
    unset RUSTC_WRAPPER CARGO_ENCODED_RUSTFLAGS CARGO_BUILD_TARGET CARGO_BUILD_RUSTFLAGS
    export RUSTC="$RUSTC" \
      RUSTFLAGS="$RUSTFLAGS_STATIC" \
      CARGO_TARGET_DIR="$BUILD_DIR" \
      CARGO_TERM_COLOR=never \
      CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc \
      CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc \
      AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar
    cargo build --release --locked --target "$TARGET" 7>&- 8>&-
  ) >&2
  log "cargo build took $((SECONDS - started)) s"
  built="$BUILD_DIR/$TARGET/release/docker-stats-exporter"
  check_binary "$built"
  # Another checkout may build into the same target directory next: this one
  # keeps its own copy, replaced in one step.
  cp "$built" "$OUT_DIR/.docker-stats-exporter.tmp"
  mv -f "$OUT_DIR/.docker-stats-exporter.tmp" "$OUT_DIR/docker-stats-exporter"
  exec 7>&-
  BIN="$OUT_DIR/docker-stats-exporter"
}

host_tools
fetch_toolchain
build
if command -v qemu-aarch64-static >/dev/null; then
  log "$(qemu-aarch64-static "$BIN" --version) runs under qemu-aarch64-static"
fi
log "$(stat -c %s "$BIN") bytes, AArch64, statically linked"
echo "$BIN"
