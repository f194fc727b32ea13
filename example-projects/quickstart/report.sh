#!/usr/bin/env bash
set -euo pipefail
echo "report: $1"
echo "run id: ${PROJ_RUN_ID:-none}"
