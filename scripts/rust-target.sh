#!/bin/sh
# Prints the Rust target triple to build the image's binary for.
#
# In a BuildKit build, TARGETPLATFORM (linux/amd64, linux/arm64, ...) or
# TARGETARCH (amd64, arm64) names the platform the image is built for:
#
#   linux/amd64 -> x86_64-unknown-linux-gnu
#   linux/arm64 -> aarch64-unknown-linux-gnu
#
# When neither is set (the classic builder sets nothing), the builder's own
# host target (`rustc -vV`) is used: the builder stage runs on the image's
# platform, so that is the same thing. Any other platform is an error that
# names it. POSIX sh: it runs in the builder image before anything else.
set -eu

arch="${TARGETARCH:-}"
if [ -n "${TARGETPLATFORM:-}" ]; then
  os="${TARGETPLATFORM%%/*}"
  rest="${TARGETPLATFORM#*/}"
  if [ "$os" != linux ] || [ "$rest" = "$TARGETPLATFORM" ]; then
    echo "rust-target: unsupported platform $TARGETPLATFORM (supported: linux/amd64, linux/arm64)" >&2
    exit 1
  fi
  arch="${rest%%/*}"
fi

case "$arch" in
  amd64) echo x86_64-unknown-linux-gnu ;;
  arm64) echo aarch64-unknown-linux-gnu ;;
  "")
    host=$(rustc -vV | sed -n 's/^host: //p')
    if [ -z "$host" ]; then
      echo "rust-target: no TARGETPLATFORM/TARGETARCH and \`rustc -vV\` names no host target" >&2
      exit 1
    fi
    echo "$host"
    ;;
  *)
    echo "rust-target: unsupported platform ${TARGETPLATFORM:-linux/$arch} (supported: linux/amd64, linux/arm64)" >&2
    exit 1
    ;;
esac
