#!/usr/bin/env bash
# The CI docker tier, in three parts that .ci/run calls (as root):
#   prep     Debian's docker.io, debootstrap and docker-compose if missing; dockerd started
#            (unless one runs already); the debootstrapped base image and the wheelhouse at
#            the same time, then the image's dependency stage. .ci/run runs it in the
#            background while the main tests run.
#   run      the image (the lab's source on the dependency stage); the docker fault tests;
#            `nines up --runtime docker`; one experiment (a chat container killed under
#            load, integrity checked); `nines down`; a check that nothing of ours is left.
#   cleanup  whatever is still up: the lab, the test containers, and dockerd if prep started
#            it. Safe to call at any point, also twice.
# Every step has a time limit and prints its duration with the load average.
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=${NINES_CI_WORK:-/tmp/nineslab-ci-docker}
STATE=$WORK/state
STARTED_DOCKERD=$WORK/started-dockerd      # present: prep started dockerd, cleanup stops it
EXPERIMENT=docker/experiments/chat-container-kill.yaml
export DEBIAN_FRONTEND=noninteractive

say() { echo "docker-tier: $*"; }
load() { cut -d' ' -f1-3 /proc/loadavg; }

# step NAME LIMIT COMMAND...: run COMMAND with a time limit, print how long it took
step() {
    local name=$1 limit=$2 began=$SECONDS rc=0
    shift 2
    timeout --kill-after=15 "$limit" "$@" || rc=$?
    if [ "$rc" = 0 ]; then
        say "$name: ok in $((SECONDS - began)) s (load $(load))"
    else
        [ "$rc" = 124 ] && say "$name: timed out after $limit s" >&2
        say "$name: FAILED (exit $rc) after $((SECONDS - began)) s (load $(load))" >&2
    fi
    return "$rc"
}

engine_up() { docker info >/dev/null 2>&1; }

install_packages() {
    local missing=()
    command -v dockerd >/dev/null || missing+=(docker.io)
    # the keyring: debootstrap only recommends it, and without it cannot check the archive
    command -v debootstrap >/dev/null || missing+=(debootstrap debian-archive-keyring)
    command -v docker-compose >/dev/null || missing+=(docker-compose)
    [ ${#missing[@]} = 0 ] && { say "packages: already installed"; return 0; }
    step "apt-get update" 180 apt-get update -qq
    step "apt-get install ${missing[*]}" 300 apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

start_dockerd() {
    if engine_up; then
        say "dockerd: one runs already, using it"
        return 0
    fi
    mkdir -p "$WORK"
    touch "$STARTED_DOCKERD"
    setsid dockerd >"$WORK/dockerd.log" 2>&1 </dev/null &
    # poll until the engine answers (dockerd writes /var/run/docker.pid, which cleanup reads)
    if ! step "dockerd start" 60 bash -c 'until docker info >/dev/null 2>&1; do sleep 0.5; done'; then
        tail -n 20 "$WORK/dockerd.log" >&2
        return 1
    fi
}

prep() {
    rm -rf "$WORK" && mkdir -p "$WORK"
    install_packages
    start_dockerd
    local rc=0
    local base wheels
    step "base image (debootstrap)" 600 bash docker/build-offline.sh base &
    base=$!
    step "wheelhouse (pip)" 600 bash docker/build-offline.sh wheels &
    wheels=$!
    wait "$base" || rc=1
    wait "$wheels" || rc=1
    [ "$rc" = 0 ] || return "$rc"
    step "image dependencies (docker build --target deps)" 600 bash docker/build-offline.sh deps
}

leftovers() {   # what of ours the engine still has, one line each
    for label in com.docker.compose.project=nineslab nineslab.test; do
        docker ps -aq --filter "label=$label" | sed 's/^/container /'
        docker network ls -q --filter "label=$label" | sed 's/^/network /'
        docker volume ls -q --filter "label=$label" | sed 's/^/volume /'
    done | sort -u
}

run() {
    # prep ran niced beside the main tests; the engine and the containers it starts from now
    # on get the normal priority again (the load generator and the lab compete fairly)
    local pids
    pids=$(pgrep -x 'dockerd|containerd' || true)
    [ -z "$pids" ] || renice -n 0 -p $pids >/dev/null || true
    step "image (docker build, offline)" 480 bash docker/build-offline.sh image
    step "docker fault tests" 240 env NINES_DOCKER_TESTS=1 python3 -m pytest -q -p no:cacheprovider tests/docker
    step "nines up --runtime docker" 360 python3 -m lab.cli up --runtime docker --state-dir "$STATE"
    local rc=0
    step "experiment $(basename "$EXPERIMENT" .yaml)" 240 bash docker/ci-tier.sh experiment || rc=$?
    step "nines down" 180 python3 -m lab.cli down --state-dir "$STATE"
    [ "$rc" = 0 ] || return "$rc"
    local left
    left=$(leftovers)
    [ -z "$left" ] || { say "left behind: $(echo "$left" | tr '\n' ' ')" >&2; return 1; }
    say "nothing of ours left in the engine"
}

experiment() {
    local rc=0
    python3 -m lab.cli chaos run "$EXPERIMENT" --state-dir "$STATE" --out "$WORK/run" || rc=$?
    # integrity is the gate: 12 (an invariant violated), 20 (the lab failed) or anything else
    # fails the tier; 11 (the hypothesis deviated: availability or recovery time on a busy
    # CPU) is reported and passes
    case $rc in
        0) ;;
        11) say "the hypothesis deviated, integrity held: journal in $WORK/run/experiments" ;;
        *) say "journal in $WORK/run/experiments" >&2; return "$rc" ;;
    esac
}

cleanup() {
    if engine_up; then
        if [ -f "$STATE/state.json" ]; then
            timeout 180 python3 -m lab.cli down --state-dir "$STATE" >/dev/null 2>&1 || true
        fi
        leftovers | while read -r what id; do
            case $what in
                container) docker rm -f "$id" >/dev/null 2>&1 || true ;;
                network) docker network rm "$id" >/dev/null 2>&1 || true ;;
                volume) docker volume rm -f "$id" >/dev/null 2>&1 || true ;;
            esac
        done
    fi
    if [ -f "$STARTED_DOCKERD" ]; then
        local pid
        pid=$(cat /var/run/docker.pid 2>/dev/null || true)
        if [ -n "$pid" ] && kill "$pid" 2>/dev/null; then
            # dockerd stops its containers and its own containerd before it exits
            timeout 60 bash -c "while kill -0 $pid 2>/dev/null; do sleep 0.5; done" || kill -9 "$pid" 2>/dev/null || true
        fi
        rm -f "$STARTED_DOCKERD"
        pgrep -x dockerd >/dev/null && { say "dockerd still runs after cleanup" >&2; return 1; }
        say "dockerd stopped"
    fi
    return 0
}

case "${1:-}" in
    prep|run|experiment|cleanup) "$1" ;;
    *) echo "usage: docker/ci-tier.sh prep|run|experiment|cleanup" >&2; exit 2 ;;
esac
