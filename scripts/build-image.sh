#!/usr/bin/env bash
# Builds the container image ballast:VERSION (and ballast:latest) from the Dockerfile with podman.
#
# No container registry is reachable from the machines this project is built on, so when podman's
# store has no debian:bookworm-slim this script makes it: debootstrap (minbase) of bookworm from
# the apt mirror this machine is configured with, slimmed the way Debian's own slim image is
# (no documentation, manual pages or locales; dpkg told to keep them out), imported with
# `podman import`. The build runs with host networking (to reach that mirror) and runc with
# explicit ulimits (what podman needs on these machines).
#
#   scripts/build-image.sh [--rebuild-base]
# Environment: DEBIAN_MIRROR (default: this machine's apt source), IMAGE (default: ballast).
set -euo pipefail
cd "$(dirname "$0")/.."

image="${IMAGE:-ballast}"
version=$(sed -n 's/^project(ballast VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)
commit=$(git rev-parse HEAD 2>/dev/null || echo unknown)
if [[ "$commit" != unknown ]] && [[ -n "$(git status --porcelain --untracked-files=no)" ]]; then
  commit+="-dirty"
fi
# Where the source came from, credentials cut: the origin remote when there is one.
source_url=$(git remote get-url origin 2>/dev/null | sed -E 's#://[^/@]*@#://#' || true)
base="debian:bookworm-slim"
podman_run_flags=(--runtime runc --ulimit nofile=1024:1024 --ulimit nproc=4096:4096)

sudo=""
[[ $(id -u) -eq 0 ]] || sudo="sudo"

# The first Debian archive URI of this machine's apt sources (deb822 or one-line form).
host_mirror() {
  local uri
  uri=$(grep -hsE '^(URIs:|deb )' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list \
          /etc/apt/sources.list.d/*.list |
        grep -v -- '-security' | grep -E '/debian/?( |$)' |
        sed -E 's/^URIs:[[:space:]]*//; s/^deb (\[[^]]*\] )?//; s/ .*//' | head -1)
  echo "${uri:-http://deb.debian.org/debian}"
}

rootfs=""
cleanup() { [[ -z "$rootfs" ]] || $sudo rm -rf "$rootfs"; }
trap cleanup EXIT

make_base() {
  local mirror
  mirror="${DEBIAN_MIRROR:-$(host_mirror)}"
  rootfs=$(mktemp -d /var/tmp/ballast-base.XXXXXX)
  echo "build-image: making $base with debootstrap from $mirror (about 90 s)"
  $sudo debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$rootfs.log" 2>&1 || {
    tail -20 "$rootfs.log" >&2
    echo "build-image: debootstrap failed (log above, full log in $rootfs.log)" >&2
    exit 1
  }
  rm -f "$rootfs.log"
  # What Debian's slim image does: keep documentation and locales out, now and in later installs.
  $sudo tee "$rootfs/etc/dpkg/dpkg.cfg.d/docker-slim" >/dev/null <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
CFG
  $sudo tee "$rootfs/etc/apt/apt.conf.d/docker-clean" >/dev/null <<'CFG'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
Acquire::GzipIndexes "true";
CFG
  $sudo tee "$rootfs/etc/apt/sources.list.d/debian.sources" >/dev/null <<CFG
Types: deb
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
CFG
  $sudo rm -f "$rootfs/etc/apt/sources.list"
  $sudo find "$rootfs/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
  $sudo find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete
  $sudo rm -rf "$rootfs"/usr/share/{man,info,locale,groff,lintian,linda}/* \
    "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb \
    "$rootfs"/var/log/* "$rootfs"/tmp/*
  $sudo tar -C "$rootfs" --numeric-owner -c . |
    podman import --change 'CMD ["bash"]' --message "debootstrap --variant=minbase bookworm $mirror" \
      - "$base" >/dev/null
  echo "build-image: $base is $(podman image inspect --format '{{.Size}}' "$base") bytes"
}

command -v podman >/dev/null || { echo "build-image: podman is not installed (apt install podman)" >&2; exit 1; }
if [[ "${1:-}" == "--rebuild-base" ]] || ! podman image exists "$base"; then
  command -v debootstrap >/dev/null ||
    { echo "build-image: debootstrap is not installed (apt install debootstrap)" >&2; exit 1; }
  make_base
fi

echo "build-image: building $image:$version ($commit)"
# --format docker: OCI images cannot carry a HEALTHCHECK.
podman build --pull=never --network host --format docker "${podman_run_flags[@]}" \
  --build-arg VERSION="$version" --build-arg REVISION="$commit" \
  --build-arg SOURCE="${source_url:-unknown}" \
  -t "$image:$version" -t "$image:latest" -f Dockerfile .
echo "build-image: $image:$version is $(podman image inspect --format '{{.Size}}' "$image:$version") bytes"
