#!/usr/bin/env bash
# Build a local stand-in for the image's base, for machines that cannot pull from a registry
# (this project's CI). The real base is debian:12.12-slim, pinned by digest (the Dockerfile and
# docker/BASE_IMAGE.lock); here we debootstrap the same release (Debian 12, bookworm, minbase as
# the slim image) and `podman import` it, then build the real Dockerfile over it:
#
#   sudo docker/build-local-base.sh                       # -> localhost/advisor-repro-base:bookworm
#   podman build --isolation chroot --build-arg BASE_IMAGE=localhost/advisor-repro-base:bookworm \
#       --build-arg TORCH_VARIANT=cpu -t advisor-repro:cpu .     # CI's variant
#   podman build --isolation chroot --build-arg BASE_IMAGE=localhost/advisor-repro-base:bookworm \
#       -t advisor-repro:gpu .                                  # the default (GPU) variant
#
# The stand-in follows the current bookworm point release from the mirror, the pinned base a
# fixed one (12.12): the same OS and Python 3.11, package versions a few updates apart.
# SUITE/MIRROR override the release.
#
# Needs root (debootstrap), debootstrap and podman. Env: SUITE, MIRROR, REBUILD=1.
set -euo pipefail

IMAGE="${1:-localhost/advisor-repro-base:bookworm}"
SUITE="${SUITE:-bookworm}"
MIRROR="${MIRROR:-http://deb.debian.org/debian}"

if [[ $(id -u) -ne 0 ]]; then
    echo "build-local-base.sh: needs root (debootstrap creates device nodes and chowns files)" >&2
    exit 2
fi
for tool in debootstrap podman; do
    command -v "$tool" >/dev/null || { echo "build-local-base.sh: $tool is missing" >&2; exit 2; }
done
if [[ -z "${REBUILD:-}" ]] && podman image exists "$IMAGE"; then
    echo "base image $IMAGE exists (REBUILD=1 rebuilds it)"
    exit 0
fi

rootfs="$(mktemp -d /var/tmp/advisor-repro-base.XXXXXX)"
trap 'rm -rf "$rootfs"' EXIT

debootstrap --variant=minbase "$SUITE" "$rootfs" "$MIRROR"
if [[ "$SUITE" == bookworm ]]; then
    # as the official debian:bookworm image: updates and security pockets too
    cat >"$rootfs/etc/apt/sources.list" <<SOURCES
deb $MIRROR bookworm main
deb $MIRROR bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
SOURCES
fi
# what the official Debian/Ubuntu container images leave out: package caches, lists, logs
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
    "$rootfs"/var/log/*.log "$rootfs"/var/cache/debconf/*-old

tar -C "$rootfs" --numeric-owner -c . \
    | podman import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'CMD ["/bin/bash"]' \
        --message "debootstrap --variant=minbase $SUITE $MIRROR" \
        - "$IMAGE"
echo "built $IMAGE ($SUITE from $MIRROR)"
