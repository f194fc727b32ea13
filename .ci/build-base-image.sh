#!/usr/bin/env bash
# Build an offline Python base image from Debian's own packages (no registry pulls).
#
# Usage: .ci/build-base-image.sh [NAME [EXTRA_TAG...]]
#        .ci/build-base-image.sh --print-mirror   (show the mirror it would use)
#   NAME        final image name           (default: proj-base/python:3.11)
#   EXTRA_TAG   more names for that image  (default: python:3.11-slim, or the
#               space-separated list in $BASE_IMAGE_EXTRA_TAGS; set that to ""
#               to add none). The default lets unmodified example projects whose
#               docker_env names python:3.11-slim resolve offline.
#
# Environment knobs:
#   BASE_IMAGE_SUITE     Debian suite           (default: bookworm -> Python 3.11)
#   BASE_IMAGE_PACKAGES  comma-separated list   (default below)
#   BASE_IMAGE_MIRROR    Debian mirror URI      (default: read from this machine's apt sources)
#   BASE_IMAGE_REBUILD=1 rebuild even when NAME already exists
#   APT_ETC              where to read apt sources from (default: /etc/apt)
#
# Idempotent: when NAME exists, nothing is built and only the extra tags are
# (re)applied. A new image is imported under a temporary tag, smoke-tested, and
# only then tagged NAME (and the extra tags); the temporary tag is always removed.
#
# The image is "slim" like Debian's docker images (no man pages, docs except
# copyright files, or translations), has `python` -> python3 (python-is-python3),
# pip usable as in the official python images (Debian's PEP 668
# EXTERNALLY-MANAGED marker removed), ca-certificates for https, LANG=C.UTF-8,
# and CMD ["python3"].
set -euo pipefail

PRINT_MIRROR=0
if [ "${1:-}" = "--print-mirror" ]; then PRINT_MIRROR=1; shift; fi
NAME="${1:-proj-base/python:3.11}"
if [ "$#" -ge 2 ]; then
    EXTRA_TAGS=("${@:2}")
else
    read -r -a EXTRA_TAGS <<<"${BASE_IMAGE_EXTRA_TAGS-python:3.11-slim}"
fi
SUITE="${BASE_IMAGE_SUITE:-bookworm}"
PACKAGES="${BASE_IMAGE_PACKAGES:-python3,python-is-python3,python3-pip,ca-certificates}"
APT_ETC="${APT_ETC:-/etc/apt}"
export DEBIAN_FRONTEND=noninteractive
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

log() { printf '[build-base-image] %s\n' "$*" >&2; }

image_id() { docker image inspect --format '{{.Id}}' "$1" 2>/dev/null; }

apply_extra_tags() {
    local id tag
    id="$(image_id "$NAME")"
    for tag in "${EXTRA_TAGS[@]}"; do
        [ -n "$tag" ] || continue
        if [ "$(image_id "$tag" || true)" = "$id" ]; then
            log "tag $tag already points to $NAME"
        else
            docker tag "$NAME" "$tag"
            log "tagged $NAME as $tag"
        fi
    done
}

# Print the first Debian mirror URI of this machine's enabled apt sources that
# serves SUITE itself (not SUITE-security/-updates). Reads one-line .list files
# and deb822 .sources files (Types:/URIs:/Suites:/Enabled: fields).
find_mirror() {
    local files=() f
    [ -f "$APT_ETC/sources.list" ] && files+=("$APT_ETC/sources.list")
    for f in "$APT_ETC"/sources.list.d/*.list "$APT_ETC"/sources.list.d/*.sources; do
        [ -f "$f" ] && files+=("$f")
    done
    [ "${#files[@]}" -gt 0 ] || return 1
    local uri
    for f in "${files[@]}"; do
        case "$f" in
        *.sources)
            uri="$(awk -v suite="$SUITE" '
                function flush() {
                    if (types ~ /(^| )deb( |$)/ && (" " suites " ") ~ (" " suite " ") \
                        && tolower(enabled) != "no" && uris != "" && !found) {
                        split(uris, u, " "); print u[1]; found = 1
                    }
                    types = ""; uris = ""; suites = ""; enabled = ""
                }
                /^[ \t]*#/ { next }
                /^[ \t]*$/ { flush(); next }
                /^[ \t]/   { next }   # continuation lines (e.g. inline keys)
                {
                    key = tolower($1); sub(/:$/, "", key)
                    val = $0; sub(/^[^:]*:[ \t]*/, "", val); gsub(/[ \t]+/, " ", val)
                    if (key == "types") types = val
                    else if (key == "uris") uris = val
                    else if (key == "suites") suites = val
                    else if (key == "enabled") enabled = val
                }
                END { flush() }' "$f")"
            ;;
        *)
            uri="$(awk -v suite="$SUITE" '
                /^[ \t]*#/ { next }
                $1 == "deb" {
                    i = 2
                    if ($i ~ /^\[/) { while ($i !~ /\]$/ && i < NF) i++; i++ }
                    if ($(i + 1) == suite) { print $i; exit }
                }' "$f")"
            ;;
        esac
        if [ -n "$uri" ]; then
            printf '%s\n' "${uri%/}"
            return 0
        fi
    done
    return 1
}

