#!/usr/bin/env bash
# Build the lab image on a machine with no container registry:
#  base    a Debian bookworm root file system by debootstrap (minbase + python3-venv), imported
#          as nineslab-base:bookworm (bookworm's python3 is 3.11, the ABI of the wheels below);
#          the .debs stay in /var/cache/nineslab-debootstrap for the next build;
#  wheels  docker/wheelhouse: every dependency of the lab as a wheel, made on the host by pip
#          (the lab itself is not in it: the image takes the source, so a code change does
#          not invalidate the dependency layer; nothing is built in the source tree);
#  deps    the image's dependency stage (docker build --target deps), from that base,
#          installing from the wheelhouse only; tagged nineslab-deps:latest;
#  image   the lab image: that stage plus the lab's source (seconds when deps is built).
# `docker/build-offline.sh` does all four (base and wheels at the same time); one step by
# name runs only that step. Needs root, a running dockerd and debootstrap. A base image that
# is already there is reused; every step prints its duration.
set -euo pipefail
cd "$(dirname "$0")/.."
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
BASE=${NINES_BASE_IMAGE:-nineslab-base:bookworm}
IMAGE=${NINES_IMAGE:-nineslab:latest}
DEPS_IMAGE=${IMAGE%%:*}-deps:latest
DEB_CACHE=${NINES_DEB_CACHE:-/var/cache/nineslab-debootstrap}
WHEEL_LOG=${TMPDIR:-/tmp}/nineslab-wheelhouse.log
BUILD_LOG=${TMPDIR:-/tmp}/nineslab-docker-build.log

say() { echo "build-offline: $*"; }

base() (   # a subshell: its EXIT trap removes the root file system, also on failure
    if docker image inspect "$BASE" >/dev/null 2>&1; then
        say "base $BASE already there"
        return 0
    fi
    began=$SECONDS
    rootfs=$(mktemp -d /tmp/nineslab-rootfs.XXXXXX)
    # shellcheck disable=SC2064 # the path is fixed now
    trap "rm -rf '$rootfs' '$rootfs.log'" EXIT
    mkdir -p "$DEB_CACHE"
    if ! debootstrap --variant=minbase --include=python3-venv --cache-dir="$DEB_CACHE" \
            bookworm "$rootfs" "$MIRROR" >"$rootfs.log" 2>&1; then
        tail -n 20 "$rootfs.log" >&2
        say "debootstrap failed (log above)" >&2
        return 1
    fi
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    tar -C "$rootfs" -c . | docker import - "$BASE" >/dev/null
    say "base $BASE in $((SECONDS - began)) s"
)

wheels() {
    local began=$SECONDS
    find docker/wheelhouse -name '*.whl' -delete     # two versions of one package would conflict
    # the dependencies of pyproject.toml, not the lab (no build in the source tree, which
    # `pip install -e .` may be using at the same time); async-timeout: redis needs it below
    # Python 3.11.3, and bookworm has 3.11.2 (the host may not)
    python3 -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))' \
        >docker/wheelhouse/requirements.txt
    if ! python3 -m pip wheel -q --wheel-dir docker/wheelhouse -r docker/wheelhouse/requirements.txt async-timeout \
            >"$WHEEL_LOG" 2>&1; then
        grep -v 'is ignored: it is neither' "$WHEEL_LOG" | tail -n 20 >&2
        say "pip wheel failed (log above)" >&2
        return 1
    fi
    say "wheelhouse ($(find docker/wheelhouse -name '*.whl' | wc -l) wheels) in $((SECONDS - began)) s"
}

build() {   # build TAG [docker build options]
    local tag=$1
    shift
    if ! docker build -q -f docker/Dockerfile --build-arg BASE_IMAGE="$BASE" --build-arg OFFLINE=1 \
            -t "$tag" "$@" . >"$BUILD_LOG" 2>&1; then
        tail -n 30 "$BUILD_LOG" >&2
        say "docker build of $tag failed (log above)" >&2
        return 1
    fi
}

deps() {
    local began=$SECONDS
    build "$DEPS_IMAGE" --target deps
    say "dependency stage $DEPS_IMAGE in $((SECONDS - began)) s"
}

image() {
    local began=$SECONDS
    build "$IMAGE"
    docker image prune -f >/dev/null     # the images this build replaced, if any
    say "image $IMAGE in $((SECONDS - began)) s"
}

case "${1:-all}" in
    base) base ;;
    wheels) wheels ;;
    deps) deps ;;
    image) image ;;
    all)
        base & base_pid=$!
        wheels & wheels_pid=$!
        ok=1
        wait "$base_pid" || ok=0
        wait "$wheels_pid" || ok=0
        [ "$ok" = 1 ] || { say "a step failed" >&2; exit 1; }
        deps
        image ;;
    *) echo "usage: docker/build-offline.sh [base|wheels|deps|image|all]" >&2; exit 2 ;;
esac
