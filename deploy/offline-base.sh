#!/bin/sh
# For hosts without Docker Hub access: build a local stand-in for the CPU image's base
# (python:3.11-slim-bookworm) from a Debian mirror, so `docker build --build-arg VARIANT=cpu` needs no
# registry. Debian bookworm's python3 is 3.11, like the official image's.
#
#   sudo deploy/offline-base.sh [IMAGE] [MIRROR]
#   defaults: IMAGE=crosspose-base:bookworm  MIRROR=http://deb.debian.org/debian (or your local mirror)
#   SECURITY_MIRROR=…   the bookworm-security archive (default: MIRROR with /debian -> /debian-security)
#   EXTRA_CA_CERTS=ca.pem   PEM file of CA certificates to trust inside the image (one or several), for
#                       a network whose HTTPS goes through a TLS-inspecting proxy or a mirror with a
#                       private CA; pip in the build (and in the image) then accepts them.
#
# Then build with  --build-arg CPU_BASE=crosspose-base:bookworm  (deploy/README.md, "Building without
# Docker Hub"). Needs root, debootstrap (apt-get install debootstrap) and about 400 MB in $TMPDIR.
set -eu

image="${1:-crosspose-base:bookworm}"
mirror="${2:-http://deb.debian.org/debian}"

if [ "$(id -u)" -ne 0 ]; then
    echo "offline-base.sh: debootstrap needs root; run it with sudo" >&2
    exit 77
fi
if ! command -v debootstrap >/dev/null 2>&1; then
    echo "offline-base.sh: debootstrap is not installed (apt-get install debootstrap)" >&2
    exit 69
fi

security="${SECURITY_MIRROR:-${mirror%/debian}/debian-security}"
extra_ca="${EXTRA_CA_CERTS:-}"
if [ -n "$extra_ca" ] && ! grep -q 'BEGIN CERTIFICATE' "$extra_ca"; then
    echo "offline-base.sh: EXTRA_CA_CERTS=$extra_ca holds no PEM certificate" >&2
    exit 66
fi

rootfs="$(mktemp -d "${TMPDIR:-/tmp}/crosspose-rootfs.XXXXXX")"
trap 'rm -rf "$rootfs"' EXIT
chmod 0755 "$rootfs"   # becomes the image's /

debootstrap --variant=minbase \
    --include=python3,python3-venv,python3-pip,ca-certificates,libglib2.0-0 \
    bookworm "$rootfs" "$mirror"

# The same apt sources a bookworm image has (with the security updates), and no package caches.
cat > "$rootfs/etc/apt/sources.list" <<EOF
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb $security bookworm-security main
EOF
if [ -n "$extra_ca" ]; then
    # update-ca-certificates wants one certificate per .crt file
    awk -v dir="$rootfs/usr/local/share/ca-certificates" '
        /BEGIN CERTIFICATE/ { n++; file = sprintf("%s/extra-ca-%d.crt", dir, n) }
        file { print > file }
        /END CERTIFICATE/ { close(file); file = "" }' "$extra_ca"
    chroot "$rootfs" update-ca-certificates
fi
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/tmp/*

tar -C "$rootfs" -c . | docker import \
    --change 'ENV LANG=C.UTF-8' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["python3"]' \
    - "$image"
echo "offline-base.sh: built $image ($(docker image inspect --format '{{.Size}}' "$image") bytes)"
