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

# Live dockerd processes. A killed dockerd can linger as a zombie (<defunct>)
# when PID 1 does not reap it: it matches pgrep and `kill -0` but serves nothing.
live_dockerd_pids() {
    local p state
    for p in $(pgrep -x dockerd || true); do
        state="$(ps -o stat= -p "$p" 2>/dev/null || true)"
        case "$state" in "" | Z*) ;; *) echo "$p" ;; esac
    done
}

pids="$(live_dockerd_pids | tr '\n' ' ')"
if [ -n "${pids// /}" ]; then
    log "a dockerd process is already running (pid ${pids% }); waiting for it"
    log_from=1
else
    # No live dockerd, so any pid file was left by a killed daemon; dockerd
    # refuses to start while it names a running process (e.g. its own zombie).
    if [ -f /var/run/docker.pid ]; then
        log "removing stale /var/run/docker.pid (pid $(cat /var/run/docker.pid 2>/dev/null || echo ?))"
        rm -f /var/run/docker.pid
    fi
    mkdir -p "$(dirname "$DOCKERD_LOG")"
    touch "$DOCKERD_LOG"
    log_from=$(($(wc -l <"$DOCKERD_LOG") + 1))   # show only this start's lines on failure
    log "starting dockerd (log: $DOCKERD_LOG)"
    nohup dockerd >>"$DOCKERD_LOG" 2>&1 </dev/null &
    disown || true
fi

start=$SECONDS
deadline=$((SECONDS + DOCKERD_TIMEOUT))
until docker_answers; do
    if [ "$SECONDS" -ge "$deadline" ]; then
        log "docker info did not answer within ${DOCKERD_TIMEOUT} s; tail of $DOCKERD_LOG:"
        tail -n "+$log_from" "$DOCKERD_LOG" 2>/dev/null | tail -n 50 >&2 || true
        exit 1
    fi
    sleep 0.2
done
log "docker daemon answers (waited $((SECONDS - start)) s): $(docker info --format 'server {{.ServerVersion}}, storage {{.Driver}}')"
