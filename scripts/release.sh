#!/usr/bin/env bash
# Builds a release from a clean checkout into target/release-artifacts/:
#
#   scripts/release.sh          # prints the folder's path as its last stdout line
#
#   docker-stats-exporter-VERSION-linux-amd64      static binary
#   docker-stats-exporter-VERSION-linux-arm64      static binary (cross-built)
#   docker-stats-exporter_VERSION-1_amd64.deb      Debian packages
#   docker-stats-exporter_VERSION-1_arm64.deb
#   docker-stats-exporter-VERSION-linux-amd64.oci.tar   images, OCI archives
#   docker-stats-exporter-VERSION-linux-arm64.oci.tar
#   SHA256SUMS
#
# VERSION is Cargo.toml's; every binary's --version names the commit. The
# amd64 image is built from the Dockerfile on this machine's engine (the
# local builder base of scripts/make-base-images.sh, vendored crates: no
# registry), its binary taken out of it. The arm64 binary is
# scripts/arm64-build.sh's, and its image the amd64 one's files with that
# binary in its place (the image is FROM scratch: nothing else in it
# depends on the platform; scripts/oci-archive.py). DSE_RELEASE_DIRTY=1
# builds from a checkout with changes (the artifacts then say nothing true
# about a commit).
set -euo pipefail
cd "$(dirname "$0")/.."
PROG=release
USAGE_LINES=4,4
# shellcheck source=scripts/lib.sh
. scripts/lib.sh
[ $# -eq 0 ] || usage

if [ -n "$(git status --porcelain --untracked-files=normal)" ] && [ -z "${DSE_RELEASE_DIRTY:-}" ]; then
  git status --short >&2
  die "the checkout has changes: commit them (or set DSE_RELEASE_DIRTY=1)"
fi
name=docker-stats-exporter
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
commit=$(git rev-parse --short=12 HEAD)
# (build.rs names the same commit for the arm64 build, from git.)
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct)}
out=$PWD/target/release-artifacts
rm -rf "$out"
mkdir -p "$out"
work=$(mktemp -d -t dse-release.XXXXXX)
trap 'rm -rf "$work"' EXIT
docker=${DOCKER:-docker}

log "$name $version, commit $commit"
log "the amd64 image (docker build)"
DOCKER=$docker bash scripts/make-base-images.sh >&2
if [ ! -d target/docker-vendor ] || ! cmp -s Cargo.lock target/docker-vendor.stamp; then
  cargo vendor --locked --versioned-dirs target/docker-vendor >/dev/null
  cp Cargo.lock target/docker-vendor.stamp
fi
tag="$name:$version"
"$docker" build --pull=false --force-rm -q -t "$tag" \
  --build-arg RUST_IMAGE=dse-local/rust:bookworm --build-arg "DSE_COMMIT=$commit" . >&2
"$docker" save "$tag" >"$work/image.tar"
cid=$("$docker" create "$tag")
"$docker" cp "$cid:/$name" "$out/$name-$version-linux-amd64"
"$docker" rm "$cid" >/dev/null
amd64=$out/$name-$version-linux-amd64
"$amd64" --version | grep -qF "(commit $commit)" || die "$amd64 --version does not name commit $commit"

log "the arm64 binary (scripts/arm64-build.sh)"
arm64_built=$(bash scripts/arm64-build.sh | tail -n 1)
cp "$arm64_built" "$out/$name-$version-linux-arm64"
arm64=$out/$name-$version-linux-arm64

log "the Debian packages"
DSE_HELP_BIN=$amd64 bash scripts/package-deb.sh amd64 "$amd64" "$out" >/dev/null
DSE_HELP_BIN=$amd64 bash scripts/package-deb.sh arm64 "$arm64" "$out" >/dev/null

log "the images as OCI archives"
python3 scripts/oci-archive.py "$work/image.tar" "$out/$name-$version-linux-amd64.oci.tar" "$version"
python3 scripts/oci-archive.py "$work/image.tar" "$out/$name-$version-linux-arm64.oci.tar" "$version" \
  arm64 "$arm64" "$name"

(cd "$out" && sha256sum -- * >SHA256SUMS)
ls -l "$out" >&2
echo "$out"
