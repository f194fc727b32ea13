#!/usr/bin/env bash
# Debian's PostgreSQL 15 binaries for the store tests (tests/helpers/postgres.py starts a throwaway cluster in a
# temporary directory on a free port as the postgres user). Debian's default cluster is never started.
set -euo pipefail

if [ -x /usr/lib/postgresql/15/bin/initdb ]; then
    echo "postgresql: already installed ($(/usr/lib/postgresql/15/bin/postgres --version))"
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# policy-rc.d 101: apt must not start the default cluster (no systemd here, but be explicit).
printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
chmod +x /usr/sbin/policy-rc.d
trap 'rm -f /usr/sbin/policy-rc.d' EXIT
apt-get install -y -qq --no-install-recommends postgresql >/dev/null
# The package creates and may start "15/main"; stop it if it did, the tests bring their own cluster.
if command -v pg_ctlcluster >/dev/null && pg_lsclusters -h 2>/dev/null | grep -q online; then
    pg_ctlcluster 15 main stop || true
fi
/usr/lib/postgresql/15/bin/postgres --version
