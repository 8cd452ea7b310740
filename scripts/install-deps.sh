#!/usr/bin/env bash
# Installs what ballast needs to build and to run its tests, from Debian's packages.
# Idempotent: when everything is present it only checks (a second or so) and changes nothing.
set -euo pipefail

# Build: compiler, CMake and the libraries ballast links.
build_packages=(
  build-essential cmake pkg-config git ca-certificates ccache
  libgit2-dev libssh2-1-dev libcsv-dev libyaml-cpp-dev libboost-dev nlohmann-json3-dev libspdlog-dev libfmt-dev libssl-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libcap-dev libseccomp-dev zlib1g-dev libre2-dev
)
# Tests: the real servers and tools they talk to; the second compiler (CI builds Release with
# clang 14 too; its runtime libraries carry libFuzzer and the sanitizers for `make fuzz`, whose
# gzip target inflates with zlib), libfaketime for the wall-clock jump test, and what
# `make image` and `make deb` use.
test_packages=(
  clang-14 libclang-rt-14-dev faketime
  debootstrap help2man lintian
  openssl procps iproute2 curl
  lighttpd lighttpd-mod-openssl openssh-server openssh-client
  prometheus
  chromium
  podman runc busybox-static
  age
)

wanted=("${build_packages[@]}")
if [[ "${1:-}" != "--build-only" ]]; then
  wanted+=("${test_packages[@]}")
fi

missing=()
for p in "${wanted[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
sudo=""
if [[ $(id -u) -ne 0 ]]; then
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
