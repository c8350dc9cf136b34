#!/usr/bin/env bash
# Build the lab image on a machine with no container registry:
#  1. a Debian bookworm root file system by debootstrap, imported as nineslab-base:bookworm
#     (bookworm's python3 is 3.11, the ABI of the wheels below);
#  2. a wheelhouse of the lab and every dependency, made on the host with pip;
#  3. docker build from that base, installing from the wheelhouse only.
# Needs root, docker (a running dockerd) and debootstrap. Idempotent: a base or wheel that
# is already there is reused.
set -euo pipefail
cd "$(dirname "$0")/.."
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
BASE=${NINES_BASE_IMAGE:-nineslab-base:bookworm}
IMAGE=${NINES_IMAGE:-nineslab:latest}

if ! docker image inspect "$BASE" >/dev/null 2>&1; then
    rootfs=$(mktemp -d /tmp/nineslab-rootfs.XXXXXX)
    trap 'rm -rf "$rootfs"' EXIT
    echo "build-offline: debootstrap bookworm into $rootfs"
    debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
        bookworm "$rootfs" "$MIRROR" >/dev/null
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    tar -C "$rootfs" -c . | docker import - "$BASE" >/dev/null
fi

echo "build-offline: wheelhouse"
# async-timeout: redis needs it below Python 3.11.3, and bookworm has 3.11.2 (the host may not)
python3 -m pip wheel -q --wheel-dir docker/wheelhouse . async-timeout

echo "build-offline: image $IMAGE"
docker build -q -f docker/Dockerfile --build-arg BASE_IMAGE="$BASE" --build-arg OFFLINE=1 -t "$IMAGE" . >/dev/null
echo "build-offline: done ($IMAGE)"
