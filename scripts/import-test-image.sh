#!/usr/bin/env bash
# Makes the busybox test image in one engine from this machine's busybox-static
# (no registry needed), unless that engine has it already.
#   scripts/import-test-image.sh [ENGINE_URL]
# The engine: ENGINE_URL, else DOCKER_HOST, else the client's default socket.
# The client: $DOCKER, else /usr/bin/docker. The image: $DSE_TEST_IMAGE, else
# dse-test/busybox:latest.
set -euo pipefail

DOCKER="${DOCKER:-/usr/bin/docker}"
IMAGE="${DSE_TEST_IMAGE:-dse-test/busybox:latest}"
if [ $# -gt 0 ]; then
  export DOCKER_HOST="$1"
fi
where="${DOCKER_HOST:-the default engine}"

if "$DOCKER" image inspect "$IMAGE" >/dev/null 2>&1; then
  exit 0
fi
echo "import-test-image: making $IMAGE on $where from /bin/busybox" >&2
bash "$(dirname "$0")/busybox-rootfs.sh" | "$DOCKER" import - "$IMAGE" >/dev/null
