#!/usr/bin/env bash
# Make Debian's Chromium available for the UI tests (Debian bookworm, root).
#
# Idempotent: installs the `chromium` package only when /usr/bin/chromium (or
# $PROJ_TEST_CHROMIUM) is missing, running `apt-get update` once for it; prints
# the browser's version either way. The tests drive it through the `playwright`
# Python package (the `test` extra) by its path: never `playwright install`
# (the registries carry no browser builds).
set -euo pipefail

CHROMIUM="${PROJ_TEST_CHROMIUM:-/usr/bin/chromium}"
export DEBIAN_FRONTEND=noninteractive

log() { printf '[install-browser] %s\n' "$*" >&2; }

if [ -x "$CHROMIUM" ]; then
    log "$CHROMIUM already installed; nothing to do"
else
    if [ "$(id -u)" -ne 0 ]; then
        log "must run as root to install chromium"
        exit 1
    fi
    start=$SECONDS
    log "apt-get update"
    apt-get update -qq
    log "apt-get install chromium"
    apt-get install -y -qq --no-install-recommends chromium >/dev/null
    log "chromium installed in $((SECONDS - start)) s"
    if [ ! -x "$CHROMIUM" ]; then
        log "no executable at $CHROMIUM after installing chromium"
        exit 1
    fi
fi
# Debian's wrapper script prints a shell warning on some machines; keep only the version line.
log "$("$CHROMIUM" --headless=new --no-sandbox --version 2>/dev/null | head -n 1)"
