#!/usr/bin/env bash
# A shell entry point: `proj run example-projects/scripts -e count.sh -P upto=3` passes `--upto 3`.
set -euo pipefail
upto=3
while [ $# -gt 0 ]; do
  case "$1" in
    --upto) upto="$2"; shift 2 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
for i in $(seq 1 "$upto"); do echo "count $i"; done
