#!/usr/bin/env bash
# Make a working Docker daemon available (Debian bookworm, root, no systemd).
#
# Idempotent:
#   - does nothing when `docker info` already answers;
#   - installs Debian's docker.io only when `dockerd` is missing (a client-only
#     /usr/local/bin/docker does not count), running `apt-get update` at most once;
#   - starts dockerd in the background only when no dockerd process is running,
#     then polls `docker info` until it answers (timeout: DOCKERD_TIMEOUT, 60 s).
#
# Log of the daemon: DOCKERD_LOG (default /var/log/dockerd.log).
set -euo pipefail

DOCKERD_LOG="${DOCKERD_LOG:-/var/log/dockerd.log}"
DOCKERD_TIMEOUT="${DOCKERD_TIMEOUT:-60}"
export DEBIAN_FRONTEND=noninteractive

log() { printf '[install-docker] %s\n' "$*" >&2; }

docker_answers() {
    command -v docker >/dev/null 2>&1 && timeout 10 docker info >/dev/null 2>&1
}

if docker_answers; then
    log "docker daemon already answers; nothing to do"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    log "must run as root to install/start dockerd"
    exit 1
fi

apt_updated=0
apt_install() {
    if [ "$apt_updated" -eq 0 ]; then
        log "apt-get update"
        apt-get update -qq
        apt_updated=1
    fi
    log "apt-get install $*"
    apt-get install -y -qq --no-install-recommends "$@"
}

# dockerd may live in /usr/sbin, which is not always on PATH for non-login shells.
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

if ! command -v dockerd >/dev/null 2>&1; then
    start=$SECONDS
    apt_install docker.io
    log "docker.io installed in $((SECONDS - start)) s"
fi
if ! command -v docker >/dev/null 2>&1; then
    # dockerd exists but no client at all (unusual): the client is in docker.io too.
    apt_install docker.io
fi

if pgrep -x dockerd >/dev/null 2>&1; then
    log "a dockerd process is already running (pid $(pgrep -x dockerd | tr '\n' ' ')); waiting for it"
else
    # A stale pid file from a killed daemon makes dockerd refuse to start.
    if [ -f /var/run/docker.pid ] && ! kill -0 "$(cat /var/run/docker.pid)" 2>/dev/null; then
        log "removing stale /var/run/docker.pid"
        rm -f /var/run/docker.pid
    fi
    mkdir -p "$(dirname "$DOCKERD_LOG")"
    log "starting dockerd (log: $DOCKERD_LOG)"
    nohup dockerd >>"$DOCKERD_LOG" 2>&1 </dev/null &
    disown || true
fi

start=$SECONDS
deadline=$((SECONDS + DOCKERD_TIMEOUT))
until docker_answers; do
    if [ "$SECONDS" -ge "$deadline" ]; then
        log "docker info did not answer within ${DOCKERD_TIMEOUT} s; tail of $DOCKERD_LOG:"
        tail -n 50 "$DOCKERD_LOG" >&2 || true
        exit 1
    fi
    sleep 0.2
done
log "docker daemon answers (waited $((SECONDS - start)) s): $(docker info --format 'server {{.ServerVersion}}, storage {{.Driver}}')"