if [ "$PRINT_MIRROR" = 1 ]; then
    find_mirror
    exit
fi

if ! docker info >/dev/null 2>&1; then
    log "docker daemon does not answer: run .ci/install-docker.sh first"
    exit 1
fi

# Serialise concurrent runs (two engineers / CI building at the same time).
exec 9>/var/lock/proj-build-base-image.lock
flock 9

if [ -n "$(image_id "$NAME" || true)" ] && [ "${BASE_IMAGE_REBUILD:-0}" != 1 ]; then
    log "image $NAME already exists; not rebuilding"
    apply_extra_tags
    exit 0
fi

if ! command -v mmdebstrap >/dev/null 2>&1; then
    log "installing mmdebstrap"
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends mmdebstrap >/dev/null
fi
HOOKS=/usr/share/mmdebstrap/hooks/merged-usr
[ -d "$HOOKS" ] || { log "missing $HOOKS (mmdebstrap too old?)"; exit 1; }

MIRROR="${BASE_IMAGE_MIRROR:-$(find_mirror || true)}"
if [ -z "$MIRROR" ]; then
    log "no enabled 'deb' source for suite $SUITE in $APT_ETC/sources.list{,.d/*}; set BASE_IMAGE_MIRROR"
    exit 1
fi

TMP_TAG="proj-base-tmp/python:build-$$"
BUILD_LOG="$(mktemp /tmp/proj-build-base-image.XXXXXX.log)"
cleanup() {
    docker image rm -f "$TMP_TAG" >/dev/null 2>&1 || true
    rm -f "$BUILD_LOG"
}
trap cleanup EXIT

log "building $NAME from $SUITE ($PACKAGES) using mirror $MIRROR"
start=$SECONDS
# mmdebstrap writes the root filesystem as a tar stream to stdout ("-");
# its (chatty) progress goes to BUILD_LOG, shown only on failure.
if ! mmdebstrap --quiet --mode=root --variant=minbase \
    --include="$PACKAGES" \
    --hook-dir="$HOOKS" \
    --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-include=/usr/share/locale/locale.alias' \
    --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/info/*' \
    --customize-hook='rm -f "$1"/usr/lib/python3*/EXTERNALLY-MANAGED' \
    "$SUITE" - "$MIRROR" 2>"$BUILD_LOG" |
    docker import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV LANG=C.UTF-8' \
        --change 'CMD ["python3"]' \
        - "$TMP_TAG" >/dev/null; then
    log "mmdebstrap | docker import failed; tail of the mmdebstrap log:"
    tail -n 40 "$BUILD_LOG" >&2
    exit 1
fi
log "imported $TMP_TAG in $((SECONDS - start)) s"

log "smoke test"
docker run --rm "$TMP_TAG" python3 -c 'import sys; print(sys.version)'
smoke='python -c "import ssl, json, sqlite3"'
case ",$PACKAGES," in *,python3-pip,*) smoke="$smoke && python -m pip --version >/dev/null" ;; esac
docker run --rm "$TMP_TAG" sh -c "$smoke" || { log "smoke test failed: $smoke"; exit 1; }

OLD_ID="$(image_id "$NAME" || true)"
docker tag "$TMP_TAG" "$NAME"
log "tagged $NAME ($(docker image inspect --format '{{.Size}}' "$NAME" | awk '{printf "%.0f MB", $1/1e6}'))"
apply_extra_tags
# After a rebuild, drop the previous image if nothing else uses it (no -f:
# docker refuses while it still has other tags or containers).
if [ -n "$OLD_ID" ] && [ "$OLD_ID" != "$(image_id "$NAME")" ]; then
    docker image rm "$OLD_ID" >/dev/null 2>&1 && log "removed previous image ${OLD_ID#sha256:}" || true
fi
