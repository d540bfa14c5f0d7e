#!/usr/bin/env bash
# Writes the root filesystem of the test image to stdout as a tar stream:
# Debian's static busybox (package busybox-static) with the applets the tests
# call. The one definition for every engine the tests use, so the image is the
# same everywhere and no registry is needed:
#   scripts/busybox-rootfs.sh | docker import - dse-test/busybox:latest
set -euo pipefail

BUSYBOX=/bin/busybox
[ -x "$BUSYBOX" ] || {
  echo "busybox-rootfs: $BUSYBOX is missing (apt-get install busybox-static)" >&2
  exit 1
}

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/bin" "$root/tmp" "$root/etc"
chmod 1777 "$root/tmp"
cp "$BUSYBOX" "$root/bin/busybox"
for applet in sh sleep yes dd sync cat head wget nc ping true false kill ls; do
  ln -s busybox "$root/bin/$applet"
done
echo 'root:x:0:0:root:/:/bin/sh' >"$root/etc/passwd"
tar -C "$root" -c .
