#!/usr/bin/env bash
# Pin the image's base by digest. Run on a machine that reaches the registry (Docker Hub).
#
#   docker/lock-base.sh --check    # confirm the pinned digests exist and the amd64 one is inside
#                                  # the pinned index; say whether the tag has moved since
#   docker/lock-base.sh            # resolve TAG now and write its digests to BASE_IMAGE.lock and
#                                  # to the Dockerfile's `ARG BASE_IMAGE` default
#   docker/lock-base.sh debian:12.13-slim   # ... for another tag
#
# Uses `skopeo inspect --raw`, else `docker buildx imagetools inspect --raw`. The digest of an
# image is the sha256 of its manifest bytes as the registry serves them, so it is computed here
# from the raw manifest rather than trusted from a tool's summary.
set -euo pipefail
cd "$(dirname "$0")/.."
LOCK=docker/BASE_IMAGE.lock
# shellcheck source=docker/BASE_IMAGE.lock
source "$LOCK"

raw_manifest() {  # raw_manifest <image reference>
    if command -v skopeo >/dev/null; then
        skopeo inspect --raw "docker://docker.io/$1"
    elif command -v docker >/dev/null; then
        docker buildx imagetools inspect --raw "$1"
    else
        echo "lock-base.sh: needs skopeo or docker buildx" >&2
        exit 2
    fi
}

# The bytes go through a file: $(...) would drop a trailing newline and change the digest.
digest_of() { printf 'sha256:%s' "$(sha256sum <"$1" | cut -d' ' -f1)"; }

amd64_in() {  # the linux/amd64 manifest digest listed in a raw index
    python3 -c 'import json, sys
m = json.load(sys.stdin)
print(next((d["digest"] for d in m.get("manifests", [])
           if d.get("platform", {}).get("os") == "linux"
           and d.get("platform", {}).get("architecture") == "amd64"), ""))'
}

index="$(mktemp)"
trap 'rm -f "$index"' EXIT
repo="${TAG%%:*}"
if [[ "${1:-}" == "--check" ]]; then
    raw_manifest "$repo@$DIGEST" >"$index"
    [[ "$(digest_of "$index")" == "$DIGEST" ]] || { echo "digest mismatch for $DIGEST" >&2; exit 1; }
    listed="$(amd64_in <"$index")"
    [[ -n "$listed" ]] || listed="$DIGEST"  # a single-platform manifest, not an index
    if [[ -z "$AMD64_DIGEST" && -n "$listed" ]]; then  # not known when the digest was pinned
        sed -i "s|^AMD64_DIGEST=.*|AMD64_DIGEST=$listed|" "$LOCK"
        AMD64_DIGEST="$listed"
    fi
    [[ "$listed" == "$AMD64_DIGEST" ]] || {
        echo "the pinned index lists linux/amd64 as $listed, not $AMD64_DIGEST" >&2
        exit 1
    }
    echo "ok: $repo@$DIGEST exists; its linux/amd64 manifest is $AMD64_DIGEST"
    raw_manifest "$TAG" >"$index"
    now="$(digest_of "$index")"
    [[ "$now" == "$DIGEST" ]] || echo "note: $TAG now points at $now (run without --check to move)"
    sed -i 's/^VERIFIED=.*/VERIFIED=yes/' "$LOCK"
    exit 0
fi

TAG="${1:-$TAG}"
repo="${TAG%%:*}"
raw_manifest "$TAG" >"$index"
DIGEST="$(digest_of "$index")"
AMD64_DIGEST="$(amd64_in <"$index")"
sed -i -e "s|^TAG=.*|TAG=$TAG|" -e "s|^DIGEST=.*|DIGEST=$DIGEST|" \
    -e "s|^AMD64_DIGEST=.*|AMD64_DIGEST=$AMD64_DIGEST|" -e 's/^VERIFIED=.*/VERIFIED=yes/' "$LOCK"
sed -i "s|^ARG BASE_IMAGE=.*|ARG BASE_IMAGE=$TAG@$DIGEST|" Dockerfile
echo "pinned $TAG@$DIGEST (linux/amd64 $AMD64_DIGEST) in $LOCK and Dockerfile"
