#!/usr/bin/env bash
# Make sure the base image the Containerfile's FROM names is in local storage.
#
# On a machine that reaches a registry it is simply pulled. Where no registry can be
# reached (Wharf's own build machines), a Debian bookworm root file system is built with
# debootstrap and imported under the same name, so the Containerfile builds unchanged.
# Usage: scripts/image-base.sh [IMAGE]   (default: docker.io/library/debian:bookworm-slim)
set -euo pipefail
BASE=${1:-docker.io/library/debian:bookworm-slim}
STORAGE_DRIVER=${STORAGE_DRIVER:-vfs}
buildah() { command buildah --storage-driver "$STORAGE_DRIVER" "$@"; }
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

if buildah inspect --type image "$BASE" >/dev/null 2>&1; then
  exit 0
fi
if buildah pull --quiet "$BASE" >/dev/null 2>&1; then
  echo "Pulled $BASE."
  exit 0
fi

echo "$BASE cannot be pulled here: building it with debootstrap (about a minute)…"
command -v debootstrap >/dev/null || { echo "debootstrap is not installed (apt-get install debootstrap)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
rootfs=$work/rootfs
debootstrap --variant=minbase bookworm "$rootfs" "$MIRROR" >"$work/debootstrap.log" 2>&1 || {
  tail -20 "$work/debootstrap.log" >&2
  exit 1
}

# What the official bookworm-slim image has: the three suites, and no documentation,
# manual pages or translations installed by later apt-get installs.
rm -f "$rootfs/etc/apt/sources.list"
cat >"$rootfs/etc/apt/sources.list.d/debian.sources" <<SOURCES
Types: deb
URIs: $MIRROR
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
cat >"$rootfs/etc/dpkg/dpkg.cfg.d/docker" <<'DPKG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
DPKG
cat >"$rootfs/etc/apt/apt.conf.d/docker-clean" <<'APT'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
APT
rm -rf "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* \
  "$rootfs"/usr/share/locale/* "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/* \
  "$rootfs"/var/log/*.log "$rootfs"/tmp/*

tar -C "$rootfs" --numeric-owner -cf "$work/rootfs.tar" .
podman --storage-driver "$STORAGE_DRIVER" import --quiet \
  --change 'CMD ["bash"]' "$work/rootfs.tar" "$BASE" >/dev/null
echo "Imported $BASE (built with debootstrap)."
