#!/usr/bin/env bash
# Makes, without any container registry, the builder base image the Dockerfile
# needs, so that `docker build` works on a machine that cannot pull:
#
#   dse-local/rust:bookworm   Debian bookworm (debootstrap, minbase) with gcc,
#                             libc6-dev, ca-certificates (for cargo when it
#                             fetches crates) and this machine's Rust toolchain (its
#                             host target only, e.g. x86_64-unknown-linux-gnu)
#
# The runtime stage is `FROM scratch`, so no runtime base image is needed. Use:
#   docker build --build-arg RUST_IMAGE=dse-local/rust:bookworm -t docker-stats-exporter .
#
# Idempotent: an image that already exists is left alone (FORCE=1 remakes it).
# Needs root (debootstrap; installed with apt-get when missing), a Debian mirror
# (DEBIAN_MIRROR, default: the archive this machine's apt uses, found by
# scripts/debian-mirror.sh) and a rustup toolchain (rustc and cargo on PATH).
# Takes about 2.5 minutes on 2 cores.
#
# For a build without network access inside the container, vendor the crates
# into the build context first (target/ is not committed):
#   cargo vendor --locked --versioned-dirs target/docker-vendor
set -euo pipefail

DOCKER="${DOCKER:-/usr/bin/docker}"
[ -x "$DOCKER" ] || DOCKER=docker
BUILDER_IMAGE="${BUILDER_IMAGE:-dse-local/rust:bookworm}"
SUITE="${DEBIAN_SUITE:-bookworm}"
FORCE="${FORCE:-0}"

log() { echo "make-base-images: $*" >&2; }
die() { log "error: $*"; exit 1; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
have_image() { [ "$FORCE" != 1 ] && "$DOCKER" image inspect "$1" >/dev/null 2>&1; }

"$DOCKER" version --format '{{.Server.APIVersion}}' >/dev/null 2>&1 \
  || die "no Docker engine answers (run scripts/setup-engine.sh)"

work=$(mktemp -d "${TMPDIR:-/tmp}/dse-base.XXXXXX")
cleanup() { as_root rm -rf "$work"; }
trap cleanup EXIT

make_builder() {
  if ! command -v debootstrap >/dev/null && [ ! -x /usr/sbin/debootstrap ]; then
    command -v apt-get >/dev/null || die "debootstrap is missing and this is not a Debian-like system"
    log "installing debootstrap"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      debootstrap >/dev/null
  fi
  command -v rustc >/dev/null || die "rustc is missing on this machine"
  local mirror target sysroot version root="$work/builder" candidate="$BUILDER_IMAGE-unchecked"
  mirror="${DEBIAN_MIRROR:-$(bash "$(dirname "$0")/debian-mirror.sh" "$SUITE")}" \
    || die "no Debian mirror: set DEBIAN_MIRROR"
  target=$(rustc -vV | sed -n 's/^host: //p')
  sysroot=$(rustc --print sysroot)
  version=$(rustc --version | awk '{print $2}')
  [ -x "$sysroot/bin/rustc" ] && [ -x "$sysroot/bin/cargo" ] \
    || die "$sysroot/bin has no rustc+cargo (is this a rustup toolchain?)"
  [ -d "$sysroot/lib/rustlib/$target/lib" ] || die "toolchain at $sysroot lacks the $target std"

  log "debootstrap $SUITE (minbase + gcc libc6-dev ca-certificates) from $mirror"
  as_root env PATH="/usr/sbin:/sbin:$PATH" debootstrap --variant=minbase \
    --include=gcc,libc6-dev,ca-certificates "$SUITE" "$root" "$mirror" \
    >"$work/debootstrap.log" 2>&1 \
    || { tail -n 30 "$work/debootstrap.log" >&2; die "debootstrap failed"; }
  as_root rm -rf "$root/var/cache/apt/archives/"*.deb "$root/var/lib/apt/lists/"* \
    "$root/usr/share/doc" "$root/usr/share/man" "$root/usr/share/info"

  # Rust $version from $sysroot, laid out like the standalone installer does
  # under /usr/local (rustc finds its sysroot from its own path), only what a
  # build for $target needs: rustc, cargo, the compiler's shared libraries and
  # the target's std plus its bundled linker (rust-lld, gcc-ld).
  log "copying Rust $version from $sysroot"
  local dst="$root/usr/local"
  as_root mkdir -p "$dst/bin" "$dst/lib/rustlib" "$root/usr/local/cargo"
  as_root cp "$sysroot/bin/rustc" "$sysroot/bin/cargo" "$dst/bin/"
  as_root cp -a "$sysroot"/lib/*.so* "$dst/lib/"
  as_root cp -a "$sysroot/lib/rustlib/$target" "$dst/lib/rustlib/"
  as_root cp "$sysroot/lib/rustlib/rust-installer-version" "$dst/lib/rustlib/" 2>/dev/null || true

  as_root tar --numeric-owner -C "$root" -c . | "$DOCKER" import \
    --change 'ENV CARGO_HOME=/usr/local/cargo' \
    --change 'ENV PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change "LABEL org.opencontainers.image.description=\"Debian $SUITE + Rust $version ($target), made locally\"" \
    --change 'CMD ["bash"]' \
    --message "Debian $SUITE + Rust $version" \
    - "$candidate" >/dev/null
  # rustc finds its libraries through $ORIGIN, which needs /proc: check in a
  # container rather than in a bare chroot. Only a checked image gets the
  # final tag, so a failed check is redone by the next run.
  if ! "$DOCKER" run --rm --network none "$candidate" \
      sh -c 'rustc --version && cargo --version && cc --version | head -n 1' >&2; then
    "$DOCKER" image rm "$candidate" >/dev/null 2>&1 || true
    die "the toolchain does not run inside $candidate"
  fi
  "$DOCKER" tag "$candidate" "$BUILDER_IMAGE"
  "$DOCKER" image rm "$candidate" >/dev/null
}

start=$(date +%s)
if have_image "$BUILDER_IMAGE"; then
  log "$BUILDER_IMAGE exists, skipped"
else
  log "making $BUILDER_IMAGE"
  make_builder
fi
log "ready: $BUILDER_IMAGE ($(($(date +%s) - start)) s)"
